"""Turn the conversation into what gr.Chatbot shows, and the per-side stats line. No Gradio import here.

Each assistant reply becomes up to two Chatbot messages: a "thought" message (Gradio's native
collapsible block: `metadata.title/status/duration`) holding the thinking, then the answer. Everything a
user or a model wrote is HTML-escaped first, so `<script>` or an unclosed `<think>` shows as text. Empty
marker spans (`hh-thinking`, `hh-answer`, `hh-error`, ...) give tests and CSS stable hooks.
"""

from __future__ import annotations

import html
from typing import Any

from app.conversation import SIDES, Exchange, Reply

THINKING_MARK = '<span class="hh-thinking"></span>'
ANSWER_MARK = '<span class="hh-answer"></span>'
ERROR_MARK = '<span class="hh-error"></span>'
NOTE_MARK = '<span class="hh-note"></span>'
WAITING_MARK = '<span class="hh-waiting"></span>'
SENDING = "_sending…_"  # a stats line between Send and the turn's first update (set in the browser)
LIVE_SUFFIX = " · this turn"  # the label of the box a running turn streams into, after the side's title
# What an empty conversation shows. Rendering it at page load also readies the page's Markdown renderer, so the
# first turn's first text is not the first Markdown the page renders (bench/README.md, "The first turn").
EMPTY_HISTORY = "*Send a message: both sides answer it.*"


# Titles are rendered as HTML by the page, so the tag is written escaped: the page shows "(no </think>)".
NEVER_CLOSED_TITLE = f"Thinking never closed (no {html.escape('</think>')}): there is no answer"


def escape(text: str) -> str:
    """Text safe to hand to the Chatbot's Markdown renderer: no HTML survives, Markdown still works."""
    return html.escape(text, quote=False)


def chatbot_messages(exchanges: list[Exchange], side: str) -> list[dict[str, Any]]:
    """The Chatbot value (messages format) for one side."""
    messages: list[dict[str, Any]] = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": escape(exchange.user)})
        reply = exchange.replies.get(side)
        if reply is not None:
            messages.extend(reply_messages(reply))
    return messages


def reply_messages(reply: Reply) -> list[dict[str, Any]]:
    """The thought block (if the model thought) and the answer block of one reply."""
    messages = []
    if reply.thinking:
        content = THINKING_MARK + escape(reply.thinking)
        messages.append({"role": "assistant", "content": content, "metadata": thought_metadata(reply)})
    body = answer_body(reply)
    if body:
        messages.append({"role": "assistant", "content": body})
    return messages


def thought_metadata(reply: Reply) -> dict[str, Any]:
    """Open with a spinner while thinking; collapsed with its duration once closed; open and marked otherwise."""
    metadata: dict[str, Any] = {}
    if reply.thinking_s is not None:
        metadata["duration"] = round(reply.thinking_s, 1)
    if reply.thinking_closed:
        metadata.update(title="Thought", status="done")
    elif reply.thinking_closed is False:
        metadata["title"] = NEVER_CLOSED_TITLE
    elif reply.status == "stopped":
        metadata["title"] = "Thinking (stopped)"
    elif reply.status == "error":
        metadata["title"] = "Thinking (interrupted by an error)"
    else:
        metadata.update(title="Thinking…", status="pending")
    return metadata


def answer_body(reply: Reply) -> str:
    """The answer text, plus a note when the reply was stopped, failed, never answered, or the engine noted one."""
    parts = [NOTE_MARK + "ℹ " + escape(notice) for notice in reply.notices]
    if reply.answer:
        parts.append(ANSWER_MARK + escape(reply.answer))
    elif reply.status == "waiting":
        parts.append(WAITING_MARK + "_waiting for the first token…_")
    if reply.status == "stopped":
        parts.append(NOTE_MARK + "_⏹ stopped_")
    if reply.error:
        parts.append(ERROR_MARK + "**⚠ Error:** " + escape(reply.error))
    if reply.status == "done" and not reply.answer and not reply.error:
        why = " (max new tokens reached)" if reply.stats and reply.stats.finish_reason == "length" else ""
        parts.append(NOTE_MARK + f"_No answer: the model did not finish thinking{why}._")
    return "\n\n".join(parts)


def stats_line(reply: Reply | None, shown_as: str | None = None) -> str:
    """Time to first token, tokens/s, thinking vs answer tokens for the side's latest reply, after the model's
    name, or after `shown_as` instead (blind mode: the name must not reach the page)."""
    if reply is None:
        return "_no reply yet_"
    model = escape(shown_as) if shown_as else f"`{escape(reply.model)}`"
    if reply.status == "waiting":
        return f"{model} · waiting for the first token…"
    ttft = reply.first_delta_s
    if reply.stats is not None and reply.stats.time_to_first_token_s is not None:
        ttft = reply.stats.time_to_first_token_s
    parts = [model, f"TTFT {ttft:.2f} s" if ttft is not None else "TTFT –"]
    if reply.stats is not None:
        stats = reply.stats
        parts += [
            f"{stats.tokens_per_s:.1f} tok/s",
            f"thinking {stats.reasoning_tokens} tok · answer {stats.answer_tokens} tok",
            f"finish: {stats.finish_reason}",
        ]
    elif not reply.finished:
        parts.append(f"streaming… {reply.pieces} pieces")
    if reply.status in ("stopped", "error"):
        parts.append(reply.status)
    return " · ".join(parts)


def stats_lines(exchanges: list[Exchange], names: dict[str, str]) -> list[str]:
    """Both sides' stats lines of the last exchange; `names`: what a side shows instead of its model's name."""
    last = exchanges[-1] if isinstance(exchanges, list) and exchanges else None
    return [stats_line(last.replies.get(side) if last else None, names.get(side)) for side in SIDES]
