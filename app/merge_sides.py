"""Merge both sides of one turn into one stream: one thread per side feeding one queue.

Neither side waits for the other: each thread reads its own stream and puts deltas on the queue as they
come; the caller gets whatever has arrived, in batches of at most one per 40 ms (a side's first text, an
error or an end is passed on at once, so neither side's first text waits). A `TurnControl` stops a turn
from anywhere (the Stop button's handler): it sets a flag and closes every stream, which cancels the
generation behind it (the HTTP stream closes and vLLM aborts the request; LocalEngine stops its generate).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from serving.protocol import ChatRequest, Delta, DeltaStream, Engine, EngineError

JOIN_AFTER_STOP_S = 5.0
COALESCE_S = 0.04  # at most ~25 page updates a second: each one re-renders the conversation; both panes move


@dataclass(frozen=True)
class SideEvent:
    """Something that happened on one side: a delta, an error (user-facing text), or the end of its stream."""

    side: str
    delta: Delta | None = None
    error: str | None = None
    done: bool = False


class TurnControl:
    """Stop switch for one running turn; `stop()` is safe to call from any thread, any number of times."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._discarded = False
        self._streams: list[DeltaStream] = []
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def attach(self, stream: DeltaStream) -> None:
        with self._lock:
            self._streams.append(stream)
        if self.stopped:
            _close_quietly(stream)

    @property
    def discarded(self) -> bool:
        return self._discarded

    def stop(self, discard: bool = False) -> None:
        self._discarded = self._discarded or discard
        self._stopped.set()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            _close_quietly(stream)


def _close_quietly(stream: DeltaStream) -> None:
    with contextlib.suppress(Exception):  # closing a broken stream must not hide the error the user should see
        stream.close()


def open_side_streams(engine: Engine, requests: Mapping[str, ChatRequest]) -> dict[str, DeltaStream | EngineError]:
    """Open all sides at once (one batched call where the engine can); a side that fails gets its error."""
    sides = list(requests)
    try:
        streams = engine.open_streams([requests[side] for side in sides])
        return dict(zip(sides, streams, strict=True))
    except EngineError:
        pass  # find out which side is at fault: open them one by one
    opened: dict[str, DeltaStream | EngineError] = {}
    for side in sides:
        request = requests[side]
        try:
            opened[side] = engine.stream_chat(request.messages, request.model, request.params)
        except EngineError as error:
            opened[side] = error
    return opened


def stream_sides(
    engine: Engine, requests: Mapping[str, ChatRequest], control: TurnControl
) -> Iterator[list[SideEvent]]:
    """Yield batches of events from all sides as they arrive, until every side has ended."""
    if not requests:
        return
    events: queue.Queue[SideEvent] = queue.Queue()
    threads = []
    for side, stream in open_side_streams(engine, requests).items():
        if isinstance(stream, EngineError):
            events.put(SideEvent(side, error=str(stream)))
            events.put(SideEvent(side, done=True))
            continue
        control.attach(stream)
        thread = threading.Thread(target=_pump, args=(side, stream, events, control), daemon=True)
        thread.start()
        threads.append(thread)
    yield from _drain(events, len(requests), control)


def _pump(side: str, stream: DeltaStream, events: queue.Queue[SideEvent], control: TurnControl) -> None:
    """Read one side's stream into the queue; always ends with a `done` event and a closed stream."""
    try:
        for delta in stream:
            if control.stopped:
                break
            events.put(SideEvent(side, delta=delta))
    except EngineError as error:
        if not control.stopped:
            events.put(SideEvent(side, error=str(error)))
    except Exception as error:  # an engine bug must still land in its own side, not kill the turn
        if not control.stopped:
            events.put(SideEvent(side, error=f"unexpected error: {type(error).__name__}: {error}"))
    finally:
        _close_quietly(stream)
        events.put(SideEvent(side, done=True))


def _drain(events: queue.Queue[SideEvent], sides: int, control: TurnControl) -> Iterator[list[SideEvent]]:
    """Batches of events, at most one per COALESCE_S; a side's first delta, an error or an end goes out at once."""
    finished, started, pending = 0, set(), []
    last_yield = stop_deadline = None
    while finished < sides:
        wait = 0.1 if not pending else max(0.0, last_yield + COALESCE_S - _now())
        try:
            pending.append(events.get(timeout=wait))
            while not _opens_a_side(pending[-1], started):  # a side's first text leaves alone, even from a backlog
                pending.append(events.get_nowait())
        except queue.Empty:
            pass
        if not pending:
            if control.stopped:
                stop_deadline = stop_deadline or _now() + JOIN_AFTER_STOP_S
                if _now() > stop_deadline:
                    return  # a stream that ignores close(): give up waiting, its thread is a daemon
            continue
        urgent = any(e.done or e.error is not None or _opens_a_side(e, started) for e in pending)
        if urgent or last_yield is None or _now() - last_yield >= COALESCE_S:
            started.update(event.side for event in pending if event.delta is not None)
            finished += sum(event.done for event in pending)
            batch, pending, last_yield = pending, [], _now()
            yield batch


def _opens_a_side(event: SideEvent, started: set[str]) -> bool:
    return event.delta is not None and event.side not in started


def _now() -> float:
    return time.monotonic()
