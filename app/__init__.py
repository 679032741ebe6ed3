"""The side-by-side Gradio app: base Qwen3-Thinking vs the same model with a LoRA adapter.

`python -m app --help` for the command line; `build_demo(engine, AppArgs(...))` builds the page (no launch):
the one config, `app.config.AppArgs`, is what the command line parses and what the page is built from.
Gradio is imported only when the page is built.
"""

from __future__ import annotations

from typing import Any


def build_demo(engine: Any, settings: Any = None) -> Any:
    """The gr.Blocks page over an engine implementing serving.protocol.Engine (see app.ui.build_demo)."""
    from app.ui import build_demo as build

    return build(engine, settings)
