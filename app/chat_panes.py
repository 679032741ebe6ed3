"""The Chat tab's layout: a pane per side (model picker, finished history, live exchange, stats line), the
message row with its buttons, and the Settings accordion. Nothing is wired here (app.chat_events does that).

    panes = {side: side_pane(side, picker_kwargs) for side in SIDES}
    message, buttons = message_row()
    controls = settings_panel(settings, message, panes)   # the shared inputs of a turn, in handler order
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import render
from app.click_stamp import click_time
from app.config import AppArgs
from app.personas import CUSTOM_PERSONA, PERSONAS, persona_text
from app.turns import TurnInputs
from app.validation import sampling_params


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


def side_pane(side: str, picker_kwargs: dict[str, Any]) -> SidePane:
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


def message_row() -> tuple[gr.Textbox, Buttons]:
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


def settings_panel(settings: AppArgs, message: gr.Textbox, panes: dict[str, SidePane]) -> Controls:
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
