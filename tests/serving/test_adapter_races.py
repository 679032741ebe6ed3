"""Adapter changes racing with chats, on both engines (the real vLLM server and LocalEngine), by name.

Unloading an adapter while two streams are already reading from it, and load/unload/chat on one name from
8 threads, 100 operations: only the expected errors, each naming the adapter; a consistent final state (at
most one served name per folder, and listed <=> it answers); the folder can be loaded again and answers; the
engine goes on serving. Adapters are placed in the engines' shared adapters folder and loaded by name. (Bad
adapters, the symlink refused through the app and retraining while serving are in
tests/reliability/test_reliability_adapters.py.)

    .venv/bin/python -m pytest tests/serving/test_adapter_races.py
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serving.protocol import (
    AdapterError,
    BadRequestError,
    ChatRequest,
    EngineError,
    FinalDelta,
    ReasoningDelta,
    SamplingParams,
)
from tests.support.serving_test_helpers import removing_additions

MESSAGES = [{"role": "user", "content": "你是谁？"}]
SHORT = SamplingParams(temperature=0.0, max_tokens=2)


def outcome(stream) -> str:
    """'finished' when the stream ended with its FinalDelta, else the clear error it raised."""
    try:
        deltas = list(stream)
    except (AdapterError, BadRequestError) as error:
        return f"error: {error}"
    return "finished" if deltas and isinstance(deltas[-1], FinalDelta) else "ended without a FinalDelta"


def read_rest(stream, name: str) -> str:
    """Like `outcome` for a stream already started; any engine error must name the adapter or the server."""
    try:
        deltas = list(stream)
    except EngineError as error:
        assert name in str(error) or "server" in str(error), f"unclear error: {error}"
        return f"error: {error}"
    return "finished" if deltas and isinstance(deltas[-1], FinalDelta) else "ended without a FinalDelta"


@pytest.fixture
def folder(served_adapters_dir: Path) -> Iterator[Path]:
    """The adapters folder both engines serve from (the session's vLLM server and LocalEngine); cleaned after."""
    with removing_additions(served_adapters_dir) as folder:
        yield folder


def test_unload_while_two_streams_use_the_adapter(engine, trained_adapter_dir: Path, folder: Path) -> None:
    shutil.copytree(trained_adapter_dir, folder / "busy")
    busy = engine.load_adapter("busy")
    params = SamplingParams(temperature=0.0, max_tokens=64, seed=0)
    streams = engine.open_streams([ChatRequest(MESSAGES, busy, params), ChatRequest(MESSAGES, busy, params)])
    firsts = [next(iter(stream)) for stream in streams]  # both are generating when the adapter goes
    engine.unload_adapter("busy")
    results = [read_rest(stream, busy) for stream in streams]
    assert all(isinstance(first, ReasoningDelta) for first in firsts), firsts
    assert all(r == "finished" or r.startswith("error: ") for r in results), results
    assert busy not in {info.name for info in engine.models()}
    with pytest.raises(BadRequestError, match=f"unknown model '{busy}'"):
        list(engine.stream_chat(MESSAGES, busy, SHORT))
    assert outcome(engine.stream_chat(MESSAGES, "base", SHORT)) == "finished"


def churn_once(engine, served: list[str], action: str) -> str:
    """One operation on the folder `racer` (chats ask for the name the last load returned): 'ok', or the
    expected error's class name (it must name the adapter)."""
    try:
        if action == "load":
            served.append(engine.load_adapter("racer"))
        elif action == "unload":
            engine.unload_adapter("racer")
        elif (result := outcome(engine.stream_chat(MESSAGES, served[-1], SHORT))) != "finished":
            assert "unknown model 'racer" in result, result
            return "BadRequestError"
    except (AdapterError, BadRequestError) as error:
        allowed = ("unknown model 'racer", "could not unload adapter 'racer", "could not load adapter 'racer")
        assert any(reason in str(error) for reason in allowed), f"unexpected wording: {error}"
        return type(error).__name__
    return "ok"


def test_load_unload_chat_on_one_name_100_times(engine, trained_adapter_dir: Path, folder: Path) -> None:
    shutil.copytree(trained_adapter_dir, folder / "racer")
    served = ["racer"]
    actions = random.Random(6).sample(["load", "unload", "chat"] * 34, 100)
    with ThreadPoolExecutor(max_workers=8) as pool:  # anything but the expected errors propagates and fails
        outcomes = list(pool.map(lambda action: (action, churn_once(engine, served, action)), actions))
    tally = Counter(outcomes)
    print(f"\n100 concurrent operations on one name: {dict(sorted(tally.items()))}")
    assert tally[("load", "ok")] > 0, tally
    assert not [o for o in outcomes if o[0] == "chat" and o[1] == "AdapterError"], "a chat never fails to load"
    listed = [info.name for info in engine.models() if info.name.startswith("racer")]
    assert len(listed) <= 1, f"one folder is served under one name at a time: {listed}"
    if listed:  # consistent: listed <=> answers
        assert outcome(engine.stream_chat(MESSAGES, listed[0], SHORT)) == "finished"
        engine.unload_adapter("racer")
    with pytest.raises(BadRequestError, match="unknown model 'racer"):
        list(engine.stream_chat(MESSAGES, served[-1], SHORT))
    again = engine.load_adapter("racer")
    assert outcome(engine.stream_chat(MESSAGES, again, SHORT)) == "finished"
    engine.unload_adapter("racer")
    assert outcome(engine.stream_chat(MESSAGES, "huanhuan", SHORT)) == "finished"
