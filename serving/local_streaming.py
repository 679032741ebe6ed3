"""Per-row streaming for one batched `generate`: split every step's tokens by row into typed deltas.

`generate(streamer=BatchRowStreamer(rows))` calls `put()` with the prompt once, then with one new token per
row per step. Each row decodes its own tokens incrementally, switches from thinking to answer on the
`</think>` token id (151668), ends at an EOS id, and pushes deltas into its own queue, so each side is
read independently. A row that ends early (EOS, or its stream closed) queues its final record at that step,
while the other rows of the batch go on. `CancelRows` is the stopping criterion that ends cancelled rows.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from serving.protocol import AnswerDelta, Delta, EngineError, FinalDelta, ReasoningDelta

THINK_START_ID = 151667
THINK_END_ID = 151668
END_OF_STREAM = object()


@dataclass
class RowState:
    """One row of a batched generate: its queue of deltas, its cancel event, its counters."""

    started_at: float
    eos_ids: frozenset[int]
    prompt_tokens: int = 0
    deltas: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    in_thinking: bool = True
    thinking_closed: bool = False
    finished: str | None = None
    reported: bool = False
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    first_token_s: float | None = None
    _segment: list[int] = field(default_factory=list)
    _emitted: int = 0

    def take_token(self, token_id: int, tokenizer) -> None:
        """Decode one generated token of this row and queue the text that is now certain."""
        if self.finished is not None:
            return
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started_at
        if self.cancelled.is_set():
            self.finished = "cancelled"
            self.finish(tokenizer, "cancelled")
            return
        if token_id in self.eos_ids:
            self.finished = "stop"
            self.finish(tokenizer, "stop")  # now, not when the batch's longest row ends
            return
        if token_id in (THINK_START_ID, THINK_END_ID):
            self.flush(tokenizer, final=True)
            if token_id == THINK_END_ID and self.in_thinking:
                self.in_thinking, self.thinking_closed = False, True
            self.reasoning_tokens += 1
            return
        if self.in_thinking:
            self.reasoning_tokens += 1
        else:
            self.answer_tokens += 1
        self._segment.append(token_id)
        self.flush(tokenizer)

    def flush(self, tokenizer, final: bool = False) -> None:
        """Queue the newly decoded text; hold back a cut multi-byte character until it completes."""
        backend = getattr(tokenizer, "backend_tokenizer", None)  # the Rust tokenizer: no per-call list conversion
        if backend is not None:
            text = backend.decode(self._segment, skip_special_tokens=True)
        else:
            text = tokenizer.decode(self._segment, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return
        new_text = text[self._emitted :]
        if new_text:
            self.deltas.put(ReasoningDelta(new_text) if self.in_thinking else AnswerDelta(new_text))
        if final or text.endswith("\n"):
            self._segment, self._emitted = [], 0
        else:
            self._emitted = len(text)

    def finish(self, tokenizer, reason: str) -> None:
        """This row is done (EOS, cancelled, or generate returned): flush, queue the FinalDelta and the end
        marker, once."""
        if self.reported:
            return
        self.reported = True
        self.flush(tokenizer, final=True)
        self.deltas.put(
            FinalDelta(
                finish_reason=self.finished or reason,
                prompt_tokens=self.prompt_tokens,
                reasoning_tokens=self.reasoning_tokens,
                answer_tokens=self.answer_tokens,
                time_to_first_token_s=self.first_token_s,
                total_s=time.perf_counter() - self.started_at,
                thinking_closed=self.thinking_closed,
            )
        )
        self.deltas.put(END_OF_STREAM)

    def fail(self, error: EngineError) -> None:
        if self.reported:
            return
        self.reported = True
        self.deltas.put(error)
        self.deltas.put(END_OF_STREAM)


class BatchRowStreamer:
    """A transformers streamer for a batch: routes each step's token of row i to rows[i]."""

    def __init__(self, rows: list[RowState], tokenizer):
        self.rows = rows
        self.tokenizer = tokenizer
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # the first call carries the prompt ids
            self._prompt_seen = True
            return
        tokens = value.reshape(len(self.rows), -1)[:, -1].tolist()
        for row, token_id in zip(self.rows, tokens, strict=True):
            row.take_token(int(token_id), self.tokenizer)

    def end(self) -> None:
        pass


def cancel_rows_criterion(rows: list[RowState]):
    """Stopping criterion: a row is done when it is cancelled or finished; generate ends when all are."""
    import torch
    from transformers import StoppingCriteria

    class CancelRows(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
            done = [row.cancelled.is_set() or row.finished is not None for row in rows]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return CancelRows()


class LocalStream:
    """The deltas of one row; closing it cancels that row (the batch goes on for the other rows)."""

    def __init__(self, row: RowState):
        self._row = row
        self._done = False

    def __iter__(self):
        return self

    def __next__(self) -> Delta:
        if self._done:
            raise StopIteration
        item = self._row.deltas.get()
        if item is END_OF_STREAM:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def close(self) -> None:
        self._row.cancelled.set()
        self._done = True
