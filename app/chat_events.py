"""The Chat tab's events: Send, Regenerate, Stop, Undo and Clear, wired to `app.turns.ChatTurns`.

Handlers are thin: they read the page into `TurnInputs` (app.chat_panes.Controls), run a ChatTurns step, and
render with `app.render`. A running turn streams only its own exchange (the live boxes, the stats lines, the
message box and the state); one rest step then moves it into the history. While the session is blind, the stats
lines and error messages name no model (the page is not to learn which side runs which).

    wire_chat(turns, settings, state, panes, controls, buttons)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import render
from app.blind import LABELS
from app.chat_panes import Buttons, Controls, SidePane
from app.click_stamp import NOW_JS, click_time, clicked_js, stamp_input
from app.config import AppArgs
from app.conversation import SIDES, Exchange
from app.event_options import QUIET
from app.turns import ChatTurns, TurnInputs, TurnView, finish_stopped, undo
from serving.protocol import EngineError


def wire_chat(
    turns: ChatTurns,
    settings: AppArgs,
    state: gr.State,
    panes: dict[str, SidePane],
    controls: Controls,
    buttons: Buttons,
) -> None:
    """Wire Send, Regenerate, Stop, Undo and Clear (the handlers of ChatEvents) to the panes and the controls."""
    histories, lives = [panes[s].history for s in SIDES], [panes[s].chatbot for s in SIDES]
    stats = [panes[s].stats for s in SIDES]
    streamed = [controls.message, *lives, *stats, state]  # what a running turn updates: never the history
    at_rest = [*histories, *lives, *stats]
    every_view = [controls.message, state, *at_rest]
    # The last input of Send, Regenerate, Stop, Undo and Clear is when the person clicked (app.click_stamp): a
    # Stop reaches a Send still waiting in the queue.
    clicked = stamp_input()
    inputs = [state, *controls.as_list(), clicked]
    events = ChatEvents(turns, settings, controls)
    # No `cancels=`: in Gradio 6.31 a cancel also kills the NEXT send of the session (seen in the browser);
    # TurnControl closes the streams (vLLM aborts) and the handler returns within ~0.1 s on its own.
    # Gradio's progress tracker on every output (a timer in five boxes) delayed a turn's first text on the page
    # (bench/README.md, "Gradio's progress tracker"). Instead, the stats lines say "sending…" in the browser at
    # once (no server round trip), until the turn's first update or, for a turn that never starts, the rest step.
    sending = {"fn": None, "inputs": [controls.message, *stats], "outputs": stats, "js": SENDING_JS,
               "api_visibility": "private", **QUIET}  # fmt: skip
    rest_step = {"fn": events.rest, "inputs": [state], "outputs": at_rest, "concurrency_limit": None,
                 "api_visibility": "private", **QUIET}  # fmt: skip
    triggers = [buttons.send.click, controls.message.submit]
    gr.on(triggers, **sending)
    # "always_last": a Send clicked while this session's previous Send is pending (streaming, or stopped while it
    # waited in the queue) runs once that one is done, reading the page then; Gradio's default ("once") would
    # drop it without a word. A double click thus sends once: the box is empty by the time the second runs.
    sent = gr.on(triggers, events.send, inputs, streamed, api_name="send", js=clicked_js(len(inputs)),
                 trigger_mode="always_last", concurrency_id=TURNS, **QUIET)  # fmt: skip
    sent.then(**rest_step)
    sent.failure(**rest_step)  # Gradio 6.31 runs `.then` after a success only (seen in the browser)
    # Regenerate's click time is written into `clicked` in the browser at the click (the turn itself starts one
    # server round trip later, in `.then`, and reads it from there).
    now = f"() => [...{[render.SENDING] * 2}, {NOW_JS}]"
    buttons.regenerate.click(**{**sending, "js": now, "outputs": [*stats, clicked]})
    regenerated = buttons.regenerate.click(
        _history_before_last, [state], histories, concurrency_limit=None, api_visibility="private", **QUIET
    ).then(events.regenerate, inputs, streamed, api_name="regenerate", concurrency_id=TURNS, **QUIET)  # fmt: skip
    regenerated.then(**rest_step)
    regenerated.failure(**rest_step)
    box = [state, controls.message, clicked]
    ends = {"outputs": every_view, "concurrency_limit": None, "js": clicked_js(len(box)), **QUIET}
    buttons.stop.click(events.stop, box, api_name="stop", **ends)
    buttons.undo.click(events.undo_last, box, api_name="undo", **ends)
    buttons.clear.click(events.clear, [controls.message, clicked], api_name="clear", **{**ends, "js": clicked_js(2)})


@dataclass
class ChatEvents:
    """The handlers of the chat's buttons over `turns`; `controls` reads a turn's inputs from the page's values."""

    turns: ChatTurns
    settings: AppArgs
    controls: Controls

    def send(self, request: gr.Request, exchanges: list[Exchange], *values: Any) -> Iterator[list[Any]]:
        """Send: [message box, live chats, stats, state] per streamed step; `values`: controls, then click time."""
        message = self.controls.raw(values[:-1])["message"]
        if not isinstance(message, str) or not message.strip():
            yield NOTHING_STREAMED  # empty input does nothing
            return
        yield from _stream_views(self.turns, self.turns.send, self.controls, self.settings, request, exchanges, values)

    def regenerate(self, request: gr.Request, exchanges: list[Exchange], *values: Any) -> Iterator[list[Any]]:
        """Regenerate: as Send, asking the last exchange's message again."""
        step = self.turns.regenerate
        yield from _stream_views(self.turns, step, self.controls, self.settings, request, exchanges, values)

    def stop(self, request: gr.Request, exchanges: list[Exchange], box: str, at: Any = 0) -> list[Any]:
        """Stop: the running turn ends (its handler returns by itself); the conversation at rest."""
        session = request.session_hash or ""
        self.turns.stop(session, clicked_at_ms=click_time(at))
        view = TurnView(finish_stopped(exchanges), message_box=box, running=False)
        return _every_view(view, _names(self.turns, session))

    def undo_last(self, request: gr.Request, exchanges: list[Exchange], box: str, at: Any = 0) -> list[Any]:
        """Undo: the running turn is dropped and the last exchange removed (its message back in the box)."""
        session = request.session_hash or ""
        self.turns.stop(session, discard=True, clicked_at_ms=click_time(at))
        remaining, box = undo(finish_stopped(exchanges), box or "")
        return _every_view(TurnView(remaining, message_box=box, running=False), _names(self.turns, session))

    def clear(self, request: gr.Request, box: str, at: Any = 0) -> list[Any]:
        """Clear: the running turn is dropped and the conversation emptied (the box keeps its text)."""
        self.turns.stop(request.session_hash or "", discard=True, clicked_at_ms=click_time(at))
        return _every_view(TurnView([], message_box=box, running=False), {})

    def rest(self, request: gr.Request, exchanges: list[Exchange]) -> list[Any]:
        """After a turn: [histories, live chats, stats] at rest; only the history when another turn of the session
        streams (a queued Send, a Regenerate): its live chats and stats are that turn's."""
        under = self.turns.history_under_running_turn(request.session_hash or "")
        if under is not None:
            return [*_histories(under), *[gr.skip()] * (2 * len(SIDES))]  # its live chats and stats: untouched
        return _rest_views(exchanges, _names(self.turns, request.session_hash or ""))


# Send and Regenerate share one concurrency group: `--concurrency-limit` turns at once over all users, whichever
# button started them (each event would otherwise get its own limit).
TURNS = "turns"

# The stats lines the moment Send is clicked, in the browser (an empty message sends nothing): (message, left
# stats, right stats) -> both stats.
SENDING_JS = f"""(message, left, right) => (message || '').trim() ? {[render.SENDING] * 2} : [left, right]"""


def _names(turns: ChatTurns, session: str) -> dict[str, str]:
    """What the stats lines show instead of each side's model: "A" and "B" while the session is blind, else
    nothing (the model's own name)."""
    return LABELS if turns.is_blind(session) else {}


def _stream_views(
    turns: ChatTurns,
    step: Callable[[TurnInputs, list[Exchange], str], Iterator[TurnView]],
    controls: Controls,
    settings: AppArgs,
    request: gr.Request,
    exchanges: list[Exchange],
    values: tuple[Any, ...],
) -> Iterator[list[Any]]:
    """Run one turn step and render what it streams; a bad input becomes a message and changes nothing. Only the
    first view sets the message box (Send empties it): a later one would wipe what the person types while the
    reply streams (Gradio re-sets every output on every streamed update).

    `values`: the controls' values (`Controls.as_list` order), then the click time."""
    streamed, session = False, request.session_hash or ""
    try:
        inputs = controls.read(values[:-1], settings, clicked_at_ms=values[-1])
        for view in step(inputs, exchanges if isinstance(exchanges, list) else [], session):
            views = _streamed_views(view, _names(turns, session))
            if streamed:  # the box was set by the first view; what the person types meanwhile is theirs
                views[0] = gr.skip()
            streamed = True
            yield views
        if not streamed:  # a turn stopped in the queue, an empty message or nothing to regenerate
            yield NOTHING_STREAMED
    except EngineError as error:
        raise gr.Error(turns.page_text(session, str(error)), print_exception=False) from error


# What a turn step that streamed nothing leaves on the page: everything as it was (a generator that yields
# nothing would set every output to None in Gradio 6.31: the message box emptied, seen in the browser).
NOTHING_STREAMED = [gr.skip()] * 6


def _streamed_views(view: TurnView, names: dict[str, str]) -> list[Any]:
    """[message box, left and right live exchange, left and right stats, state]: the turn's exchange only."""
    lives = [render.chatbot_messages(view.exchanges[-1:], side) for side in SIDES]
    return [view.message_box, *lives, *render.stats_lines(view.exchanges, names), view.exchanges]


def _rest_views(exchanges: list[Exchange], names: dict[str, str]) -> list[Any]:
    """[left and right history, left and right live, left and right stats]: every exchange in the history, the
    live boxes empty, the stats of the last exchange."""
    exchanges = exchanges if isinstance(exchanges, list) else []
    return [*_histories(exchanges), [], [], *render.stats_lines(exchanges, names)]


def _histories(exchanges: list[Exchange]) -> list[Any]:
    return [render.chatbot_messages(exchanges, side) for side in SIDES]


def _history_before_last(exchanges: list[Exchange]) -> list[Any]:
    """[left and right history] without the last exchange (Regenerate streams it again in the live boxes)."""
    return _histories(exchanges[:-1] if isinstance(exchanges, list) else [])


def _every_view(view: TurnView, names: dict[str, str]) -> list[Any]:
    """[message box, state, histories, lives, stats]: the conversation at rest (Stop, Undo, Clear)."""
    return [view.message_box, view.exchanges, *_rest_views(view.exchanges, names)]
