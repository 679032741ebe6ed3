"""Blind mode in the chat: the two models are shuffled and unlabeled ("A" / "B") until the person votes.

Turning it on clears the conversation and draws at random (a coin flip) which side runs which of the pickers' two
models. The draw is kept on the server (the session's app.turns.ChatTurns), never sent to the browser until the
vote: both pickers hold HIDDEN and hide, a turn runs the models kept for its sides whatever the page sends, the
stats lines hide and say "A" and "B" where they would name the model, the panes are titled "A" and "B", and a
side's errors come without model names (app.hidden_names). A vote (A better, B better, tie, both bad) on the last
exchange is stored with its prompt, both replies, both model names (and the weights each adapter was loaded from),
the seed and the system prompt (app.votes.VoteStore, one JSON line in the votes folder), and reveals the names of
the models that answered it: blind mode turns off, and the pickers and stats lines show again, named. Turning it
off without a vote reveals them too. While it is on, Export refuses (the export names both models).

    blind = build_blind_panel(turns, settings, panes, state, controls)   # under the chat's message box
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.adapter_panel import picker_choices
from app.chat_panes import Controls, SidePane
from app.click_stamp import click_time, clicked_js, stamp_input
from app.config import AppArgs
from app.conversation import SIDES, Exchange
from app.event_options import QUIET
from app.hidden_names import HIDDEN
from app.render import LIVE_SUFFIX, stats_line, stats_lines
from app.turns import BLIND_RESET, ChatTurns
from app.votes import VoteStore
from serving.protocol import Engine, served_weights_by_name

LABELS = {"left": "A", "right": "B"}
CHOICES = {"left": "A is better", "right": "B is better", "tie": "Tie", "both_bad": "Both bad"}
BLIND_OFF = "⚠ Blind mode is off: there is no blind exchange to vote on."


def build_blind_panel(
    turns: ChatTurns, settings: AppArgs, panes: dict[str, SidePane], state: gr.State, controls: Controls
) -> gr.Checkbox:
    """The Blind checkbox, the vote buttons and the reveal line, under the chat's message box; returns the
    checkbox (the export refuses while it is ticked: an export names both models)."""
    with gr.Row():
        blind = gr.Checkbox(label="Blind mode: shuffle the sides and hide the names until I vote", elem_id="blind")
        status = gr.Markdown(elem_id="blind-status")
    with gr.Row(visible=False) as vote_row:
        buttons = {key: gr.Button(label, elem_id=f"vote-{key.replace('_', '-')}") for key, label in CHOICES.items()}
    pickers = [panes[side].picker for side in SIDES]
    chats = [chat for side in SIDES for chat in (panes[side].history, panes[side].chatbot)]
    stats = [panes[side].stats for side in SIDES]
    outputs = [blind, *pickers, *chats, *stats, vote_row, status, state]  # what every handler of BlindEvents returns
    events = BlindEvents(turns, settings, VoteStore(Path(settings.votes_dir)), len(outputs))
    toggled = [blind, state, *pickers, stamp_input()]  # the last: when the box was ticked (app.click_stamp)
    blind.input(events.toggle, toggled, outputs, concurrency_limit=None, api_name="blind_mode",
                js=clicked_js(len(toggled)), **QUIET)  # fmt: skip
    inputs = [blind, state, controls.seed, controls.system_prompt]
    for key, button in buttons.items():
        button.click(_with_choice(events.vote, key), inputs, outputs, concurrency_limit=None, api_name=f"vote_{key}",
                     **QUIET)  # fmt: skip
    return blind


@dataclass
class BlindEvents:
    """The Blind checkbox's and the vote buttons' handlers. Each returns the panel's outputs, in order: the box, both
    pickers, both sides' history and live chats, both stats lines, the vote row, the status line, the state."""

    turns: ChatTurns
    settings: AppArgs
    store: VoteStore
    outputs: int  # how many values each handler returns (the panel's outputs)

    def toggle(
        self, request: gr.Request, on: bool, exchanges: list[Exchange], left: str, right: str, at: Any = 0
    ) -> list[Any]:
        """The box ticked (`on`) or unticked; `left`, `right`: the pickers' values, `at`: when it was clicked."""
        session = request.session_hash or ""
        if not on:
            return self._off(session, exchanges, {"left": left, "right": right})
        self.turns.stop(session, discard=True, clicked_at_ms=click_time(at))  # a Send still queued never starts
        shown = _models_to_hide(self.turns, self.settings, session, {"left": left, "right": right})
        swap = secrets.randbelow(2) == 1
        self.turns.start_blind(session, {"left": shown["right"], "right": shown["left"]} if swap else shown)
        hidden = [gr.update(value=HIDDEN, visible=False) for _ in SIDES]  # the models stay on the server (turns)
        empty = [gr.update(value=[], label=label) for label in chat_labels(LABELS["left"], LABELS["right"])]
        quiet = [gr.update(value=stats_line(None), visible=False) for _ in SIDES]  # one dict each: Gradio pops values
        note = "Blind: the sides are shuffled and unnamed. Chat, then vote on the last exchange to reveal them."
        return [gr.skip(), *hidden, *empty, *quiet, gr.update(visible=True), note, []]

    def _off(self, session: str, exchanges: list[Exchange], page: dict[str, str]) -> list[Any]:
        """Unticked without a vote: the models revealed (the page's own when the server kept none, never HIDDEN)."""
        kept = self.turns.end_blind(session)
        models = kept if kept is not None else {side: model for side, model in page.items() if model != HIDDEN}
        pickers = _shown_pickers(self.turns.engine, self.settings, models)
        return _revealed(pickers, exchanges, _off_note(_shown_models(exchanges, models)), gr.skip())

    def vote(
        self, request: gr.Request, choice: str, on: bool, exchanges: list[Exchange], seed: Any, system: str
    ) -> list[Any]:
        """A vote button (`choice`, a key of CHOICES) on the last exchange: stored, then the names revealed."""
        session = request.session_hash or ""
        if not on or not self.turns.is_blind(session):  # the session's own state, not only what the page says
            return self._unchanged(f"⚠ {BLIND_RESET}." if on else BLIND_OFF)
        last = exchanges[-1] if exchanges else None
        if last is None or not all(reply.finished for reply in last.replies.values()):
            return self._unchanged("⚠ Send a message and let both sides finish before voting.")
        models = self.turns.end_blind(session)
        if models is None:  # a second click (or a script) raced this vote: one vote per exchange
            return self._unchanged("⚠ This exchange has a vote already.")
        try:
            names = self._store(choice, last, seed, system)
        except OSError as error:  # nothing saved: the exchange stays blind, so the vote can be given again
            self.turns.start_blind(session, models)
            return self._unchanged(f"⚠ The vote could not be saved ({error}); nothing was recorded.")
        said = CHOICES[choice] if choice in ("tie", "both_bad") else f"{CHOICES[choice]} ({names[choice]})"
        pickers = _shown_pickers(self.turns.engine, self.settings, models)
        return _revealed(pickers, exchanges, _revealed_note(f"Vote saved: {said}.", names), False)

    def _unchanged(self, status: str) -> list[Any]:
        """Every output left as it is but the status line (the second to last)."""
        return [gr.skip()] * (self.outputs - 2) + [status, gr.skip()]

    def _store(self, choice: str, last: Exchange, seed: Any, system: str) -> dict[str, str]:
        """Append the vote with both replies and the weights that answered; the model of each side."""
        replies = {side: _reply(last, side) for side in SIDES}
        engine = self.turns.engine
        weights = served_weights_by_name(engine) if not all(r["weights_sha256"] for r in replies.values()) else {}
        for reply in replies.values():  # a vote right after Stop comes before the turn recorded them
            reply["weights_sha256"] = reply["weights_sha256"] or weights.get(reply["model"], "")
        record = self.store.append({"vote": choice, "prompt": last.user, "seed": seed, "system_prompt": system,
                                    **replies})  # fmt: skip
        return {side: record[side]["model"] for side in SIDES}


def _with_choice(vote: Callable[..., list[Any]], choice: str) -> Callable[..., list[Any]]:
    """A handler of one vote button (Gradio passes the request to a parameter typed gr.Request)."""

    def handler(request: gr.Request, *values: Any) -> list[Any]:
        return vote(request, choice, *values)

    return handler


def _reply(exchange: Exchange, side: str) -> dict[str, Any]:
    reply = asdict(exchange.replies[side])
    keep = ("model", "weights_sha256", "thinking", "answer", "status", "thinking_closed", "error")
    return {key: reply[key] for key in keep}


def _models_to_hide(turns: ChatTurns, settings: AppArgs, session: str, page: dict[str, str]) -> dict[str, str]:
    """What the sides run once blind: the pickers' models; as they were when the session is blind already (ticked
    again by a script); a picker's default for one still holding HIDDEN (a page the server forgot, ticked again)."""
    kept = turns.blind_models(session)
    if kept or HIDDEN not in page.values():
        return kept or page
    defaults = picker_choices(turns.engine, settings, None, None)
    return {side: defaults[i].get("value") if page[side] == HIDDEN else page[side] for i, side in enumerate(SIDES)}


def _shown_pickers(engine: Engine, settings: AppArgs, models: dict[str, str]) -> list[Any]:
    """Both pickers shown with the models the hidden sides run now (checked against the server's list: one no
    longer served, or none given, falls back as a picker's value does; as they are when the server cannot be
    asked)."""
    choices = picker_choices(engine, settings, models.get("left"), models.get("right"))
    kept = [{"value": models[side]} if side in models else {} for side in SIDES]
    return [gr.update(visible=True, **{**kept[i], **choices[i]}) for i in range(len(SIDES))]


def _shown_models(exchanges: list[Exchange], models: dict[str, str]) -> dict[str, str]:
    """The models of the last exchange (what the person saw), else the hidden sides' (nothing was sent yet)."""
    last = exchanges[-1] if isinstance(exchanges, list) and exchanges else None
    if last is None:
        return models
    return {side: last.replies[side].model for side in SIDES}


def _off_note(names: dict[str, str]) -> str:
    """The line after unticking: the models revealed, or that the server had nothing left to reveal."""
    if all(names.get(side) for side in SIDES):
        return _revealed_note("Blind mode off (no vote).", names)
    return "Blind mode off. It had been reset on the server (the page was away): there is nothing to reveal."


def _revealed_note(said: str, names: dict[str, str]) -> str:
    """The reveal line: `said`, then the models that answered (`names`)."""
    return f"{said} A was `{names.get('left')}`, B was `{names.get('right')}`."


def _revealed(pickers: list[Any], exchanges: list[Exchange], note: str, blind: Any) -> list[Any]:
    """Pickers (their updates), panes and stats shown again under their real names."""
    titles = [gr.update(label=label) for label in chat_labels("Left", "Right")]
    stats = [gr.update(visible=True, value=line) for line in stats_lines(exchanges, {})]
    return [blind, *pickers, *titles, *stats, gr.update(visible=False), note, gr.skip()]


def chat_labels(left: str, right: str) -> list[str]:
    """Labels of [left history, left live, right history, right live] for the sides' titles."""
    return [label for title in (left, right) for label in (title, title + LIVE_SUFFIX)]
