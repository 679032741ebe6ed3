"""What the Train tab shows of a job, as pure functions of its state and progress (no Gradio, no engine).

`status_line(state, progress)` is the one-line summary (`#train-status`): running with its step, the latest
train and eval loss and how many points each curve has, or how the job ended and why. `curve_frame(progress)`
is the loss curve's data: one row per logged train loss and per evaluation (series "train" / "eval").
"""

from __future__ import annotations

import time
from typing import Any

STATUS_WORDS = {"running": "Running", "succeeded": "Succeeded", "failed": "Failed", "cancelled": "Cancelled"}


def loss_points(progress: list[dict[str, Any]]) -> list[tuple[int, float, str]]:
    """(step, loss, series) for every train loss and eval loss in the progress log."""
    points = []
    for entry in progress:
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        if isinstance(entry.get("loss"), int | float):  # the run's final summary says train_loss, not loss
            points.append((step, float(entry["loss"]), "train"))
        if isinstance(entry.get("eval_loss"), int | float):
            points.append((step, float(entry["eval_loss"]), "eval"))
    return points


def curve_frame(progress: list[dict[str, Any]]):
    """The loss curve as a DataFrame with columns step, loss, series (what gr.LinePlot draws)."""
    import pandas as pd

    return pd.DataFrame(loss_points(progress), columns=["step", "loss", "series"])


def _latest(points: list[tuple[int, float, str]], series: str) -> str:
    values = [loss for _, loss, name in points if name == series]
    return f"{series} loss {values[-1]:.4f} ({len(values)} points)" if values else f"{series} loss: none yet"


def status_line(state: dict[str, Any] | None, progress: list[dict[str, Any]], now: float | None = None) -> str:
    """Markdown for `#train-status`."""
    if state is None:
        return "No training job yet."
    word = STATUS_WORDS.get(state.get("status", ""), state.get("status", "?"))
    head = f"**{word}**: `{state['name']}` (job `{state['id']}`)"
    if state["status"] != "running":
        return f"{head}: {state.get('reason', '')}"
    points = loss_points(progress)
    steps = [e for e in progress if isinstance(e.get("step"), int) and isinstance(e.get("max_steps"), int)]
    where = f"step {steps[-1]['step']} of {steps[-1]['max_steps']}" if steps else "starting (loading the model)"
    elapsed = int((now or time.time()) - state["started"])
    return f"{head} · {where} · {_latest(points, 'train')} · {_latest(points, 'eval')} · {elapsed} s"


def knob_value(value: object) -> object:
    """A knob as the page sends it: None (empty or 0: the preset's value; no knob means anything at 0), else
    the number as given (the checks in training.job_spec refuse what is out of range)."""
    if value is None or value == "" or (isinstance(value, int | float) and not isinstance(value, bool) and value == 0):
        return None
    return value


def preset_summary(values: dict[str, Any]) -> str:
    """The preset's own values of the knobs, shown under them."""
    names = ("max_steps", "num_train_epochs", "learning_rate", "lora_r", "max_length", "eval_steps")
    shown = ", ".join(f"{name} {values[name]}" for name in names if name in values)
    return f"Empty (or 0) knobs take the preset's values: {shown or '(the training defaults)'}."
