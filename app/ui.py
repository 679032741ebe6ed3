"""The Gradio page: `build_demo(engine, settings) -> gr.Blocks`. Nothing is launched here.

Layout: a Chat tab with two columns (model picker, conversation, stats line per side), one message box that sends
to both, Send/Stop/Regenerate/Undo/Clear, a Settings accordion (persona, system prompt, sampling, seed): its
layout in app/chat_panes.py, its events in app/chat_events.py; Blind mode and votes (app/blind.py), Export (JSON +
Markdown) and the Adapters panel (app/adapter_panel.py); an Evaluate tab (app/evaluate_tab.py) and, when training
is offered, a Train tab (app/train_tab.py).

Each side shows its conversation in two Chatbots: the finished exchanges (`#history-left`), and below it, while a
turn runs, the exchange being streamed (`#live-left`); both sit in `#chat-left`. A turn's streamed updates carry
only that exchange, so what the browser receives and re-renders per update does not grow with the conversation;
when the turn ends, one update moves the exchange into the history (the streamed box hides again).

    demo = build_demo(engine, AppArgs(max_new_tokens=256))
    demo.launch(css=CSS)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.adapter_panel import build_adapter_panel, picker_choices
from app.blind import build_blind_panel
from app.chat_events import wire_chat
from app.chat_panes import Controls, message_row, settings_panel, side_pane
from app.config import AppArgs
from app.conversation import SIDES, Exchange
from app.evaluate_tab import build_evaluate_tab
from app.event_options import QUIET
from app.export import downloadable, export_folder, export_stem, write_export
from app.train_tab import TrainingSettings, build_train_tab
from app.turns import ChatTurns
from serving.protocol import Engine

CSS = """
.hh-stats { font-size: 0.85em; opacity: 0.85; }
#chat-left, #chat-right { min-height: 420px; }
#live-left:not(:has([data-testid="user"])), #live-right:not(:has([data-testid="user"])) { display: none; }
#chat-left:has(#live-left [data-testid="user"]) #history-left:not(:has([data-testid="user"])),
#chat-right:has(#live-right [data-testid="user"]) #history-right:not(:has([data-testid="user"])) { display: none; }
"""


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
                panes = {side: side_pane(side, picker) for side, picker in zip(SIDES, initial, strict=True)}
            message, buttons = message_row()
            controls = settings_panel(settings, message, panes)
            wire_chat(turns, settings, state, panes, controls, buttons)
            blind = build_blind_panel(turns, settings, panes, state, controls)
            _export_panel(turns, state, controls, blind)
            pickers = [panes[side].picker for side in SIDES]
            on_load, load_outputs = build_adapter_panel(turns, settings, pickers)
        with tabs:
            build_evaluate_tab(engine, settings, message, tabs, "chat")
            if training is not None:  # the Train tab (app/train_tab.py); absent on a public link by default
                build_train_tab(turns, settings, training, pickers)
        demo.load(on_load, None, load_outputs, queue=False, **QUIET)
        demo.unload(_forgetting(turns))
    demo.queue(default_concurrency_limit=settings.concurrency_limit, max_size=settings.max_queue_size)
    return demo


def _forgetting(turns: ChatTurns) -> Callable[[gr.Request], None]:
    """What runs when a page closes: its session's turn stops and what was kept for it goes."""

    def forget(request: gr.Request) -> None:
        turns.forget(request.session_hash or "")

    return forget


BLIND_EXPORT_REFUSED = "Blind mode is on: vote first (or turn blind mode off). An export names both models."


def _export_panel(turns: ChatTurns, state: gr.State, controls: Controls, blind: gr.Checkbox) -> None:
    """The Export accordion. It refuses while the session is blind on the server (whatever the page's box says: a
    script can send it unticked) or while the page's box is ticked."""
    export_dir = export_folder(turns.settings.export_dir)
    with gr.Accordion("Export the conversation", open=False):
        button = gr.Button("Export JSON + Markdown", elem_id="export")
        files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="export-files")

    def export(request: gr.Request, exchanges: list[Exchange], blind_on: bool, *values: Any) -> list[str]:
        if blind_on or turns.is_blind(request.session_hash or ""):
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
        return downloadable([write_export(exchanges, meta, export_dir, kind, stem) for kind in ("json", "md")])

    button.click(export, [state, blind, *controls.as_list()], files, concurrency_limit=None, api_name="export")
