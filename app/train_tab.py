"""The Train tab: train an adapter from the page, watch its loss curve, and find it loaded on the right.

Everything about the job itself (checks, the `python -m training` subprocess, its state on disk, Cancel) is
training.job's; this module is the page. A timer reads the job folder every second, so a reload or a second tab
shows the same job. When a job this page saw running succeeds, both model pickers are refreshed and the right one
selects the new adapter (in blind mode the hidden sides keep their models, a retrained one under its new served
name; the server keeps them, the pickers their placeholder: app.adapter_panel.moved_pickers).
`serve_trained_adapter` is the ONE place this tab calls the engine for adapters: a retrained adapter is served
under a fresh name (`name@2`, ...), never reloaded in place.

    build_train_tab(turns, settings, training, pickers)   # inside gr.Blocks, when the page offers training
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from app import train_view
from app.adapter_panel import follow, moved_pickers
from app.config import AppArgs, training_refusal
from app.event_options import QUIET
from app.turns import ChatTurns
from serving.protocol import Engine
from training.config import TrainArgs
from training.job import JobRefused, TrainingJobs
from training.job_spec import JobSpec, check_dataset, preset_values, trains_lora


@dataclass(frozen=True)
class TrainingSettings:
    """What the Train tab needs besides AppArgs (absent: no Train tab). Paths as the app and launch.sh use them."""

    model_path: str  # the base model folder training starts from (the one the server serves)
    dataset_path: Path  # the default dataset (huanhuan.json)
    preset: Path  # the default config preset (configs/*.yaml)
    jobs_dir: Path  # one folder per job: state.json, train.log, run/, adapter/
    presets_dir: Path = Path("configs")  # every *.yaml here is offered as a preset
    max_lora_rank: int | None = None  # the server's --max-lora-rank: a larger rank is refused before Start


def training_settings(args: AppArgs) -> TrainingSettings | None:
    """The Train tab's settings from the app's config, or None when the page must not offer it."""
    if training_refusal(args):
        return None
    preset = Path(args.train_config)
    return TrainingSettings(model_path=args.train_model or args.model, dataset_path=Path(args.train_dataset),
                            preset=preset, jobs_dir=Path(args.jobs_dir), presets_dir=preset.parent,
                            max_lora_rank=args.max_lora_rank or None)  # fmt: skip


KNOB_LABELS = {
    "max_steps": ("max steps (-1: train the epochs)", 0),
    "num_train_epochs": ("epochs", None),
    "learning_rate": ("learning rate", None),
    "lora_r": ("LoRA rank", 0),
    "max_length": ("max length (tokens)", 0),
    "eval_steps": ("evaluate every N steps", 0),
}


def serve_trained_adapter(engine: Engine, name: str) -> str:
    """Hot-load a freshly exported adapter by name and return the name it is served under.

    One request: a reload serves a folder never served before as itself, and a folder served already under a
    fresh name (`name@N+1`), unloading the old one, so a pane never shows stale weights.
    """
    return engine.reload_adapter(name)


def presets(training: TrainingSettings) -> list[str]:
    """The default preset, and every other LoRA preset written for the served model (its folder's name): a
    preset for another model (full fine-tuning of Qwen3-0.6B, the tiny test model's) would train the served
    model with settings made for another."""
    found = sorted(str(p) for p in Path(training.presets_dir).glob("*.yaml") if _fits(p, training.model_path))
    return found if str(training.preset) in found else [str(training.preset), *found]


def _fits(preset: Path, model_path: str) -> bool:
    try:
        values = preset_values(preset)
    except (OSError, ValueError):  # a broken file in the folder is not offered
        return False
    model = Path(str(values.get("model_name_or_path", TrainArgs.model_name_or_path))).name
    return trains_lora(values) and model == Path(model_path).name


def build_train_tab(
    turns: ChatTurns, settings: AppArgs, training: TrainingSettings, pickers: list[gr.Dropdown]
) -> None:
    """The Train tab (only when the page offers training: `training_settings` gave settings), over the chat's
    `turns` (its engine, and the models of a blind session's sides)."""
    engine = turns.engine
    jobs = TrainingJobs(training.jobs_dir, on_success=lambda name, _path: serve_trained_adapter(engine, name))
    with gr.Tab("Train", elem_id="train-tab"):
        gr.Markdown(
            f"Train a LoRA adapter on `{training.model_path}`. It lands in the adapters folder, is loaded, and is "
            "selected on the right when it succeeds. One job at a time for the whole app."
        )
        with gr.Row():
            upload = gr.File(label="Dataset upload: JSON or JSONL (empty: the default dataset)",
                             file_types=[".json", ".jsonl"], elem_id="train-upload")  # fmt: skip
            report = gr.Markdown(f"Dataset: the default, `{training.dataset_path}`.", elem_id="train-dataset")
        with gr.Row():
            name = gr.Textbox(label="Adapter name", elem_id="train-name", max_lines=1)
            replace = gr.Checkbox(label="Replace an existing adapter of this name", elem_id="train-replace")
            preset = gr.Dropdown(label="Config preset", choices=presets(training), value=str(training.preset),
                                 elem_id="train-preset")  # fmt: skip
        with gr.Row():
            knobs = [gr.Number(label=label, precision=precision, elem_id=f"train-{knob.replace('_', '-')}")
                     for knob, (label, precision) in KNOB_LABELS.items()]  # fmt: skip
        preset_note = gr.Markdown(_preset_note(str(training.preset)), elem_id="train-preset-note")
        with gr.Row():
            start = gr.Button("Start", variant="primary", elem_id="train-start")
            cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        message = gr.Markdown(elem_id="train-message")
        status = gr.Markdown(train_view.status_line(None, []), elem_id="train-status")
        curve = gr.LinePlot(train_view.curve_frame([]), x="step", y="loss", color="series", elem_id="train-curve",
                            label="Loss (train and eval)", height=260)  # fmt: skip
        log = gr.Textbox(label="Log (last lines)", lines=8, max_lines=8, interactive=False, elem_id="train-log")
        seen = gr.State(None)  # {"id", "status", "points"} of the job this page last showed
    preset.change(_preset_note, preset, preset_note, concurrency_limit=None)
    upload.change(lambda f, p: _check_upload(f, p, training), [upload, preset], report, concurrency_limit=None)
    start_inputs = [upload, name, replace, preset, *knobs, seen]
    start.click(lambda *v: _start(jobs, settings, training, *v), start_inputs, [message, seen], api_name="train_start")
    cancel.click(lambda: jobs.cancel(), None, message, concurrency_limit=None, api_name="train_cancel")

    def tick(request: gr.Request, seen: Any, left: Any) -> list[Any]:
        return _tick(jobs, turns, settings, request.session_hash or "", seen, left)

    gr.Timer(1.0).tick(tick, [seen, pickers[0]], [status, curve, log, seen, *pickers], concurrency_limit=None, **QUIET)


def _preset_note(preset: str) -> str:
    try:
        return train_view.preset_summary(preset_values(Path(preset)))
    except (OSError, ValueError) as error:
        return f"⚠ preset {preset}: {error}"


def _check_upload(file: str | None, preset: str, training: Any) -> str:
    """The upload checked as training will read it: every bad row named by line."""
    if not file:
        return f"Dataset: the default, `{training.dataset_path}`."
    max_bad_ratio = TrainArgs().max_bad_ratio  # the default, unless the preset says otherwise
    with contextlib.suppress(OSError, ValueError):
        max_bad_ratio = float(preset_values(Path(preset)).get("max_bad_ratio", max_bad_ratio))
    check = check_dataset(Path(file), max_bad_ratio)
    head = ("✓ " if check.ok else "⚠ Cannot train on this file: ") + check.message
    return head + ("\n\n```\n" + "\n".join(check.bad_rows) + "\n```" if check.bad_rows else "")


def _start(jobs: TrainingJobs, settings: AppArgs, training: TrainingSettings, *values: Any) -> list[Any]:
    file, name, replace, preset, *knobs, seen = values
    spec = JobSpec(
        name=(name or "").strip(), dataset_path=Path(file) if file else training.dataset_path, preset=Path(preset),
        model_path=training.model_path, adapters_dir=Path(settings.adapters_dir),
        replace=bool(replace), max_lora_rank=training.max_lora_rank,
        **{knob: train_view.knob_value(v) for knob, v in zip(KNOB_LABELS, knobs, strict=True)},
    )  # fmt: skip
    if str(spec.preset) not in presets(training):
        return ["⚠ Not started: choose one of the listed presets.", seen]
    try:
        state = jobs.start(spec)
    except JobRefused as error:
        return ["⚠ Not started:\n\n```\n" + str(error) + "\n```", seen]
    note = f" {state['memory_note']}" if state.get("memory_note") else ""  # a smaller batch chosen to fit
    return [f"Started `{state['name']}` (job `{state['id']}`).{note}", {"id": state["id"], "status": "running"}]


def _tick(jobs: TrainingJobs, turns: ChatTurns, settings: AppArgs, session: str, seen: Any, left: Any) -> list[Any]:
    """Every second: the job's status, curve and log; select the adapter once on the right (`left`: the left
    picker's value) when a job seen running succeeds (in blind mode the hidden sides keep their models, a
    retrained one under its new served name)."""
    state = jobs.latest()
    seen = seen if isinstance(seen, dict) else {}
    if state is None:
        return [train_view.status_line(None, []), gr.skip(), "", seen, gr.skip(), gr.skip()]
    same = seen.get("id") == state["id"]
    if same and seen.get("status") == state["status"] != "running":  # an ended job already shown: nothing to read
        return [gr.skip()] * 6
    progress = jobs.progress(state)
    points = len(train_view.loss_points(progress))
    curve = gr.skip() if same and seen.get("points") == points else train_view.curve_frame(progress)
    pickers = [gr.skip(), gr.skip()]
    succeeded_now = same and seen.get("status") == "running" and state["status"] == "succeeded"
    served = state.get("served_as")
    if succeeded_now and served:  # blind: the hidden sides keep their models; one retrained moves to its new name
        move = partial(follow, name=state["name"], served=served)
        pickers = moved_pickers(turns, settings, session, (left, served), move)
    seen = {"id": state["id"], "status": state["status"], "points": points}
    return [train_view.status_line(state, progress), curve, jobs.log_tail(state), seen, *pickers]
