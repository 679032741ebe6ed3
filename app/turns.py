"""What happens on Send / Regenerate / Stop / Undo / Clear, without Gradio: `ChatTurns` over an engine.

A turn validates everything first (model names, sampling values, message length); a bad value raises
BadRequestError and nothing changes. Then both sides stream concurrently (`app.merge_sides`) and every
batch of deltas yields a new `TurnView` for the page. Stop closes the session's running streams.

    turns = ChatTurns(engine, settings)
    for view in turns.send(TurnInputs(message="你好", models={"left": "base", "right": "huanhuan"}, ...), [], "s1"):
        render(view)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from app.config import AppArgs
from app.conversation import SIDES, Exchange, fail_reply, history_for, merge_delta, new_exchange, stop_reply
from app.hidden_names import HIDDEN, hide_names
from app.merge_sides import SideEvent, TurnControl, stream_sides
from app.validation import checked_model, clean_message, not_served
from serving.protocol import (
    BASE_MODEL_ALIAS,
    BadRequestError,
    ChatRequest,
    Engine,
    SamplingParams,
    served_weights_by_name,
)

# A page still in blind mode whose session the server no longer keeps as blind (it forgot a page that was away,
# or a vote ended blind mode before a queued Send ran): its pickers hold HIDDEN, and nothing says what they run.
BLIND_RESET = (
    "Blind mode was reset on the server (the page was away, or a vote ended it): untick Blind mode if it is ticked, "
    "and tick it again"
)


@dataclass
class TurnInputs:
    """What one turn reads from the page (already parsed; `params` validated by app.validation)."""

    message: str
    models: dict[str, str]
    params: SamplingParams
    system_prompt: str = ""
    persona_for_base: bool = True
    clicked_at_ms: float = 0.0  # when the person clicked, on the page's clock (app.click_stamp); 0: an API call


@dataclass
class TurnView:
    """What the page shows after a step: the conversation and what is left in the message box."""

    exchanges: list[Exchange]
    message_box: str = ""
    running: bool = True


class ChatTurns:
    """Runs turns for many browser sessions at once; each session has at most one running turn.

    A session in blind mode (`start_blind` to `end_blind`) gets its sides' errors without model names
    (app.hidden_names), and the models of its hidden sides are kept here, never on the page: its pickers hold
    HIDDEN, and its turns run the models the session keeps for its sides, whatever the page sends (`models_for`).
    A turn clicked before the session's last Stop, Undo or Clear (both times on the page's clock) never
    starts: it was still waiting in the queue when the person stopped it.
    """

    def __init__(self, engine: Engine, settings: AppArgs) -> None:
        self.engine = engine
        self.settings = settings
        self._running: dict[str, tuple[TurnControl, list[Exchange]]] = {}  # session -> (turn, the exchanges before it)
        self._blind: dict[str, dict[str, str]] = {}  # session -> the model each hidden side runs
        self._stopped_at_ms: dict[str, float] = {}
        self._lock = threading.Lock()

    def forget(self, session: str) -> None:
        """The page closed: stop its turn and drop what was kept for the session."""
        self.stop(session, discard=True)
        with self._lock:
            self._blind.pop(session, None)
            self._stopped_at_ms.pop(session, None)

    def start_blind(self, session: str, models: dict[str, str]) -> None:
        """Blind mode on for the session's next turns: `models` is what each hidden side runs, kept here (until
        `end_blind`)."""
        with self._lock:
            self._blind[session] = dict(models)

    def is_blind(self, session: str) -> bool:
        with self._lock:
            return session in self._blind

    def blind_models(self, session: str) -> dict[str, str]:
        """The model each of the session's hidden sides runs; empty when it is not blind."""
        with self._lock:
            return dict(self._blind.get(session, {}))

    def move_blind(self, session: str, models: dict[str, str]) -> bool:
        """The hidden sides' models after the served models changed (a reload's new name): whether the session is
        still blind (nothing moves when a vote came first)."""
        with self._lock:
            if session not in self._blind:
                return False
            self._blind[session].update(models)
            return True

    def end_blind(self, session: str) -> dict[str, str] | None:
        """Turn blind mode off (a vote, or the box unticked): the hidden sides' models for the one caller that
        found it on, None for any other (a second vote, or a vote racing it)."""
        with self._lock:
            return self._blind.pop(session, None)

    def models_for(self, session: str, models: dict[str, str]) -> dict[str, str]:
        """The models a turn runs: while the session is blind, the ones it keeps for its sides whatever the page
        sent (HIDDEN; or names, sent before the tick's reply reached the page, or by a script); else the page's.
        HIDDEN from a session that is not blind raises BadRequestError (BLIND_RESET): nothing is kept to run."""
        with self._lock:
            kept = self._blind.get(session)
        if kept is not None:
            return {**models, **kept}
        if HIDDEN in models.values():  # a page still blind that the server no longer is (it forgot the session)
            raise BadRequestError(BLIND_RESET)
        return dict(models)

    def page_text(self, session: str, text: str) -> str:
        """`text` as the session's page may show it: without any model name while the session is blind."""
        return self._error_text(session, [])(text)

    def model_names(self) -> list[str]:
        """The base (by its served name) and every loaded adapter, as the engine lists them now."""
        return [info.name for info in self.engine.models()]

    def is_base(self, model: str) -> bool:
        return model == BASE_MODEL_ALIAS or model == self.engine.base_model

    def send(self, inputs: TurnInputs, exchanges: list[Exchange], session: str) -> Iterator[TurnView]:
        """A new exchange: nothing happens for an empty message; a bad input raises before anything changes."""
        message = clean_message(inputs.message, self.settings.max_message_chars)
        if message is None:
            return
        yield from self._run(inputs, list(exchanges), message, session)

    def regenerate(self, inputs: TurnInputs, exchanges: list[Exchange], session: str) -> Iterator[TurnView]:
        """Drop the last exchange's replies and ask again with the same user message (current settings)."""
        if not exchanges:
            return
        yield from self._run(inputs, list(exchanges[:-1]), exchanges[-1].user, session, keep_box=inputs.message)

    def _run(
        self, inputs: TurnInputs, earlier: list[Exchange], message: str, session: str, keep_box: str = ""
    ) -> Iterator[TurnView]:
        available = [*self.model_names(), BASE_MODEL_ALIAS]
        inputs = replace(inputs, models=self.models_for(session, inputs.models))
        requests = self._requests(inputs, earlier, message, available)  # raises before any change if a value is bad
        earlier = finish_stopped(earlier)  # a turn this one cut short (the page had it mid-stream) reads stopped
        exchange = new_exchange(message, {side: r.model for side, r in requests.items()}, now=time.monotonic())
        exchanges = [*earlier, exchange]
        shown = self._error_text(session, [r.model for r in requests.values()])
        for side, request in list(requests.items()):
            problem = not_served(request.model, available)
            if problem:  # this side fails at once, without an upstream call; the other side goes on
                fail_reply(exchange.replies[side], shown(problem))
                del requests[side]
        control = self._register(session, inputs.clicked_at_ms, earlier)  # Stop, Clear and Undo reach it from now
        if control is None:
            return  # stopped while it waited in the queue: nothing is sent, nothing changes
        try:
            yield TurnView(exchanges, message_box=keep_box)
            if control.stopped:  # stopped while the page got its first view: nothing is sent
                requests = {}
            for batch in stream_sides(self.engine, requests, control):
                if control.discarded:
                    break
                _apply(exchange, batch, shown)
                yield TurnView(exchanges, message_box=keep_box)
        finally:
            control.stop()  # also runs when the page goes away mid-turn: the server stops generating
            self._unregister(session, control)
        if control.discarded:
            return  # Clear/Undo replaced the conversation: do not paint the old one back
        for reply in exchange.replies.values():
            stop_reply(reply, time.monotonic())
        if self.is_blind(session):  # the weights that answered, for the vote (a Reload before it changes names)
            weights = served_weights_by_name(self.engine)
            for reply in exchange.replies.values():
                reply.weights_sha256 = weights.get(reply.model, "")
        yield TurnView(exchanges, message_box=keep_box, running=False)

    def _requests(
        self, inputs: TurnInputs, earlier: list[Exchange], message: str, available: list[str]
    ) -> dict[str, ChatRequest]:
        requests = {}
        for side in SIDES:
            model = checked_model(inputs.models.get(side), available)
            system = inputs.system_prompt if inputs.persona_for_base or not self.is_base(model) else ""
            messages = history_for(earlier, side, system, next_user=message)
            requests[side] = ChatRequest(messages=messages, model=model, params=inputs.params)
        return requests

    def _error_text(self, session: str, models: list[str]) -> Callable[[str], str]:
        """How a side's error reads on the page: as it is, or without any model name while the session is blind."""
        if not self.is_blind(session):
            return lambda text: text
        names = [*models, *self.blind_models(session).values(), self.engine.base_model]
        return lambda text: hide_names(text, names)

    def stop(self, session: str, discard: bool = False, clicked_at_ms: float = 0.0) -> bool:
        """Stop the session's running turn (both streams); False when nothing was running.

        `discard`: the page is replacing the conversation (Clear, Undo); the turn yields nothing more.
        `clicked_at_ms`: when the person clicked (the page's clock); turns clicked before it never start.
        """
        with self._lock:
            if clicked_at_ms:
                self._stopped_at_ms[session] = max(clicked_at_ms, self._stopped_at_ms.get(session, 0.0))
            running = self._running.pop(session, None)
        if running is None:
            return False
        control, _ = running
        control.stop(discard=discard)
        return True

    def _register(self, session: str, clicked_at_ms: float, earlier: list[Exchange]) -> TurnControl | None:
        """The running turn's control, or None for a turn clicked before the session's last stop."""
        control = TurnControl()
        with self._lock:
            if clicked_at_ms and clicked_at_ms <= self._stopped_at_ms.get(session, 0.0):
                return None
            previous = self._running.get(session, (None, []))[0]
            self._running[session] = (control, earlier)
        if previous is not None:  # one turn per session: a new turn (Regenerate during a Send) ends the old one,
            previous.stop(discard=True)  # which paints nothing more: its stopped exchange would cover the new one
        return control

    def is_running(self, session: str) -> bool:
        with self._lock:
            return session in self._running

    def history_under_running_turn(self, session: str) -> list[Exchange] | None:
        """The exchanges before the session's running turn (its history while it streams); None when none runs."""
        with self._lock:
            return self._running[session][1] if session in self._running else None

    def _unregister(self, session: str, control: TurnControl) -> None:
        with self._lock:
            if self._running.get(session, (None, []))[0] is control:
                del self._running[session]


def _apply(exchange: Exchange, batch: list[SideEvent], shown: Callable[[str], str]) -> None:
    now = time.monotonic()
    for event in batch:
        reply = exchange.replies[event.side]
        if event.delta is not None:
            merge_delta(reply, event.delta, now)
        if event.error is not None:
            fail_reply(reply, shown(event.error))


def finish_stopped(exchanges: list[Exchange]) -> list[Exchange]:
    """After a cancelled turn: mark every reply still streaming as stopped (the text so far stays)."""
    now = time.monotonic()
    for exchange in exchanges:
        for reply in exchange.replies.values():
            stop_reply(reply, now)
    return exchanges


def undo(exchanges: list[Exchange], message_box: str) -> tuple[list[Exchange], str]:
    """Remove the last exchange; its user message goes back into the box unless the box holds new text."""
    if not exchanges:
        return exchanges, message_box
    last = exchanges[-1]
    return list(exchanges[:-1]), message_box if message_box.strip() else last.user
