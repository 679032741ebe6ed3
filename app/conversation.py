"""The conversation the page shows, as plain data: exchanges, the two replies of each, and delta merging.

No Gradio here. One `Exchange` is one user message and the reply of each side ("left", "right"). A
`Reply` grows as deltas arrive (`merge_delta`); `history_for` builds the messages sent back to the
engine for one side: the system prompt, earlier user messages and earlier ANSWERS (never thinking).

    reply = Reply(model="base")
    merge_delta(reply, ReasoningDelta("hmm"), now=0.1)
    merge_delta(reply, AnswerDelta("Hello"), now=0.5)   # thinking closes, its duration is 0.4 s
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from serving.protocol import AnswerDelta, ChatMessage, Delta, FinalDelta, NoticeDelta, ReasoningDelta

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")
ReplyStatus = Literal["waiting", "thinking", "answering", "done", "stopped", "error"]
FINISHED: frozenset[str] = frozenset({"done", "stopped", "error"})


@dataclass
class ReplyStats:
    """Usage and timings of a finished reply (from the engine's FinalDelta)."""

    finish_reason: str
    prompt_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    time_to_first_token_s: float | None
    total_s: float
    tokens_per_s: float


@dataclass
class Reply:
    """One side's reply to one user message, as far as it has streamed."""

    model: str
    thinking: str = ""
    answer: str = ""
    status: ReplyStatus = "waiting"
    started_s: float = 0.0  # clock value when the request was sent
    first_delta_s: float | None = None  # seconds after start when the first piece arrived
    thinking_s: float | None = None  # how long the thinking lasted (set once the answer starts)
    thinking_closed: bool | None = None  # None while thinking may still close; False: it never did
    error: str | None = None
    pieces: int = 0  # deltas received (a live proxy for tokens while streaming)
    stats: ReplyStats | None = None
    notices: list[str] = field(default_factory=list)  # notes from the engine (e.g. a setting the server refused)
    weights_sha256: str = ""  # of the adapter weights that answered, when known (recorded for blind votes)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class Exchange:
    """One user message and the reply of each side."""

    user: str
    replies: dict[str, Reply] = field(default_factory=dict)


def new_exchange(user: str, models: dict[str, str], now: float) -> Exchange:
    """An exchange whose replies are waiting for their first delta."""
    return Exchange(user=user, replies={side: Reply(model=model, started_s=now) for side, model in models.items()})


def merge_delta(reply: Reply, delta: Delta, now: float) -> Reply:
    """Fold one delta into the reply (in place) and return it. `now` is the same clock as `started_s`."""
    if isinstance(delta, ReasoningDelta | AnswerDelta) and delta.text:
        reply.pieces += 1
        if reply.first_delta_s is None:
            reply.first_delta_s = now - reply.started_s
    if isinstance(delta, ReasoningDelta):
        reply.thinking += delta.text
        reply.status = "thinking"
    elif isinstance(delta, AnswerDelta):
        _close_thinking(reply, now)
        reply.answer += delta.text
        reply.status = "answering"
    elif isinstance(delta, NoticeDelta):
        reply.notices.append(delta.text)
    elif isinstance(delta, FinalDelta):
        _finish(reply, delta, now)
    return reply


def _close_thinking(reply: Reply, now: float) -> None:
    if reply.thinking_closed is None:
        reply.thinking_closed = True
        reply.thinking_s = max(0.0, now - reply.started_s - (reply.first_delta_s or 0.0)) if reply.thinking else 0.0


def _finish(reply: Reply, final: FinalDelta, now: float) -> None:
    if reply.answer:
        _close_thinking(reply, now)
    elif reply.thinking_closed is None:
        reply.thinking_closed = final.thinking_closed
        if reply.thinking:
            reply.thinking_s = max(0.0, now - reply.started_s - (reply.first_delta_s or 0.0))
    reply.status = "stopped" if final.finish_reason == "cancelled" else "done"
    reply.stats = ReplyStats(
        finish_reason=final.finish_reason,
        prompt_tokens=final.prompt_tokens,
        reasoning_tokens=final.reasoning_tokens,
        answer_tokens=final.answer_tokens,
        time_to_first_token_s=final.time_to_first_token_s,
        total_s=final.total_s,
        tokens_per_s=final.tokens_per_s,
    )


def fail_reply(reply: Reply, message: str) -> Reply:
    """Mark the reply failed with a user-facing message; what streamed so far is kept."""
    reply.error = message
    reply.status = "error"
    return reply


def stop_reply(reply: Reply, now: float) -> Reply:
    """Mark an unfinished reply as stopped by the user; what streamed so far is kept."""
    if not reply.finished:
        if reply.thinking and reply.thinking_s is None:
            reply.thinking_s = max(0.0, now - reply.started_s - (reply.first_delta_s or 0.0))
        reply.status = "stopped"
    return reply


def history_for(
    exchanges: list[Exchange], side: str, system_prompt: str | None, next_user: str | None = None
) -> list[ChatMessage]:
    """The messages one side sends: system prompt, earlier user messages and answers (never thinking).

    An earlier exchange whose reply on this side has no answer (error, stopped while thinking, thinking
    never closed) is left out entirely, so user and assistant turns keep alternating.
    """
    messages: list[ChatMessage] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    for exchange in exchanges:
        reply = exchange.replies.get(side)
        if reply is None or not reply.answer.strip():
            continue
        messages.append({"role": "user", "content": exchange.user})
        messages.append({"role": "assistant", "content": reply.answer.strip()})
    if next_user is not None:
        messages.append({"role": "user", "content": next_user})
    return messages
