"""Stop reaches a Send that is still waiting in Gradio's queue: with one turn at a time over all users, a second
page's Send waits behind the first page's turn; its Stop keeps the message in the box, and that Send never reaches
the engine, even after the first turn ends. A Send clicked while the stopped one still waits runs after it. The
same holds for Regenerate (Send and Regenerate share the one-turn limit).

    .venv/bin/python -m pytest tests/app/test_app_queue_browser.py
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.config import AppArgs
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine, Script
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FakeEngine:
    adapter = tmp_path_factory.mktemp("adapters") / "huanhuan"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    slow = Script(thinking=["想"] * 10, answer=["答"] * 10, delay_s=0.2)  # about 4 s a side
    return FakeEngine({"fake-base": slow, "huanhuan": slow}, adapters={"huanhuan": adapter})


@pytest.fixture(scope="module")
def app_url(engine: FakeEngine) -> Iterator[str]:
    yield from serve_demo(build_demo(engine, AppArgs(concurrency_limit=1)))


def test_stop_on_a_send_still_in_the_queue_keeps_it_from_ever_running(app: AppPage, app_url: str, engine) -> None:
    first = app
    second = AppPage(first.page.context.new_page()).open(app_url)
    first.send("第一位")
    started = len(engine.requests)
    assert started == 2, "the first page's turn is running"
    second.page.fill("#message textarea", "第二位")
    second.click("send")
    second.page.wait_for_function("() => /sending/.test(document.querySelector('#stats-left').innerText)")
    time.sleep(0.5)  # the Send has reached the server's queue, behind the first turn
    second.click("stop")
    second.page.wait_for_function("() => !/sending/.test(document.querySelector('#stats-left').innerText)")
    box = second.page.input_value("#message textarea")
    assert second.user_messages("left") == [] and box == "第二位", box
    second.page.fill("#message textarea", "第三位")
    second.click("send")  # while the stopped Send still waits: this one runs once that one is done
    first.wait_finished()
    second.page.wait_for_function("() => /第三位/.test(document.querySelector('#history-left').innerText)")
    second.wait_finished()
    sent = [request.messages[-1]["content"] for request in engine.requests[started:]]
    assert sent == ["第三位", "第三位"], sent  # the stopped Send never reached the engine
    assert second.user_messages("left", "history") == ["第三位"]


def test_stop_on_a_regenerate_still_in_the_queue_keeps_it_from_ever_running(
    app: AppPage, app_url: str, engine
) -> None:
    first = app
    second = AppPage(first.page.context.new_page()).open(app_url)
    second.send("先问")
    second.wait_finished()
    first.send("第一位")
    started = len(engine.requests)
    second.click("regenerate")
    time.sleep(1.0)  # its first step has run; the turn itself waits in the queue behind the first page's turn
    second.click("stop")
    first.wait_finished()
    time.sleep(2.0)  # the queue's slot is free: a Regenerate the Stop missed would start now
    assert len(engine.requests) == started, [r.messages[-1] for r in engine.requests[started:]]
    assert second.user_messages("left") == ["先问"]
