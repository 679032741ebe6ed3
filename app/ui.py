"""The Gradio page: `build_demo(engine, settings) -> gr.Blocks`. Nothing is launched here.

Layout: a Chat tab with two columns (model picker, conversation, stats line per side), one message box that sends
to both, Send/Stop/Regenerate/Undo/Clear, a Settings accordion (persona, system prompt, sampling, seed), Blind mode
and votes (app/blind.py), Export (JSON + Markdown) and the Adapters panel (app/adapter_panel.py); an Evaluate
tab (app/evaluate_tab.py) and, when training is offered, a Train tab (app/train_tab.py). Handlers are thin:
they read the page into `TurnInputs`, run `app.turns.ChatTurns`, and render with `app.render`.

Each side shows its conversation in two Chatbots: the finished exchanges (`#history-left`), and below it, while a
turn runs, the exchange being streamed (`#live-left`); both sit in `#chat-left`. A turn's streamed updates carry
only that exchange, so what the browser receives and re-renders per update does not grow with the conversation;
when the turn ends, one update moves the exchange into the history (the streamed box hides again).

    demo = build_demo(engine, AppArgs(max_new_tokens=256))
    demo.launch(css=CSS)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import render
from app.adapter_panel import build_adapter_panel, picker_choices
from app.blind import build_blind_panel
from app.click_stamp import NOW_JS, click_time, clicked_js, stamp_input
from app.config import AppArgs
from app.conversation import SIDES, Exchange
from app.evaluate_tab import build_evaluate_tab
from app.event_options import QUIET
from app.export import export_folder, export_stem, write_export
from app.personas import CUSTOM_PERSONA, PERSONAS, persona_text
from app.train_tab import TrainingSettings, build_train_tab
from app.turns import ChatTurns, TurnInputs, TurnView, finish_stopped, undo
from app.validation import sampling_params
from serving.protocol import Engine, EngineError

CSS = """
.hh-stats { font-size: 0.85em; opacity: 0.85; }
#chat-left, #chat-right { min-height: 420px; }
#live-left:not(:has([data-testid="user"])), #live-right:not(:has([data-testid="user"])) { display: none; }
#chat-left:has(#live-left [data-testid="user"]) #history-left:not(:has([data-testid="user"])),
#chat-right:has(#live-right [data-testid="user"]) #history-right:not(:has([data-testid="user"])) { display: none; }
"""


@dataclass
class SidePane:
    picker: gr.Dropdown
    history: gr.Chatbot  # the finished exchanges
    chatbot: gr.Chatbot  # the exchange a running turn streams into (hidden at rest)
    stats: gr.Markdown


@dataclass
class Buttons:
    send: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    undo: gr.Button
    clear: gr.Button


@dataclass
class Controls:
    """The shared inputs of a turn, in the order handlers receive them (after the conversation state)."""

    message: gr.Textbox
    left_model: gr.Dropdown
    right_model: gr.Dropdown
    system_prompt: gr.Textbox
    persona_for_base: gr.Checkbox
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    max_tokens: gr.Slider
    seed: gr.Number

    def as_list(self) -> list[Any]:
        return list(vars(self).values())

    def raw(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(vars(self), values, strict=True))

    def read(self, values: tuple[Any, ...], settings: AppArgs, clicked_at_ms: object = 0) -> TurnInputs:
        """Parse the raw values (in `as_list` order); bad sampling values raise BadRequestError."""
        raw = self.raw(values)
        params = sampling_params(
            raw["temperature"], raw["top_p"], raw["top_k"], raw["max_tokens"], raw["seed"],
            settings.max_new_tokens_limit,
        )  # fmt: skip
        return TurnInputs(
            message=raw["message"] if isinstance(raw["message"], str) else "",
            models={"left": raw["left_model"], "right": raw["right_model"]},
            params=params,
            system_prompt=raw["system_prompt"] if isinstance(raw["system_prompt"], str) else "",
            persona_for_base=bool(raw["persona_for_base"]),
            clicked_at_ms=click_time(clicked_at_ms),
        )


def build_demo(engine: Engine, settings: AppArgs | None = None, training: TrainingSettings | None = None) -> gr.Blocks:
    """The whole page over an engine implementing serving.protocol.Engine, with its queue configured; the Train
    tab only when `training` is given (app.train_tab.training_settings decides)."""
    settings = settings or AppArgs()
    turns = ChatTurns(engine, settings)
    with gr.Blocks(title=settings.title) as demo:
        gr.Markdown(f"## {settings.title}")
        state = gr.State([])
        with gr.Tabs() as tabs, gr.Tab("Chat", id="chat", elem_id="chat-tab"):
            with gr.Row(equal_height=False):
                initial = picker_choices(engine, settings, None, None)
                panes = {side: _side_pane(side, picker) for side, picker in zip(SIDES, initial, strict=True)}
            message, buttons = _message_row()
            controls = _settings_panel(settings, message, panes)
            _wire_chat(turns, settings, state, panes, controls, buttons)
            blind = build_blind_panel(turns, settings, panes, state, controls)
            _export_panel(settings, state, controls, blind)
            pickers = [panes[side].picker for side in SIDES]
            on_load, load_outputs = build_adapter_panel(engine, settings, pickers)
        with tabs:
            build_evaluate_tab(engine, settings, message, tabs, "chat")
            if training is not None:  # the Train tab (app/train_tab.py); absent on a public link by default
                build_train_tab(engine, settings, training, pickers, blind)
        demo.load(on_load, None, load_outputs, queue=False, **QUIET)
        demo.unload(_forgetting(turns))
    demo.queue(default_concurrency_limit=settings.concurrency_limit, max_size=settings.max_queue_size)
    return demo


def _forgetting(turns: ChatTurns) -> Callable[[gr.Request], None]:
    """What runs when a page closes: its session's turn stops and what was kept for it goes."""

    def forget(request: gr.Request) -> None:
        turns.forget(request.session_hash or "")

    return forget


def _side_pane(side: str, picker_kwargs: dict[str, Any]) -> SidePane:
    title = "Left" if side == "left" else "Right"
    with gr.Column():
        picker = gr.Dropdown(
            label=f"{title} model", elem_id=f"model-{side}", interactive=True, allow_custom_value=True, **picker_kwargs
        )  # names are checked against the engine in the handler
        with gr.Column(elem_id=f"chat-{side}"):
            history = _chatbot(title, f"history-{side}", max_height=460, placeholder=render.EMPTY_HISTORY)
            live = _chatbot(title + render.LIVE_SUFFIX, f"live-{side}", max_height=460)
        stats = gr.Markdown(render.stats_line(None), elem_id=f"stats-{side}", elem_classes=["hh-stats"])
    return SidePane(picker, history, live, stats)


def _chatbot(label: str, elem_id: str, **kwargs: Any) -> gr.Chatbot:
    return gr.Chatbot(
        label=label, elem_id=elem_id, allow_tags=False, sanitize_html=True, buttons=["copy"], feedback_options=None,
        layout="panel", **kwargs,
    )  # fmt: skip


def _message_row() -> tuple[gr.Textbox, Buttons]:
    message = gr.Textbox(
        label="Message (sent to both sides)", placeholder="Type a message and press Enter…", elem_id="message",
        lines=2, max_lines=8, submit_btn=False,
    )  # fmt: skip
    with gr.Row():
        buttons = Buttons(
            send=gr.Button("Send", variant="primary", elem_id="send"),
            stop=gr.Button("Stop", variant="stop", elem_id="stop"),
            regenerate=gr.Button("Regenerate", elem_id="regenerate"),
            undo=gr.Button("Undo", elem_id="undo"),
            clear=gr.Button("Clear", elem_id="clear"),
        )
    return message, buttons


def _settings_panel(settings: AppArgs, message: gr.Textbox, panes: dict[str, SidePane]) -> Controls:
    with gr.Accordion("Settings: persona, sampling, seed", open=False):
        with gr.Row():
            persona = gr.Dropdown(
                label="Persona preset", choices=[*PERSONAS, CUSTOM_PERSONA], value=settings.persona,
                elem_id="persona",
            )  # fmt: skip
            persona_for_base = gr.Checkbox(
                label="Also give the system prompt to the base model", value=True, elem_id="persona-for-base"
            )
        system_prompt = gr.Textbox(label="System prompt", value=PERSONAS.get(settings.persona, ""), lines=2)
        persona.change(_apply_persona, [persona, system_prompt], system_prompt, concurrency_limit=None)
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=settings.temperature, step=0.05, label="temperature")
            top_p = gr.Slider(0.05, 1.0, value=settings.top_p, step=0.05, label="top_p")
            top_k = gr.Slider(-1, 200, value=settings.top_k, step=1, label="top_k (-1: off)")
        with gr.Row():
            max_tokens = gr.Slider(
                1, settings.max_new_tokens_limit, value=settings.max_new_tokens, step=1, label="max new tokens",
                elem_id="max-tokens",
            )  # fmt: skip
            seed = gr.Number(value=settings.seed, precision=0, label="seed (same on both sides)")
    return Controls(
        message, panes["left"].picker, panes["right"].picker, system_prompt, persona_for_base,
        temperature, top_p, top_k, max_tokens, seed,
    )  # fmt: skip


def _apply_persona(name: str, current: str) -> str:
    text = persona_text(name)
    return current if text is None else text


def _wire_chat(
    turns: ChatTurns,
    settings: AppArgs,
    state: gr.State,
    panes: dict[str, SidePane],
    controls: Controls,
    buttons: Buttons,
) -> None:
    histories, lives = [panes[s].history for s in SIDES], [panes[s].chatbot for s in SIDES]
    stats = [panes[s].stats for s in SIDES]
    streamed = [controls.message, *lives, *stats, state]  # what a running turn updates: never the history
    at_rest = [*histories, *lives, *stats]
    every_view = [controls.message, state, *at_rest]
    # The last input of Send, Regenerate, Stop, Undo and Clear is when the person clicked (app.click_stamp): a
    # Stop reaches a Send still waiting in the queue.
    clicked = stamp_input()
    inputs = [state, *controls.as_list(), clicked]

    def send(request: gr.Request, exchanges: list[Exchange], *values: Any) -> Iterator[list[Any]]:
        message = controls.raw(values[:-1])["message"]
        if not isinstance(message, str) or not message.strip():
            yield NOTHING_STREAMED  # empty input does nothing
            return
        yield from _stream_views(turns.send, controls, settings, request, exchanges, values)

    def regenerate(request: gr.Request, exchanges: list[Exchange], *values: Any) -> Iterator[list[Any]]:
        yield from _stream_views(turns.regenerate, controls, settings, request, exchanges, values)

    def stop(request: gr.Request, exchanges: list[Exchange], box: str, at: Any = 0) -> list[Any]:
        turns.stop(request.session_hash or "", clicked_at_ms=click_time(at))  # the turn's handler ends by itself
        return _every_view(TurnView(finish_stopped(exchanges), message_box=box, running=False))

    def undo_last(request: gr.Request, exchanges: list[Exchange], box: str, at: Any = 0) -> list[Any]:
        turns.stop(request.session_hash or "", discard=True, clicked_at_ms=click_time(at))
        remaining, box = undo(finish_stopped(exchanges), box or "")
        return _every_view(TurnView(remaining, message_box=box, running=False))

    def clear(request: gr.Request, box: str, at: Any = 0) -> list[Any]:
        turns.stop(request.session_hash or "", discard=True, clicked_at_ms=click_time(at))
        return _every_view(TurnView([], message_box=box, running=False))

    # No `cancels=`: in Gradio 6.31 a cancel also kills the NEXT send of the session (seen in the browser);
    # TurnControl closes the streams (vLLM aborts) and the handler returns within ~0.1 s on its own.
    # Gradio's progress tracker on every output (a timer in five boxes) delayed a turn's first text on the page
    # (bench/README.md, "Gradio's progress tracker"). Instead, the stats lines say "sending…" in the browser at
    # once (no server round trip), until the turn's first update or, for a turn that never starts, the rest step.
    sending = {"fn": None, "inputs": [controls.message, *stats], "outputs": stats, "js": SENDING_JS,
               "api_visibility": "private", **QUIET}  # fmt: skip
    rest = {"fn": _rest_views, "inputs": [state], "outputs": at_rest, "concurrency_limit": None,
            "api_visibility": "private", **QUIET}  # fmt: skip
    triggers = [buttons.send.click, controls.message.submit]
    gr.on(triggers, **sending)
    # "always_last": a Send clicked while this session's previous Send is pending (streaming, or stopped while it
    # waited in the queue) runs once that one is done, reading the page then; Gradio's default ("once") would
    # drop it without a word. A double click thus sends once: the box is empty by the time the second runs.
    sent = gr.on(triggers, send, inputs, streamed, api_name="send", js=clicked_js(len(inputs)),
                 trigger_mode="always_last", concurrency_id=TURNS, **QUIET)  # fmt: skip
    sent.then(**rest)
    sent.failure(**rest)  # Gradio 6.31 runs `.then` after a success only (seen in the browser)
    # Regenerate's click time is written into `clicked` in the browser at the click (the turn itself starts one
    # server round trip later, in `.then`, and reads it from there).
    now = f"() => [...{[render.SENDING] * 2}, {NOW_JS}]"
    buttons.regenerate.click(**{**sending, "js": now, "outputs": [*stats, clicked]})
    regenerated = buttons.regenerate.click(
        _history_before_last, [state], histories, concurrency_limit=None, api_visibility="private", **QUIET
    ).then(regenerate, inputs, streamed, api_name="regenerate", concurrency_id=TURNS, **QUIET)  # fmt: skip
    regenerated.then(**rest)
    regenerated.failure(**rest)
    box = [state, controls.message, clicked]
    ends = {"outputs": every_view, "concurrency_limit": None, "js": clicked_js(len(box)), **QUIET}
    buttons.stop.click(stop, box, api_name="stop", **ends)
    buttons.undo.click(undo_last, box, api_name="undo", **ends)
    buttons.clear.click(clear, [controls.message, clicked], api_name="clear", **{**ends, "js": clicked_js(2)})


# Send and Regenerate share one concurrency group: `--concurrency-limit` turns at once over all users, whichever
# button started them (each event would otherwise get its own limit).
TURNS = "turns"

# The stats lines the moment Send is clicked, in the browser (an empty message sends nothing): (message, left
# stats, right stats) -> both stats.
SENDING_JS = f"""(message, left, right) => (message || '').trim() ? {[render.SENDING] * 2} : [left, right]"""


def _stream_views(
    step: Callable[[TurnInputs, list[Exchange], str], Iterator[TurnView]],
    controls: Controls,
    settings: AppArgs,
    request: gr.Request,
    exchanges: list[Exchange],
    values: tuple[Any, ...],
) -> Iterator[list[Any]]:
    """Run one turn step and render what it streams; a bad input becomes a message and changes nothing.

    `values`: the controls' values (`Controls.as_list` order), then the click time."""
    streamed = False
    try:
        inputs = controls.read(values[:-1], settings, clicked_at_ms=values[-1])
        for view in step(inputs, exchanges if isinstance(exchanges, list) else [], request.session_hash or ""):
            streamed = True
            yield _streamed_views(view)
        if not streamed:  # a turn stopped in the queue, an empty message or nothing to regenerate
            yield NOTHING_STREAMED
    except EngineError as error:
        raise gr.Error(str(error), print_exception=False) from error


# What a turn step that streamed nothing leaves on the page: everything as it was (a generator that yields
# nothing would set every output to None in Gradio 6.31: the message box emptied, seen in the browser).
NOTHING_STREAMED = [gr.skip()] * 6


def _streamed_views(view: TurnView) -> list[Any]:
    """[message box, left and right live exchange, left and right stats, state]: the turn's exchange only."""
    lives = [render.chatbot_messages(view.exchanges[-1:], side) for side in SIDES]
    return [view.message_box, *lives, *_stats_lines(view.exchanges), view.exchanges]


def _stats_lines(exchanges: list[Exchange]) -> list[str]:
    last = exchanges[-1] if exchanges else None
    return [render.stats_line(last.replies.get(side) if last else None) for side in SIDES]


def _rest_views(exchanges: list[Exchange]) -> list[Any]:
    """[left and right history, left and right live, left and right stats]: every exchange in the history, the
    live boxes empty, the stats of the last exchange."""
    exchanges = exchanges if isinstance(exchanges, list) else []
    histories = [render.chatbot_messages(exchanges, side) for side in SIDES]
    return [*histories, [], [], *_stats_lines(exchanges)]


def _history_before_last(exchanges: list[Exchange]) -> list[Any]:
    """[left and right history] without the last exchange (Regenerate streams it again in the live boxes)."""
    earlier = exchanges[:-1] if isinstance(exchanges, list) else []
    return [render.chatbot_messages(earlier, side) for side in SIDES]


def _every_view(view: TurnView) -> list[Any]:
    """[message box, state, histories, lives, stats]: the conversation at rest (Stop, Undo, Clear)."""
    return [view.message_box, view.exchanges, *_rest_views(view.exchanges)]


BLIND_EXPORT_REFUSED = "Blind mode is on: vote first (or turn blind mode off). An export names both models."


def _export_panel(settings: AppArgs, state: gr.State, controls: Controls, blind: gr.Checkbox) -> None:
    export_dir = export_folder(settings.export_dir)
    with gr.Accordion("Export the conversation", open=False):
        button = gr.Button("Export JSON + Markdown", elem_id="export")
        files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="export-files")

    def export(exchanges: list[Exchange], blind_on: bool, *values: Any) -> list[str]:
        if blind_on:
            raise gr.Error(BLIND_EXPORT_REFUSED, print_exception=False)
        raw = controls.raw(values)
        meta = {
            "system_prompt": raw["system_prompt"],
            "persona_for_base": raw["persona_for_base"],
            "models": {"left": raw["left_model"], "right": raw["right_model"]},
            "sampling": {k: raw[k] for k in ("temperature", "top_p", "top_k", "max_tokens", "seed")},
        }
        if not exchanges:
            raise gr.Error("nothing to export yet", print_exception=False)
        stem = export_stem()  # both files of one export share a name no other session gets
        return [str(write_export(exchanges, meta, export_dir, kind, stem)) for kind in ("json", "md")]

    button.click(export, [state, blind, *controls.as_list()], files, concurrency_limit=None, api_name="export")
