"""Blind mode keeps the names out of the browser: from the moment it is ticked until the vote, nothing the server
sends to the page (every response and event-stream message, recorded in the page itself), nothing the page sends
back (the pickers' values travel with each Send) and nothing in the page's HTML names either side's model, while
both sides still answer; the vote puts the names back into the pickers, the stats lines and the reveal line.

The fake engine is enough: what the page is sent is the app's doing, whatever engine streams.

    .venv/bin/python -m pytest tests/app/test_blind_browser.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app.config import AppArgs
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine, Script
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.browser]
BASE, ADAPTER = "fake-base", "huanhuan"
ANSWERS = {BASE: "Hello there!", ADAPTER: "皇上万福"}

# Run before the page's own scripts: every fetch the page makes to the app is recorded in `window.__wire`, the
# request body it sent and each chunk of the response (event streams included) as it arrives.
RECORD_JS = """(() => {
  const wire = window.__wire = [];
  const fetched = window.fetch;
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    if (init && typeof init.body === 'string') wire.push({url, sent: init.body});
    const response = await fetched(input, init);
    const reader = response.clone().body?.getReader();
    if (reader) {
      const decoder = new TextDecoder();
      (async () => {
        for (;;) {
          const {done, value} = await reader.read();
          if (done) return;
          wire.push({url, got: decoder.decode(value, {stream: true})});
        }
      })();
    }
    return response;
  };
})();"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    adapter = tmp_path_factory.mktemp("adapters") / ADAPTER
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    scripts = {
        BASE: Script(answer=["Hello", " there", "!"], delay_s=0.05),
        ADAPTER: Script(thinking=["臣妾", "想想"], answer=["皇上", "万福"], delay_s=0.05),
    }
    engine = FakeEngine(scripts, adapters={ADAPTER: adapter})
    yield from serve_demo(build_demo(engine, AppArgs(votes_dir=str(tmp_path_factory.mktemp("votes")))))


@pytest.fixture
def recorded(browser, app_url: str) -> Iterator[AppPage]:
    """The page, with what goes over the wire recorded from before its first request."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.add_init_script(RECORD_JS)
    try:
        yield AppPage(context.new_page()).open(app_url)
    finally:
        context.close()


def wire(app: AppPage, start: int, kind: str) -> str:
    """What went over the wire since entry `start`: `got` (from the server) or `sent` (by the page)."""
    return "\n".join(entry[kind] for entry in app.page.evaluate("() => window.__wire")[start:] if kind in entry)


def wait_answered(app: AppPage, count: int) -> None:
    """Until both sides' histories hold `count` answers (the turn is over and at rest; the stats are hidden)."""
    app.page.wait_for_function(
        "(n) => ['left', 'right'].every((side) => "
        "document.querySelectorAll(`#history-${side} .message-content:has(.hh-answer)`).length === n)",
        arg=count, timeout=60_000,
    )  # fmt: skip


def named(text: str) -> list[str]:
    return [name for name in (BASE, ADAPTER) if name in text]


def test_nothing_sent_to_the_page_while_blind_names_a_side_and_the_vote_names_them(recorded: AppPage) -> None:
    app = recorded
    app.page.wait_for_function("() => window.__wire.some((e) => e.got && e.url.includes('/run/predict'))")
    start = app.page.evaluate("() => window.__wire.length")  # the page has loaded (its pickers hold the names)
    app.page.click("#blind input")
    app.page.wait_for_selector("#vote-left", state="visible")
    blind = app.page.evaluate("() => window.__wire.length")  # what the page sends from now on is blind too
    app.send("你是谁？")
    wait_answered(app, 1)
    answers = {side: app.texts(side, "hh-answer")[-1] for side in ("left", "right")}
    assert sorted(answers.values()) == sorted(ANSWERS.values()), "both sides answer, one model each"
    app.click("regenerate")  # asked again: the hidden models are found on the server again
    app.page.wait_for_function("() => !!document.querySelector('#live-left [data-testid=\"user\"]')")
    wait_answered(app, 1)
    assert {side: app.texts(side, "hh-answer")[-1] for side in ("left", "right")} == answers
    got, sent = wire(app, start, "got"), wire(app, blind, "sent")
    assert "你是谁" in sent and "pieces" in got, "the recording has the turns"
    assert named(got) == [], "the server sent a side's model name to the page"
    assert named(sent) == [], "the page holds a side's model name (a Send sends the pickers' values)"
    for box in ("chat-left", "chat-right", "blind-status"):
        assert named(app.page.inner_html(f"#{box}")) == [], box
    scripts = re.compile(r"<script\b.*?</script>", re.S)  # the page's start-up config lists every model to pick
    assert named(scripts.sub("", app.page.content())) == [], "the page's HTML names a model while blind"

    app.click("vote-left")
    app.wait_text("#blind-status", "Vote saved")
    shown = {side: ADAPTER if answers[side] == ANSWERS[ADAPTER] else BASE for side in ("left", "right")}
    assert f"A was {shown['left']}, B was {shown['right']}" in app.page.inner_text("#blind-status").replace("`", "")
    for side in ("left", "right"):
        app.page.wait_for_selector(f"#model-{side}", state="visible")
        assert app.page.input_value(f"#model-{side} input").startswith(shown[side])
        assert app.stats(side).startswith(shown[side]) and "tok/s" in app.stats(side)
    app.send("再说一句")  # revealed: the pickers' own values are sent again
    app.wait_finished()
    assert app.texts("left", "hh-answer")[-1] == answers["left"]
