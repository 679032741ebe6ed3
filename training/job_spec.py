"""What one training job from the app is: the knobs, the checks made before anything starts, the command it runs.

`JobSpec` holds the adapter name, the dataset, the config preset (configs/*.yaml) and the few knobs the Train
tab offers, plus the batch size and accumulation steps that training.job_memory chooses where the preset's
batch does not fit beside the server; every other field comes from the preset. `spec_problems(spec)` lists
every reason the job cannot start (bad name, an existing adapter without "replace", a bad dataset with its rows
named by line, knobs out of range); `training_command(spec, ...)` is the `python -m training` command line it
runs.

    spec = JobSpec(name="my-persona", dataset_path=Path("my.jsonl"), preset=Path("configs/lora_tiny.yaml"),
                   model_path=".cache/tiny-qwen3", adapters_dir=Path("Models/adapters"), max_steps=20)
    print(spec_problems(spec) or training_command(spec, Path("runs/jobs/x/run"), Path("runs/jobs/x/adapter")))
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.dataclass_cli import load_yaml_fields
from training.config import TrainArgs, parse_args
from training.data import DatasetError, LoadReport, load_rows

KNOBS = ("max_steps", "num_train_epochs", "learning_rate", "lora_r", "max_length", "eval_steps")
BATCH_FIELDS = ("per_device_train_batch_size", "gradient_accumulation_steps")  # set by the memory plan, no knob


@dataclass
class JobSpec:
    """One training job: where from, where to, and the knobs that override the preset (None: the preset's)."""

    name: str
    dataset_path: Path
    preset: Path
    model_path: str
    adapters_dir: Path
    replace: bool = False
    max_steps: int | None = None  # -1: train num_train_epochs
    num_train_epochs: float | None = None
    learning_rate: float | None = None
    lora_r: int | None = None
    max_length: int | None = None
    eval_steps: int | None = None
    max_lora_rank: int | None = None  # the server's --max-lora-rank; a larger rank could never be loaded
    per_device_train_batch_size: int | None = None  # chosen by training.job_memory where the preset's does not fit
    gradient_accumulation_steps: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The knobs and batch fields that are set: they override the preset on the command line."""
        return {field: getattr(self, field) for field in KNOBS + BATCH_FIELDS if getattr(self, field) is not None}


@dataclass
class DatasetCheck:
    """The dataset as training will read it: usable or not, and every bad row by its line."""

    ok: bool
    message: str
    bad_rows: list[str]
    valid_rows: int = 0


def preset_values(preset: Path) -> dict[str, Any]:
    """The fields a config preset sets; a field `python -m training` does not know is a ValueError, as there."""
    return load_yaml_fields(TrainArgs, Path(preset))


def trains_lora(preset: dict[str, Any]) -> bool:
    """Whether a preset's fields (preset_values) train a LoRA adapter, as `python -m training` reads them."""
    return preset.get("finetune_type", TrainArgs.finetune_type) == "lora"


def check_dataset(path: Path, max_bad_ratio: float) -> DatasetCheck:
    """training.data's own checks, with the preset's max_bad_ratio: the rule `python -m training` applies."""
    try:
        report: LoadReport = load_rows(path)
    except DatasetError as error:
        return DatasetCheck(False, str(error), [])
    bad = [f"{where}: {why}" for where, why in report.bad]
    if len(report.rows) < 2:
        return DatasetCheck(False, f"{report.summary()}; training needs at least 2 valid rows", bad, len(report.rows))
    if report.bad_ratio > max_bad_ratio:
        message = f"{report.summary()}: more than the preset's max_bad_ratio {max_bad_ratio:.1%}; fix the rows below"
        return DatasetCheck(False, message, bad, len(report.rows))
    skipped = f"; the {len(bad)} bad row(s) below will be skipped" if bad else ""
    return DatasetCheck(True, report.summary() + skipped, bad, len(report.rows))


def knob_problems(spec: JobSpec) -> list[str]:
    problems = []
    for knob, value in spec.overrides().items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{knob} must be a number, got {value!r}")
    if problems:
        return problems
    if spec.max_steps is not None and (spec.max_steps == 0 or spec.max_steps < -1):
        problems.append(f"max steps must be -1 (train the epochs) or at least 1, got {spec.max_steps}")
    if spec.num_train_epochs is not None and spec.num_train_epochs <= 0:
        problems.append(f"epochs must be above 0, got {spec.num_train_epochs}")
    if spec.learning_rate is not None and not 0 < spec.learning_rate < 1:
        problems.append(f"learning rate must be between 0 and 1, got {spec.learning_rate}")
    if spec.lora_r is not None and spec.lora_r < 1:
        problems.append(f"rank must be at least 1, got {spec.lora_r}")
    if spec.lora_r is not None and spec.max_lora_rank and spec.lora_r > spec.max_lora_rank:
        problems.append(rank_problem(spec.lora_r, spec.max_lora_rank))
    if spec.max_length is not None and spec.max_length < 16:
        problems.append(f"max length must be at least 16, got {spec.max_length}")
    if spec.eval_steps is not None and spec.eval_steps < 1:
        problems.append(f"eval every N steps must be at least 1, got {spec.eval_steps}")
    return problems


def rank_problem(rank: int, max_lora_rank: int) -> str:
    """Why a LoRA rank above the server's --max-lora-rank is refused, and how to train it anyway."""
    from serving.adapters import vllm_rank_for

    wider = vllm_rank_for(rank)
    restart = f" or restart with a larger limit (`./launch.sh --max-lora-rank {wider}`)" if wider else ""
    return (
        f"rank {rank} is above the server's --max-lora-rank {max_lora_rank}: it could not load the adapter; "
        f"choose a rank of at most {max_lora_rank}{restart}"
    )


def name_problems(spec: JobSpec) -> list[str]:
    from serving.adapters import check_adapter_name  # the one rule for adapter names

    problems = check_adapter_name(spec.name, Path(spec.model_path).name)  # not the base's (default) served name
    if not problems and (Path(spec.adapters_dir) / spec.name).exists() and not spec.replace:
        problems.append(f"an adapter named '{spec.name}' exists; tick \"replace\" to train a new one in its place")
    return problems


def spec_problems(spec: JobSpec) -> list[str]:
    """Every reason this job cannot start (empty: it can). Dataset problems name each bad row by line."""
    knobs = knob_problems(spec)
    problems = name_problems(spec) + knobs
    try:
        preset = preset_values(spec.preset)
        if not knobs:
            planned_args(spec)  # the preset with the knobs, validated as the job's command will
    except (OSError, ValueError) as error:
        return [*problems, f"config preset {spec.preset}: {error}"]
    if not trains_lora(preset):  # the export is installed as an adapter
        problems.append(f"config preset {Path(spec.preset).name} is a full fine-tune: the Train tab trains LoRA "
                        "adapters only (run a full fine-tune with `python -m training --config ...`)")  # fmt: skip
    check = check_dataset(Path(spec.dataset_path), float(preset.get("max_bad_ratio", TrainArgs.max_bad_ratio)))
    if not check.ok:
        problems.append(f"dataset {Path(spec.dataset_path).name}: {check.message}")
        problems += [f"  {line}" for line in check.bad_rows]
    if not (Path(spec.model_path) / "config.json").is_file():
        problems.append(f"no base model at {spec.model_path} (config.json missing)")
    return problems


def planned_args(spec: JobSpec) -> TrainArgs:
    """The TrainArgs the job's `python -m training` command parses and validates (the preset, the knobs, the
    paths); ValueError names every field it refuses, as the command would."""
    return parse_args(training_command(spec, Path("planned-run"), Path("planned-adapter"))[3:])


def training_command(spec: JobSpec, output_dir: Path, export_dir: Path) -> list[str]:
    """`python -m training` for this job: the preset, the paths, the knobs; a checkpoint at every evaluation."""
    command = [
        sys.executable, "-m", "training", "--config", str(Path(spec.preset).resolve()),
        "--model_name_or_path", str(Path(spec.model_path).resolve()),
        "--dataset_path", str(Path(spec.dataset_path).resolve()),
        "--output_dir", str(output_dir), "--export_dir", str(export_dir), "--logging_steps", "1",
    ]  # fmt: skip
    overrides = spec.overrides()
    if "eval_steps" in overrides:  # the best checkpoint is chosen at evaluations: save there too
        overrides["save_steps"] = overrides["eval_steps"]
    for knob, value in overrides.items():
        command += [f"--{knob}", str(value)]
    return command
