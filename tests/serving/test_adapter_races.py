"""Adapter changes racing with chats, on both engines (the real vLLM server and LocalEngine).

Unloading an adapter while two streams are already reading from it, and load/unload/chat on one name from
8 threads, 100 operations: only the expected errors, each naming the adapter; a consistent final state (listed
<=> it answers); the name can be loaded again and answers; the engine goes on serving. (Bad adapters, the
symlink refused through the app and retraining while serving are in tests/reliability/test_reliability_adapters.py.)

    .venv/bin/python -m pytest tests/serving/test_adapter_races.py
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
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

MESSAGES = [{"role": "user", "content": "你是谁？"}]
SHORT = SamplingParams(temperature=0.0, max_tokens=2)


def outcome(stream) -> str:
    """'finished' when the stream ended with its FinalDelta, else the clear error it raised."""
    try:
        deltas = list(stream)
    except (AdapterError, BadRequestError) as error:
        return f"error: {error}"
    return "finished" if deltas and isinstance(deltas[-1], FinalDelta) else "ended without a FinalDelta"


def read_rest(stream) -> str:
    """Like `outcome` for a stream already started; any engine error must name the adapter or the server."""
    try:
        deltas = list(stream)
    except EngineError as error:
        assert "busy" in str(error) or "server" in str(error), f"unclear error: {error}"
        return f"error: {error}"
    return "finished" if deltas and isinstance(deltas[-1], FinalDelta) else "ended without a FinalDelta"


def test_unload_while_two_streams_use_the_adapter(engine, trained_adapter_dir: Path, tmp_path: Path) -> None:
    engine.load_adapter("busy", shutil.copytree(trained_adapter_dir, tmp_path / "busy"))
    params = SamplingParams(temperature=0.0, max_tokens=64, seed=0)
    streams = engine.open_streams([ChatRequest(MESSAGES, "busy", params), ChatRequest(MESSAGES, "busy", params)])
    firsts = [next(iter(stream)) for stream in streams]  # both are generating when the adapter goes
    engine.unload_adapter("busy")
    results = [read_rest(stream) for stream in streams]
    assert all(isinstance(first, ReasoningDelta) for first in firsts), firsts
    assert all(r == "finished" or r.startswith("error: ") for r in results), results
    assert "busy" not in {info.name for info in engine.models()}
    with pytest.raises(BadRequestError, match="unknown model 'busy'"):
        list(engine.stream_chat(MESSAGES, "busy", SHORT))
    assert outcome(engine.stream_chat(MESSAGES, "base", SHORT)) == "finished"


def churn_once(engine, path: Path, action: str) -> str:
    """One operation on the name `racer`: 'ok', or the expected error's class name (it must name the adapter)."""
    try:
        if action == "load":
            engine.load_adapter("racer", path)
        elif action == "unload":
            engine.unload_adapter("racer")
        elif (result := outcome(engine.stream_chat(MESSAGES, "racer", SHORT))) != "finished":
            assert "unknown model 'racer'" in result, result
            return "BadRequestError"
    except (AdapterError, BadRequestError) as error:
        allowed = ("unknown model 'racer'", "could not unload adapter 'racer'", "could not load adapter 'racer'")
        assert any(reason in str(error) for reason in allowed), f"unexpected wording: {error}"
        return type(error).__name__
    return "ok"


def test_load_unload_chat_on_one_name_100_times(engine, trained_adapter_dir: Path, tmp_path: Path) -> None:
    path = shutil.copytree(trained_adapter_dir, tmp_path / "racer")
    actions = random.Random(6).sample(["load", "unload", "chat"] * 34, 100)
    with ThreadPoolExecutor(max_workers=8) as pool:  # anything but the expected errors propagates and fails
        outcomes = list(pool.map(lambda action: (action, churn_once(engine, path, action)), actions))
    tally = Counter(outcomes)
    print(f"\n100 concurrent operations on one name: {dict(sorted(tally.items()))}")
    assert tally[("load", "ok")] > 0, tally
    assert not [o for o in outcomes if o[0] == "chat" and o[1] == "AdapterError"], "a chat never fails to load"
    if "racer" in {info.name for info in engine.models()}:  # consistent: listed <=> answers
        assert outcome(engine.stream_chat(MESSAGES, "racer", SHORT)) == "finished"
        engine.unload_adapter("racer")
    with pytest.raises(BadRequestError, match="unknown model 'racer'"):
        list(engine.stream_chat(MESSAGES, "racer", SHORT))
    engine.load_adapter("racer", path)
    assert outcome(engine.stream_chat(MESSAGES, "racer", SHORT)) == "finished"
    engine.unload_adapter("racer")
    assert outcome(engine.stream_chat(MESSAGES, "huanhuan", SHORT)) == "finished"
