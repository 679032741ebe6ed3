"""No event of the page keeps a loading status on a component whose props grow: app.event_options.QUIET's claim.

Gradio's page re-reads the props of every component in its loading-status bookkeeping on each streamed update;
an event's progress targets (its `show_progress_on`, else all its outputs) enter that bookkeeping when it runs.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app.config import AppArgs
from app.train_tab import TrainingSettings
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine
from tests.support.paths import REPO_ROOT

LAYOUTS = (gr.Tabs, gr.Tab, gr.Row, gr.Column, gr.Group, gr.Accordion)  # a layout's status re-reads all it holds
GROWING = (gr.Chatbot, gr.Dataframe, gr.LinePlot, gr.Image, *LAYOUTS)


def progress_targets(demo: gr.Blocks) -> dict[str, list[str]]:
    """Each event's name -> the kinds of the components it tracks a loading status on, growing ones only."""
    found = {}
    for fn in demo.fns.values():
        targets = fn.show_progress_on if fn.show_progress_on is not None else fn.outputs
        growing = [f"{type(block).__name__} {block.elem_id}" for block in targets if isinstance(block, GROWING)]
        if growing:
            found[f"{fn.name} ({', '.join(target[1] for target in fn.targets)})"] = growing
    return found


def test_no_event_tracks_a_status_on_a_history_table_plot_or_layout(fake_engine: FakeEngine, tmp_path: Path) -> None:
    training = TrainingSettings(model_path="m", dataset_path=tmp_path / "d.json",
                                preset=REPO_ROOT / "configs" / "lora_tiny.yaml", jobs_dir=tmp_path / "jobs",
                                presets_dir=REPO_ROOT / "configs")  # fmt: skip
    demo = build_demo(fake_engine, AppArgs(adapters_dir=str(tmp_path)), training)
    assert progress_targets(demo) == {}


def test_the_check_finds_an_event_that_tracks_a_history(fake_engine: FakeEngine, tmp_path: Path) -> None:
    demo = build_demo(fake_engine, AppArgs(adapters_dir=str(tmp_path)))
    history = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "history-left")
    with demo:
        gr.Button("x").click(lambda: [], None, history)  # Gradio's default: a status on every output
    assert progress_targets(demo) == {"<lambda> (click)": ["Chatbot history-left"]}
