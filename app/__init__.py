"""The side-by-side Gradio app: base Qwen3-Thinking vs the same model with a LoRA adapter.

`python -m app --help` for the command line; `build_demo(engine, settings)` builds the page (no launch).
Gradio is imported only when the page is built.
"""

from __future__ import annotations

from typing import Any


def build_demo(engine: Any, settings: Any = None) -> Any:
    """The gr.Blocks page over an engine implementing serving.protocol.Engine (see app.ui.build_demo)."""
    from app.ui import build_demo as build

    return build(engine, settings)
