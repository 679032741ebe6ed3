"""OpenAIStream: one streamed chat completion from an OpenAI-compatible server, read into the engine's deltas.

Thinking comes from `delta.reasoning` (vLLM with a reasoning parser), else `delta.reasoning_content`, else the
reply is split on inline `<think>...</think>` (serving/reasoning.py); the last delta is a FinalDelta with the
server's usage (`final_delta`). Closing a stream shuts its socket down at once (even while another thread waits in
a read), so the server sees the disconnect and aborts the request without waiting for the next token; a stream
read to its end leaves its pooled connection to the next request.

    stream = OpenAIStream(engine, messages, "huanhuan", SamplingParams()).start()   # OpenAIEngine.stream_chat
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from serving.openai_errors import engine_error_from
from serving.protocol import AnswerDelta, ChatMessage, Delta, FinalDelta, NoticeDelta, ReasoningDelta, SamplingParams
from serving.reasoning import ReplySplit, reasoning_of

if TYPE_CHECKING:
    from serving.openai_engine import OpenAIEngine


class OpenAIStream:
    """One streamed chat completion. Lazy: the request goes out on `start()` or the first `next()`."""

    def __init__(self, engine: OpenAIEngine, messages: Sequence[ChatMessage], model: str, params: SamplingParams):
        self._engine = engine
        self._messages = list(messages)
        self._model = model
        self._params = params
        self._response: Any = None
        self._deltas: Iterator[Delta] | None = None
        self._closed = False
        self._reading = threading.Lock()  # held by the thread inside a read of the response

    def start(self) -> OpenAIStream:
        """Send the request now (open_streams calls this for every stream at once); errors surface on next()."""
        if self._deltas is None and not self._closed:
            self._started_at = time.perf_counter()
            try:
                self._response, notice = self._engine._create_completion(self._messages, self._model, self._params)
                if self._closed:  # closed while the request was on its way
                    self.close()
                notices = [NoticeDelta(notice)] if notice else []
                self._deltas = itertools.chain(notices, self._read(self._response))
            except Exception as error:
                self._deltas = _raise(error)
        return self

    def __iter__(self) -> Iterator[Delta]:
        return self

    def __next__(self) -> Delta:
        if self._closed:
            self._release()
            raise StopIteration
        self.start()
        assert self._deltas is not None
        try:
            with self._reading:
                return next(self._deltas)
        except StopIteration:
            raise
        except Exception as error:
            if self._closed:
                raise StopIteration from None
            self.close()
            raise engine_error_from(error, self._engine.base_url, self._model) from error
        finally:
            if self._closed:
                self._release()

    def close(self) -> None:
        """Stop reading and close the HTTP stream; the server sees the disconnect and aborts the request.

        Safe from any thread. A reply still arriving has its socket shut down, which wakes a reader blocked in
        a read; the socket itself is closed by whichever thread holds no read, so a read never starts on a
        closed (and perhaps reused) file descriptor. A reply already read to its end gave its connection back
        to the client's pool: that socket is left alone, as another request may be using it.
        """
        self._closed = True
        if self._response is not None:
            _shut_down_socket(self._response)
            self._release()

    def _release(self) -> None:
        """Close the response now unless a reader is inside a read; that reader closes it when the read returns."""
        if self._response is not None and self._reading.acquire(blocking=False):
            try:
                self._response.close()
            finally:
                self._reading.release()

    def _read(self, response: Any) -> Iterator[Delta]:
        split = ReplySplit(starts_in_thinking=self._engine.starts_in_thinking)
        pieces = {ReasoningDelta: 0, AnswerDelta: 0}
        first_token_s: float | None = None
        finish_reason, usage = "stop", None
        for chunk in response:
            if self._closed:
                return
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                for delta in split.feed(reasoning_of(choice.delta), choice.delta.content or ""):
                    first_token_s = first_token_s or time.perf_counter() - self._started_at
                    pieces[type(delta)] += 1
                    yield delta
        for delta in split.finish():
            pieces[type(delta)] += 1
            yield delta
        total_s = time.perf_counter() - self._started_at
        yield final_delta(finish_reason, usage, pieces[ReasoningDelta], pieces[AnswerDelta], first_token_s, total_s,
                          split.thinking_closed)  # fmt: skip


def _shut_down_socket(stream: Any) -> None:
    """Send the FIN now: closing a socket that another thread is reading only takes effect when that read
    returns (at the server's next chunk, which during a long prefill or a slow adapter can take seconds).
    A response read to its end (httpx marks it closed before the pool gets its connection back) is skipped."""
    if stream.response.is_closed:
        return
    with contextlib.suppress(Exception):  # no socket (already closed, or a transport without one): close() does
        network_stream = stream.response.extensions["network_stream"]
        network_stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


def final_delta(finish_reason, usage, reasoning_pieces, answer_pieces, first_token_s, total_s, closed) -> FinalDelta:
    """The reply's FinalDelta. Token counts come from the server's usage when given (its reasoning_tokens, else
    the completion split by the ratio of reasoning to answer pieces), else from the pieces counted."""
    prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
    completion = getattr(usage, "completion_tokens", None)
    details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None) if details is not None else None
    if completion is None:
        reasoning, answer = reasoning_pieces, answer_pieces
    else:
        if reasoning is None:
            pieces = reasoning_pieces + answer_pieces
            reasoning = round(completion * reasoning_pieces / pieces) if pieces else 0
        answer = max(completion - reasoning, 0)
    return FinalDelta(
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        reasoning_tokens=reasoning,
        answer_tokens=answer,
        time_to_first_token_s=first_token_s,
        total_s=total_s,
        thinking_closed=closed,
    )


def _raise(error: BaseException) -> Iterator[Delta]:
    raise error
    yield  # pragma: no cover
