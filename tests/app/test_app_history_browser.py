"""A running turn streams into its own box under the history (`#live-left`), so what the page receives and
re-renders per update stays the size of one exchange as the conversation grows; when the turn ends the exchange
moves into the history (`#history-left`) and the live box hides. Regenerate and Undo keep the two boxes right.
The stats lines say "sending…" the moment Send is clicked, before the server answers; a message the app refuses
leaves them as they were.

The fake engine is enough: what is shown where is the page's doing, whatever engine streams.

    .venv/bin/python -m pytest tests/app/test_app_history_browser.py
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app import render
from app.config import AppArgs
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine, Script
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Records, in the page, every change to the left history box, and when the left side's turn started (its message
# shows in the live box) and finished (its stats line reports tok/s).
WATCH_JS = """() => {
  const watch = window.__watch = {history: [], started: null, finished: null};
  const observe = (selector, callback) => new MutationObserver(callback)
    .observe(document.querySelector(selector), {subtree: true, childList: true, characterData: true});
  observe('#history-left', () => watch.history.push(performance.now()));
  observe('#live-left', () => {
    if (watch.started === null && document.querySelector('#live-left [data-testid="user"]')) {
      watch.started = performance.now();
    }
  });
  observe('#stats-left', () => {
    if (watch.finished === null && /tok\\/s/.test(document.querySelector('#stats-left').innerText)) {
      watch.finished = performance.now();
    }
  });
}"""


# Records, in the page, every text the left stats line shows.
STATS_JS = """() => {
  const stats = document.querySelector('#stats-left');
  window.__stats = [];
  new MutationObserver(() => window.__stats.push(stats.innerText))
    .observe(stats, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    adapter = tmp_path_factory.mktemp("adapters") / "huanhuan"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    slow = Script(thinking=["想", "一", "想"], answer=["臣妾", "在", "此", "。"], delay_s=0.15)
    engine = FakeEngine({"fake-base": slow, "huanhuan": slow}, adapters={"huanhuan": adapter})
    yield from serve_demo(build_demo(engine, AppArgs(max_message_chars=50)))


def test_a_turn_streams_in_its_own_box_and_then_joins_the_history(app: AppPage) -> None:
    hint = render.EMPTY_HISTORY.strip("*")
    assert hint in app.page.inner_text("#history-left")  # an empty conversation says how to start
    app.send("第一句")
    app.wait_finished()
    assert app.user_messages("left", "history") == ["第一句"] and app.user_messages("left", "live") == []
    assert hint not in app.page.inner_text("#history-left")
    assert not app.page.is_visible("#live-left")
    app.page.evaluate(WATCH_JS)
    app.send("第二句")
    assert app.user_messages("left", "live") == ["第二句"] and app.page.is_visible("#live-left")
    assert app.user_messages("left", "history") == ["第一句"]
    app.wait_finished()
    watched = app.page.evaluate("() => window.__watch")
    assert watched["started"] is not None and watched["finished"] is not None, watched
    streaming = [t for t in watched["history"] if watched["started"] <= t <= watched["finished"]]
    assert not streaming, f"the history changed {len(streaming)} times while the turn streamed"
    assert watched["history"], "the history never took the exchange"
    for side in ("left", "right"):
        assert app.user_messages(side, "history") == ["第一句", "第二句"] and app.user_messages(side, "live") == []
    assert app.texts("right", "hh-answer") == ["臣妾在此。", "臣妾在此。"]


def test_regenerate_and_undo_keep_each_exchange_once(app: AppPage) -> None:
    app.send("第一句")
    app.wait_finished()
    app.send("第二句")
    app.wait_finished()
    app.click("regenerate")
    app.page.wait_for_function("() => !!document.querySelector('#live-left [data-testid=\"user\"]')")
    assert app.user_messages("left", "history") == ["第一句"]  # the last exchange streams again below it
    app.wait_finished()
    assert app.user_messages("left") == ["第一句", "第二句"] and app.user_messages("right") == ["第一句", "第二句"]
    app.click("undo")
    app.page.wait_for_function("() => document.querySelector('#message textarea').value === '第二句'")
    assert app.user_messages("left") == ["第一句"] and app.user_messages("left", "live") == []


def test_the_stats_say_sending_at_once_and_a_refused_message_leaves_them_as_they_were(app: AppPage) -> None:
    app.send("第一句")
    app.wait_finished()
    app.page.evaluate(STATS_JS)
    app.send("第二句")
    app.wait_finished()
    seen = app.page.evaluate("() => window.__stats")
    sending = next(i for i, text in enumerate(seen) if "sending" in text)
    assert not [text for text in seen[:sending] if "waiting" in text or "streaming" in text], seen
    assert [text for text in seen[sending:] if "tok/s" in text], seen
    finished = app.stats("left")
    app.page.fill("#message textarea", "长" * 51)
    app.page.click("#send")
    app.wait_text(".toast-wrap", "the limit is 50")
    app.page.wait_for_function("(s) => document.querySelector('#stats-left').innerText === s", arg=finished)
    assert app.user_messages("left") == ["第一句", "第二句"] and app.message_box() == "长" * 51


def test_regenerate_with_nothing_to_regenerate_keeps_the_typed_message_and_the_stats(app: AppPage) -> None:
    before = app.stats("left")
    app.page.fill("#message textarea", "留着")
    app.click("regenerate")  # an empty conversation: nothing to ask again
    app.page.wait_for_function("(s) => document.querySelector('#stats-left').innerText === s", arg=before)
    time.sleep(0.5)  # the turn step's (empty) result has landed
    assert app.message_box() == "留着" and app.stats("left") == before and app.user_messages("left") == []
    app.send("第一句")  # the conversation state is intact: a turn runs
    app.wait_finished()
    assert app.user_messages("left", "history") == ["第一句"]


def test_what_is_typed_while_a_reply_streams_stays_and_a_send_then_runs_after_it(app: AppPage) -> None:
    app.send("第一句")
    app.page.wait_for_function("() => !!document.querySelector('#live-left [data-testid=\"user\"]')")
    app.page.fill("#message textarea", "下一句")  # typed while the reply streams (about 1 s of updates left)
    time.sleep(0.6)
    assert app.message_box() == "下一句", "a streamed update wiped what was typed"
    app.page.click("#send")  # the first turn still runs: this Send waits for it, then sends what the box holds
    live_next = (
        "() => (document.querySelector('#live-left [data-testid=\"user\"]')?.innerText || '').includes('下一句')"
    )
    app.page.wait_for_function(live_next, timeout=60_000)
    assert app.user_messages("left", "history") == ["第一句"], (
        "the first exchange left the page while the next streamed"
    )
    app.page.wait_for_function(
        "() => document.querySelectorAll('#history-left [data-testid=\"user\"]').length === 2", timeout=60_000
    )
    app.wait_finished()
    assert app.user_messages("left") == ["第一句", "下一句"] and app.message_box() == ""
