"""training.job / training.job_spec: the app's training jobs, checked without a browser.

The checks before Start are fast; the job tests run the real `python -m training` subprocess on the tiny Qwen3
with a 40-row upload and a few steps (take the heavy lock: `flock /tmp/heavy.lock .venv/bin/python -m pytest ...`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from common.process_group import process_group_alive
from training.job import JobRefused, TrainingJobs
from training.job_spec import JobSpec, check_dataset, planned_args, spec_problems, training_command

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_PRESET = REPO_ROOT / "configs" / "lora_tiny.yaml"


def make_spec(model: Path, dataset: Path, adapters: Path, **knobs) -> JobSpec:
    return JobSpec(name=knobs.pop("name", "fresh"), dataset_path=dataset, preset=TINY_PRESET, model_path=str(model),
                   adapters_dir=adapters, **knobs)  # fmt: skip


def test_bad_rows_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(6)]
    path.write_text("\n".join([*good[:3], "{not json", json.dumps({"instruction": "x"}), *good[3:]]) + "\n")
    check = check_dataset(path, max_bad_ratio=0.05)
    assert not check.ok and check.valid_rows == 6
    assert any(line.startswith("line 4: not valid JSON") for line in check.bad_rows), check.bad_rows
    assert "line 5: missing field(s): output" in check.bad_rows


def test_a_few_bad_rows_within_the_preset_ratio_are_named_and_allowed(tmp_path: Path) -> None:
    path = tmp_path / "mostly-good.jsonl"
    rows = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(30)] + ['{"output": ""}']
    path.write_text("\n".join(rows) + "\n")
    check = check_dataset(path, max_bad_ratio=0.05)
    assert check.ok and check.bad_rows == ["line 31: missing field(s): instruction"]


def test_name_knob_and_model_problems_are_all_listed(tmp_path: Path, forty_rows_path: Path) -> None:
    adapters = tmp_path / "adapters"
    (adapters / "taken").mkdir(parents=True)
    spec = make_spec(tmp_path / "no-model", forty_rows_path, adapters, name="taken", max_steps=0, lora_r=16,
                     max_lora_rank=8, learning_rate=float("nan"))  # fmt: skip
    problems = "\n".join(spec_problems(spec))
    assert "an adapter named 'taken' exists" in problems
    assert "learning_rate must be a number" in problems
    assert "no base model" in problems
    assert spec_problems(make_spec(tmp_path, forty_rows_path, adapters, name="../x"))[0].startswith("'../x' is not")
    model = tmp_path / "tiny-qwen3"  # served under its folder's name: an adapter of that name could never be used
    for taken_by_the_base in ("tiny-qwen3", "base"):
        named = spec_problems(make_spec(model, forty_rows_path, adapters, name=taken_by_the_base))
        assert "is the base model's name" in named[0], named
    spec.learning_rate = 1e-3
    assert "max steps must be -1" in "\n".join(spec_problems(spec))
    assert "above the server's --max-lora-rank 8" in "\n".join(spec_problems(spec))


def test_a_rank_above_the_servers_says_how_to_train_it(tmp_path: Path, forty_rows_path: Path) -> None:
    spec = make_spec(tmp_path, forty_rows_path, tmp_path / "adapters", lora_r=12, max_lora_rank=8)
    said = "\n".join(spec_problems(spec))
    assert "rank 12 is above the server's --max-lora-rank 8" in said and "choose a rank of at most 8" in said
    assert "`./launch.sh --max-lora-rank 16`" in said  # the smallest rank vLLM accepts that holds 12


def test_a_full_fine_tune_preset_is_refused_before_start(tmp_path: Path, forty_rows_path: Path) -> None:
    """A job's export is installed and loaded as an adapter: a full model folder there could never be served."""
    spec = make_spec(tmp_path, forty_rows_path, tmp_path / "adapters")
    spec.preset = REPO_ROOT / "configs" / "full_qwen3_0_6b.yaml"
    assert "a full fine-tune: the Train tab trains LoRA adapters only" in "\n".join(spec_problems(spec))


def test_a_preset_field_training_does_not_know_is_refused_before_start(tmp_path: Path, forty_rows_path: Path) -> None:
    preset = tmp_path / "typo.yaml"
    preset.write_text(TINY_PRESET.read_text(encoding="utf-8") + "learning_rat: 0.1\n", encoding="utf-8")
    spec = make_spec(tmp_path, forty_rows_path, tmp_path / "adapters")
    spec.preset = preset
    assert "unknown field(s) learning_rat" in "\n".join(spec_problems(spec))


def test_a_preset_that_training_would_refuse_with_the_knobs_is_refused_before_start(
    tmp_path: Path, forty_rows_path: Path
) -> None:
    preset = tmp_path / "bad-ratio.yaml"
    preset.write_text(TINY_PRESET.read_text(encoding="utf-8") + "warmup_ratio: 2.0\n", encoding="utf-8")
    spec = make_spec(tmp_path, forty_rows_path, tmp_path / "adapters")
    spec.preset = preset
    assert "warmup_ratio must be in [0, 1), got 2.0" in "\n".join(spec_problems(spec))


def test_the_memory_check_plans_the_arguments_the_job_will_run_with(tmp_path: Path) -> None:
    spec = make_spec(tmp_path / "model", tmp_path / "d.json", tmp_path, max_steps=5, eval_steps=2, lora_r=4)
    planned = planned_args(spec)
    assert (planned.lora_r, planned.max_steps, planned.eval_steps, planned.save_steps) == (4, 5, 2, 2)
    assert planned.model_name_or_path == str((tmp_path / "model").resolve())


def test_the_command_runs_the_preset_with_the_knobs(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, tmp_path / "d.json", tmp_path, max_steps=5, eval_steps=2, learning_rate=1e-3)
    command = training_command(spec, tmp_path / "run", tmp_path / "adapter")
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert command[1:3] == ["-m", "training"] and flags["--config"] == str(TINY_PRESET)
    assert flags["--max_steps"] == "5" and flags["--eval_steps"] == "2" and flags["--save_steps"] == "2"
    assert flags["--learning_rate"] == "0.001" and "--lora_r" not in flags
    # the subprocess runs in the repo root: every path it gets, and the app's jobs folder, are absolute
    assert all(Path(flags[flag]).is_absolute() for flag in ("--config", "--model_name_or_path", "--dataset_path"))
    assert TrainingJobs(Path("relative-jobs")).jobs_dir.is_absolute()


def test_a_job_whose_process_is_gone_is_settled_as_failed(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "old-job"
    folder.mkdir(parents=True)
    state = {"id": "old-job", "name": "x", "status": "running", "started": time.time() - 60, "pid": 2**22 + 7}
    (folder / "state.json").write_text(json.dumps(state))
    (tmp_path / "jobs" / "active").write_text("old-job")
    latest = TrainingJobs(tmp_path / "jobs").latest()
    assert latest["status"] == "failed" and "no app was following it" in latest["reason"]
    assert not (tmp_path / "jobs" / "active").exists()


def test_a_job_that_finished_while_the_app_was_restarting_is_installed_and_served(tmp_path: Path) -> None:
    folder, adapters = tmp_path / "jobs" / "old-job", tmp_path / "adapters"
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    (folder / "adapter" / "metrics.json").write_text("{}")  # written last, by the atomic export
    state = {"id": "old-job", "name": "mine", "status": "running", "started": time.time() - 60, "pid": 2**22 + 7,
             "adapters_dir": str(adapters), "replace": False, "cancel_requested": False}  # fmt: skip
    (folder / "state.json").write_text(json.dumps(state))
    (tmp_path / "jobs" / "active").write_text("old-job")
    loaded: list[str] = []
    jobs = TrainingJobs(tmp_path / "jobs", on_success=lambda name, path: loaded.append(name) or name)
    latest = jobs.latest()
    assert latest["status"] == "succeeded" and latest["served_as"] == "mine" and loaded == ["mine"]
    assert (adapters / "mine" / "adapter_config.json").is_file()
    assert jobs.latest()["status"] == "succeeded" and loaded == ["mine"]  # settled once, not again on the next read


def watched_running_job(tmp_path: Path, job_id: str, name: str) -> TrainingJobs:
    """Jobs whose `active` job `job_id` is running under a watcher of this app (no process behind it)."""
    folder = tmp_path / "jobs" / job_id
    folder.mkdir(parents=True)
    state = {"id": job_id, "name": name, "status": "running", "started": time.time(), "pid": 2**22 + 7}
    (folder / "state.json").write_text(json.dumps(state))
    (tmp_path / "jobs" / "active").write_text(job_id)
    jobs = TrainingJobs(tmp_path / "jobs")
    jobs._watched[job_id] = object()
    return jobs


def test_a_cancel_that_meets_the_jobs_end_does_not_write_the_old_state_back(tmp_path: Path, monkeypatch) -> None:
    jobs = watched_running_job(tmp_path, "job-1", "mine")  # a watcher of this app settles it
    read, ending = jobs.read_state, []

    def read_while_the_job_ends(job_id: str):  # the job's own end lands between Cancel's read and its write
        found = read(job_id)
        if not ending:
            ending.append(threading.Thread(target=jobs._finish, args=(job_id, "succeeded", "trained")))
            ending[0].start()
            ending[0].join(timeout=0.3)
        return found

    monkeypatch.setattr(jobs, "read_state", read_while_the_job_ends)
    monkeypatch.setattr(jobs, "_stop_group", lambda pgid: None)
    said = jobs.cancel()
    ending[0].join()
    assert read("job-1")["status"] == "succeeded" and "had ended before Cancel: succeeded" in said


def test_a_start_claiming_while_the_last_job_finishes_keeps_its_claim(tmp_path: Path, monkeypatch) -> None:
    jobs = watched_running_job(tmp_path, "job-a", "a")
    active = tmp_path / "jobs" / "active"
    read_active, claims = jobs._active_id, []

    def active_id_while_a_start_claims():  # job a's end has read `active`; a Start claims before it unlinks
        found = read_active()
        if not claims:
            claims.append(threading.Thread(target=jobs._claim, args=("job-b",)))
            claims[0].start()
            claims[0].join(0.3)
        return found

    monkeypatch.setattr(jobs, "_active_id", active_id_while_a_start_claims)
    jobs._finish("job-a", "succeeded", "trained")
    claims[0].join(10)
    assert active.is_file() and active.read_text() == "job-b", "the new job lost its claim: a third could start"


def test_a_cancel_that_the_job_outlasts_does_not_claim_nothing_changed(tmp_path: Path, monkeypatch) -> None:
    jobs = watched_running_job(tmp_path, "job-1", "mine")  # installing its adapter: still running
    jobs.cancel_wait_s = 0.3
    monkeypatch.setattr(jobs, "_stop_group", lambda pgid: None)  # the training process has already exited
    said = jobs.cancel()
    assert "no adapter was changed" not in said and "has not ended yet" in said


def test_a_cancel_pressed_while_the_job_is_being_spawned_cancels_it(
    tmp_path: Path, tiny_model_dir: Path, forty_rows_path: Path, monkeypatch
) -> None:
    import subprocess

    from training import job

    monkeypatch.setattr(job, "training_command", lambda spec, run, adapter: ["sleep", "300"])
    jobs = TrainingJobs(tmp_path / "jobs")
    said, errors, pressers = [], [], []
    plain_popen = subprocess.Popen

    def press_cancel() -> None:
        try:
            said.append(jobs.cancel())
        except Exception as error:
            errors.append(error)

    def popen_while_cancel_is_pressed(*args, **kwargs):  # Cancel arrives between the claim and the process
        pressers.append(threading.Thread(target=press_cancel))
        pressers[0].start()
        pressers[0].join(0.5)
        return plain_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_while_cancel_is_pressed)
    started = jobs.start(make_spec(tiny_model_dir, forty_rows_path, tmp_path / "adapters"))
    monkeypatch.setattr(subprocess, "Popen", plain_popen)
    try:
        pressers[0].join(60)
        assert errors == [], errors
        wait_for(lambda: jobs.latest()["status"] != "running", timeout_s=60, what="the job to end")
        assert jobs.latest()["status"] == "cancelled" and said[0].startswith("Cancelled")
        assert not process_group_alive(started["pid"])
    finally:
        if process_group_alive(started["pid"]):
            jobs._stop_group(started["pid"])


def wait_for(condition, timeout_s: float = 600.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slow
def test_cancel_stops_the_group_and_keeps_the_adapter_then_a_replace_succeeds(
    tmp_path: Path, tiny_model_dir: Path, forty_rows_path: Path
) -> None:
    adapters = tmp_path / "adapters"
    (adapters / "mine").mkdir(parents=True)
    (adapters / "mine" / "marker.txt").write_text("the old adapter")
    loaded: list[tuple[str, Path]] = []
    jobs = TrainingJobs(tmp_path / "jobs", on_success=lambda name, path: loaded.append((name, path)) or f"{name}@2")
    spec = make_spec(tiny_model_dir, forty_rows_path, adapters, name="mine", replace=True, max_steps=500,
                     eval_steps=100)  # fmt: skip
    running = jobs.start(spec)
    with pytest.raises(JobRefused, match=f"already running: 'mine' \\(job {running['id']}\\)"):
        jobs.start(make_spec(tiny_model_dir, forty_rows_path, adapters, name="other", max_steps=2))
    wait_for(lambda: any("loss" in e for e in jobs.progress(running)), what="the first logged loss")
    assert "Cancelled 'mine'" in jobs.cancel()
    state = jobs.latest()
    assert state["status"] == "cancelled" and "no adapter was changed" in state["reason"]
    assert not process_group_alive(running["pid"])
    assert (adapters / "mine" / "marker.txt").read_text() == "the old adapter" and not loaded

    done = jobs.start(make_spec(tiny_model_dir, forty_rows_path, adapters, name="mine", replace=True, max_steps=3,
                                eval_steps=2))  # fmt: skip
    wait_for(lambda: jobs.latest()["status"] != "running", what="the second job")
    state = jobs.latest()
    assert state["id"] == done["id"] and state["status"] == "succeeded", (state, jobs.log_tail(state))
    assert state["served_as"] == "mine@2" and loaded == [("mine", adapters / "mine")]
    assert (adapters / "mine" / "adapter_model.safetensors").is_file() and not (
        adapters / "mine" / "marker.txt"
    ).exists()
    progress = jobs.progress(state)
    assert [e["step"] for e in progress if "loss" in e] == [1, 2, 3]
    assert [e["step"] for e in progress if "eval_loss" in e][:2] == [0, 2]


@pytest.mark.slow
def test_a_failed_run_says_why_and_changes_nothing(
    tmp_path: Path, tiny_model_dir: Path, forty_rows_path: Path
) -> None:
    adapters = tmp_path / "adapters"
    jobs = TrainingJobs(tmp_path / "jobs", on_success=lambda name, path: name)
    # max_length 16 passes the knob checks but cuts every example: training exits with a dataset error.
    jobs.start(make_spec(tiny_model_dir, forty_rows_path, adapters, name="short", max_steps=2, max_length=16))
    wait_for(lambda: jobs.latest()["status"] != "running", what="the failing job")
    state = jobs.latest()
    assert state["status"] == "failed" and "usable example" in state["reason"], state
    assert not (adapters / "short").exists()


QWEN3_4B_CONFIG = {  # Qwen3-4B-Thinking-2507's shape
    "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": True,
}  # fmt: skip


def qwen3_4b_spec(tmp_path: Path, dataset: Path) -> JobSpec:
    """The Train tab's default job on the served model: Qwen3-4B's shape, the 4B preset, the given rows."""
    model = tmp_path / "qwen3-4b"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(QWEN3_4B_CONFIG))
    preset = REPO_ROOT / "configs" / "lora_qwen3_4b_thinking.yaml"
    return JobSpec(name="big", dataset_path=dataset, preset=preset, model_path=str(model),
                   adapters_dir=tmp_path / "adapters")  # fmt: skip


def test_start_is_refused_with_the_numbers_when_training_cannot_fit_beside_the_server(
    tmp_path: Path, huanhuan_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qwen3-4B's shape on a simulated 24 GiB card: beside vLLM at 0.9 there is no room; with 16 GiB free there is."""
    import training.job as job

    spec = qwen3_4b_spec(tmp_path, huanhuan_path)
    refused = job.memory_verdict(spec, gpu=(24.0 * 0.1, 24.0))
    assert "training needs about" in refused and "only 2.4 GiB of the 24.0 GiB GPU is free" in refused
    assert job.memory_verdict(spec, gpu=(16.0, 24.0)) == "ok"  # huanhuan's rows are short: a batch of 8 fits
    monkeypatch.setattr(job, "gpu_memory_gib", lambda: (2.4, 24.0))
    jobs = TrainingJobs(tmp_path / "jobs")
    with pytest.raises(JobRefused, match=r"only 2\.4 GiB of the 24\.0 GiB GPU is free"):
        jobs.start(spec)
    assert jobs.latest() is None  # nothing was started
    monkeypatch.setattr(job, "gpu_memory_gib", lambda: None)  # a machine without a usable GPU: nothing to plan
    assert job.memory_verdict(spec) == "ok"


BESIDE_VLLM = {  # (free, total) GiB that nvidia-smi reads beside the app's vLLM server -> the batch chosen
    "24 GB card at 0.5": ((11.7, 23.6), 4),
    "H100 at launch.sh's 0.85": ((11.6, 79.2), 2),
}


@pytest.mark.parametrize(("reading", "chosen"), BESIDE_VLLM.values(), ids=BESIDE_VLLM.keys())
def test_the_default_preset_starts_beside_the_server_at_a_smaller_batch_with_the_same_effective_batch(
    tmp_path: Path, huanhuan_path: Path, monkeypatch: pytest.MonkeyPatch, reading: tuple[float, float], chosen: int
) -> None:
    """The Train tab has no batch knob: where the preset's batch 8 does not fit, the job halves the batch and
    doubles the accumulation steps until the plan fits, and says so in its log and its status line. The README
    quotes the batches chosen here."""
    import sys

    import training.job as job
    from training.memory_plan import plan_training_memory

    commands: list[list[str]] = []

    def record(spec: JobSpec, run: Path, adapter: Path) -> list[str]:
        commands.append(training_command(spec, run, adapter))
        return [sys.executable, "-c", "raise SystemExit(3)"]  # no model to train: end at once

    monkeypatch.setattr(job, "gpu_memory_gib", lambda: reading)
    monkeypatch.setattr(job, "training_command", record)
    spec = qwen3_4b_spec(tmp_path, huanhuan_path)
    free, total = reading
    assert not plan_training_memory(planned_args(spec), total, total - free).fits  # the preset's batch 8 does not
    jobs = TrainingJobs(tmp_path / "jobs")
    state = jobs.start(spec)
    flags = dict(zip(commands[0][3::2], commands[0][4::2], strict=False))
    batch, steps = int(flags["--per_device_train_batch_size"]), int(flags["--gradient_accumulation_steps"])
    assert batch == chosen and batch * steps == 8 * 2, flags  # the preset's 8 rows x 2 accumulation steps a step
    note = state["memory_note"]
    assert f"batch {batch} x {steps} accumulation steps" in note and "same 16 rows per optimizer step" in note
    wait_for(lambda: jobs.latest()["status"] != "running", timeout_s=60, what="the job to end")
    assert (jobs.jobs_dir / state["id"] / "train.log").read_text(encoding="utf-8").startswith(note)
    assert note in jobs.latest()["reason"]


def test_where_even_batch_1_cannot_fit_the_refusal_says_how_much_to_free_and_how(
    tmp_path: Path, huanhuan_path: Path
) -> None:
    """A 24 GB card beside vLLM at launch.sh's default 0.85: the 4B weights alone do not fit in what is left."""
    import training.job as job

    refused = job.memory_verdict(qwen3_4b_spec(tmp_path, huanhuan_path), gpu=(3.3, 23.6))
    assert "needs about 10.1 GiB" in refused and "batch 1 x " in refused  # the README quotes the 10.1
    assert "only 3.3 GiB of the 23.6 GiB GPU is free" in refused
    assert "--per_device_train_batch_size" not in refused  # the Train tab has no such knob
    assert "The Train tab tried every batch size down to 1" in refused
    assert "./launch.sh --gpu-memory-utilization 0.5" in refused  # (held - missing) / total, a tenth down


def test_a_card_too_small_for_the_server_and_the_run_together_says_so(tmp_path: Path, huanhuan_path: Path) -> None:
    import training.job as job

    refused = job.memory_verdict(qwen3_4b_spec(tmp_path, huanhuan_path), gpu=(7.0, 8.0))  # a server share can't help
    assert "cannot hold the server and this run together" in refused and "./launch.sh --gpu-memory" not in refused
