"""Adapter changes racing with chats, on both engines (the real vLLM server and LocalEngine).

Unloading an adapter while two streams use it, and load/unload/chat on one name from three threads
100 times (by name, from the engines' shared adapters folder): only the expected, clearly worded errors;
a consistent final state (at most one served name per folder); the engine goes on serving.

    .venv/bin/python -m pytest tests/serving/test_adapter_races.py
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.protocol import AdapterError, BadRequestError, ChatRequest, FinalDelta, SamplingParams

MESSAGES = [{"role": "user", "content": "你是谁？"}]
SHORT = SamplingParams(temperature=0.0, max_tokens=2)


def outcome(stream) -> str:
    """'finished' when the stream ended with its FinalDelta, else the clear error it raised."""
    try:
        deltas = list(stream)
    except (AdapterError, BadRequestError) as error:
        return f"error: {error}"
    return "finished" if deltas and isinstance(deltas[-1], FinalDelta) else "ended without a FinalDelta"


@pytest.fixture
def folder(served_adapters_dir: Path) -> Iterator[Path]:
    """The adapters folder both engines serve from (the session's vLLM server and LocalEngine); cleaned after."""
    before = {entry.name for entry in served_adapters_dir.iterdir()}
    yield served_adapters_dir
    for entry in served_adapters_dir.iterdir():
        if entry.name not in before:
            entry.unlink() if entry.is_symlink() else shutil.rmtree(entry)


def test_unload_while_two_streams_use_the_adapter(engine, trained_adapter_dir: Path, folder: Path) -> None:
    shutil.copytree(trained_adapter_dir, folder / "busy")
    busy = engine.load_adapter("busy")
    params = SamplingParams(temperature=0.0, max_tokens=24)
    streams = engine.open_streams([ChatRequest(MESSAGES, busy, params), ChatRequest(MESSAGES, busy, params)])
    results: list[str] = []
    readers = [threading.Thread(target=lambda s=s: results.append(outcome(s))) for s in streams]
    for reader in readers:
        reader.start()
    engine.unload_adapter("busy")
    for reader in readers:
        reader.join(timeout=120)
    assert len(results) == 2
    assert all(r == "finished" or r.startswith(f"error: unknown model '{busy}'") for r in results), results
    assert busy not in {info.name for info in engine.models()}
    with pytest.raises(BadRequestError, match=f"unknown model '{busy}'"):
        list(engine.stream_chat(MESSAGES, busy, SHORT))
    assert outcome(engine.stream_chat(MESSAGES, "base", SHORT)) == "finished"


def test_load_unload_chat_on_one_name_100_times(engine, trained_adapter_dir: Path, folder: Path) -> None:
    shutil.copytree(trained_adapter_dir, folder / "racer")
    expected: list[str] = []
    unexpected: list[BaseException] = []
    served = ["racer"]  # the name the last load returned; the chat thread asks for it
    lock = threading.Lock()

    def run(action: str, times: int) -> None:
        for _ in range(times):
            try:
                if action == "load":
                    served.append(engine.load_adapter("racer"))
                elif action == "unload":
                    engine.unload_adapter("racer")
                elif (result := outcome(engine.stream_chat(MESSAGES, served[-1], SHORT))) != "finished":
                    with lock:
                        expected.append(result)
            except (AdapterError, BadRequestError) as error:
                with lock:
                    expected.append(str(error))
            except BaseException as error:  # anything else is a bug: collect it and fail below
                with lock:
                    unexpected.append(error)

    threads = [
        threading.Thread(target=run, args=(action, n)) for action, n in [("load", 34), ("unload", 33), ("chat", 33)]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not unexpected, unexpected
    allowed = ("unknown model 'racer", "could not unload adapter 'racer'")
    assert all(any(reason in message for reason in allowed) for message in expected), set(expected)
    listed = [info.name for info in engine.models() if info.name.startswith("racer")]
    assert len(listed) <= 1, f"one folder is served under one name at a time: {listed}"
    if listed:  # consistent: listed <=> answers
        assert outcome(engine.stream_chat(MESSAGES, listed[0], SHORT)) == "finished"
        engine.unload_adapter("racer")
    with pytest.raises(BadRequestError, match="unknown model 'racer"):
        list(engine.stream_chat(MESSAGES, served[-1], SHORT))
    assert outcome(engine.stream_chat(MESSAGES, "huanhuan", SHORT)) == "finished"
