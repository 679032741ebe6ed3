"""LocalEngine's behaviour inside one batched generate: a row that ends early is reported when it ends, a
closed engine ends its model thread, and `python -m serving.chat --engine local` exits cleanly (and goes on
after a message too long for the context).

    .venv/bin/python -m pytest tests/serving/test_local_engine.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common.qwen3 import ZHEN_HUAN_PERSONA
from serving.local_streaming import END_OF_STREAM, BatchRowStreamer, RowState
from serving.protocol import ChatRequest, EngineError, FinalDelta, SamplingParams
from tests.support.paths import REPO_ROOT

MESSAGES = [{"role": "system", "content": ZHEN_HUAN_PERSONA}, {"role": "user", "content": "你是谁？"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def queued(row: RowState) -> list:
    items = []
    while not row.deltas.empty():
        items.append(row.deltas.get_nowait())
    return items


def test_a_row_that_hits_eos_is_final_at_that_step_while_the_other_goes_on(tokenizer) -> None:
    import torch

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    word = tokenizer("好", add_special_tokens=False)["input_ids"][0]
    rows = [RowState(time.perf_counter(), frozenset([eos])) for _ in range(2)]
    streamer = BatchRowStreamer(rows, tokenizer)
    streamer.put(torch.tensor([[1, 2], [3, 4]]))  # the prompt
    streamer.put(torch.tensor([word, word]))
    streamer.put(torch.tensor([word, eos]))  # row 1 ends here; generate goes on for row 0
    early = queued(rows[1])
    assert isinstance(early[-2], FinalDelta) and early[-1] is END_OF_STREAM, "reported at the step it ended"
    assert early[-2].finish_reason == "stop" and early[-2].completion_tokens == 1
    assert not any(isinstance(item, FinalDelta) for item in queued(rows[0])), "the other row is still going"
    streamer.put(torch.tensor([word, word]))  # pad for the finished row: nothing more is queued for it
    assert queued(rows[1]) == []
    for row in rows:  # generate returned: only the unfinished row gets its final record now
        row.finish(tokenizer, "length")
    assert [type(item) for item in queued(rows[1])] == []
    late = [item for item in queued(rows[0]) if isinstance(item, FinalDelta)]
    assert late[0].finish_reason == "length" and late[0].completion_tokens == 3


@pytest.mark.slow
def test_the_early_side_is_final_before_the_long_side_ends(local_engine) -> None:
    """The trained adapter stops after a short answer; its FinalDelta must reach the reader while the base,
    in the same batched generate, still has many tokens to come (not when the whole batch returns)."""
    params = SamplingParams(temperature=0.0, max_tokens=160, seed=0)
    requests = [ChatRequest(MESSAGES, "base", params), ChatRequest(MESSAGES, "huanhuan", params)]
    streams = local_engine.open_streams(requests)
    events: list[tuple[str, object]] = []
    lock = threading.Lock()

    def read(side: str, stream) -> None:
        for delta in stream:
            with lock:
                events.append((side, delta))

    readers = [threading.Thread(target=read, args=pair) for pair in zip(("base", "lora"), streams, strict=True)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    lora_final_at = next(i for i, (side, d) in enumerate(events) if side == "lora" and isinstance(d, FinalDelta))
    lora_final = events[lora_final_at][1]
    base_final = next(d for side, d in events if side == "base" and isinstance(d, FinalDelta))
    assert lora_final.finish_reason == "stop" and lora_final.completion_tokens < 100, "precondition: it stops early"
    assert base_final.finish_reason == "length"
    base_after = [d for side, d in events[lora_final_at:] if side == "base" and not isinstance(d, FinalDelta)]
    assert len(base_after) >= 20, f"only {len(base_after)} base deltas came after the adapter's final record"
    assert lora_final.total_s < base_final.total_s


@pytest.mark.slow
def test_close_cancels_the_running_turn_and_ends_the_model_thread(tiny_model_dir: Path) -> None:
    from serving.local_engine import LocalEngine

    engine = LocalEngine(tiny_model_dir)
    stream = engine.stream_chat(MESSAGES, "base", SamplingParams(temperature=0.0, max_tokens=1000))
    next(stream)  # generating now
    engine.close()
    deltas = list(stream)
    assert deltas and isinstance(deltas[-1], FinalDelta) and deltas[-1].finish_reason == "cancelled"
    assert not engine._worker._thread.is_alive()
    with pytest.raises(EngineError, match="closed"):
        list(engine.stream_chat(MESSAGES, "base", SamplingParams(temperature=0.0, max_tokens=4)))


@pytest.mark.slow
def test_chat_compare_with_the_local_engine_exits_cleanly(tiny_model_dir: Path, trained_adapter_dir: Path) -> None:
    command = [sys.executable, "-m", "serving.chat", "--engine", "local", "--model", str(tiny_model_dir), "--compare",
               "--adapter", f"huanhuan={trained_adapter_dir}", "--message", "hi", "--max-tokens", "40"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[base]" in done.stdout and "[huanhuan]" in done.stdout
    assert "terminate called" not in done.stderr


@pytest.mark.slow
def test_interactive_chat_with_the_local_engine_goes_on_after_a_too_long_message(tiny_model_dir: Path) -> None:
    command = [sys.executable, "-m", "serving.chat", "--engine", "local", "--model", str(tiny_model_dir),
               "--max-tokens", "4000"]  # fmt: skip
    typed = "你好" * 200 + "\n/reset\n/quit\n"  # the first message and 4000 new tokens exceed the 4096 context
    done = subprocess.run(command, cwd=REPO_ROOT, input=typed, capture_output=True, text=True, timeout=600)
    assert "the conversation is too long for the model's context" in done.stderr
    assert done.returncode == 0, "the chat ended at the refused message instead of reading the next one"
