"""When the person clicked, stamped in the browser: how a Stop reaches a Send still waiting in Gradio's queue.

Send, Regenerate, Stop, Undo, Clear and the Blind checkbox carry one more input, a hidden number that
`clicked_js` sets in the browser to the page's own clock (ms; `performance.timeOrigin + performance.now()`,
which never steps back while the page lives, unlike the wall clock). The server compares stamps of one session
only (app.turns.ChatTurns): a turn clicked before the session's last stop never starts. API callers send no
stamp (0), which is never compared.
"""

from __future__ import annotations

import gradio as gr


def stamp_input() -> gr.Number:
    """The hidden input an event's `clicked_js` fills (0 for API callers, who may leave it out)."""
    return gr.Number(value=0, visible=False, label="clicked at (ms, the page's clock; optional)")


NOW_JS = "performance.timeOrigin + performance.now()"  # the page's clock, ms


def clicked_js(count: int) -> str:
    """Browser JS run before an event's handler: its `count` inputs as they are, the last one set to now (ms)."""
    return f"(...values) => [...values.slice(0, {count - 1}), {NOW_JS}]"


def click_time(value: object) -> float:
    """The click time a handler received (ms on the page's clock), 0.0 when it is missing or not a time."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e15:
        return 0.0
    return float(value)
