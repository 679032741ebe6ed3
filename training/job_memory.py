"""The Train tab's memory plan before Start: the preset's batch, or a smaller one that fits beside the server.

The Train tab has no batch-size knob, and the 4B preset's batch of 8 does not fit in what a vLLM server leaves
of a 24 GB card (or of an H100 at launch.sh's default share). So where the preset's batch does not fit in the
memory free now, the job halves per_device_train_batch_size and raises gradient_accumulation_steps to keep the
rows of one optimizer step (training.memory_plan.fit_batch) until the plan fits; where even batch 1 does not,
Start is refused with how much memory is missing and what share to restart the server with. The rows' lengths
are estimated from their characters (about one token per Chinese character, capped at max_length), so a
dataset of short rows is not planned at a max_length it never reaches; `python -m training` checks again with
the tokenized rows before loading the model.

    fit = fit_to_memory(spec, (11.7, 23.6))   # (free, total) GiB of the GPU; None: no usable GPU, nothing planned
    fit.refusal or fit.note                   # why Start is refused, or what batch the job runs at ("": the preset's)
    training_command(fit.spec, run, adapter)  # the spec with the batch that fits
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from training.config import TrainArgs
from training.data import load_rows
from training.job_spec import JobSpec, planned_args
from training.memory_plan import MemoryVerdict, fit_batch, plan_training_memory

GpuMemory = tuple[float, float]  # (free GiB now, total GiB) of the GPU training would run on
TEMPLATE_TOKENS = 64  # the chat template's tokens around a row, roughly
ANSWER_END_TOKENS = 8  # what closes an answer (end of turn), roughly


@dataclass(frozen=True)
class MemoryFit:
    """The job to run (`spec`, its batch fitted), what was changed (`note`, "" for nothing) or why it cannot run
    (`refusal`, "" when it can)."""

    spec: JobSpec
    note: str = ""
    refusal: str = ""


def estimated_lengths(spec: JobSpec, args: TrainArgs) -> tuple[int, int]:
    """(longest row, longest answer) in tokens, estimated from the dataset's characters."""
    rows = load_rows(spec.dataset_path).rows
    row_chars = max((len(row.prompt) + len(row.output) for row in rows), default=args.max_length)
    answer_chars = max((len(row.output) for row in rows), default=args.max_length)
    return row_chars + len(args.system_prompt) + TEMPLATE_TOKENS, answer_chars + ANSWER_END_TOKENS


def fit_to_memory(spec: JobSpec, gpu: GpuMemory | None) -> MemoryFit:
    """The job at the preset's batch where it fits in `gpu`'s free memory, else at the largest halved batch that
    fits (same rows per optimizer step), else refused. `gpu`: (free, total) GiB; None: no usable GPU (training
    and vLLM-CPU share the RAM there), nothing is planned. What the server holds is what is not free now."""
    if gpu is None:
        return MemoryFit(spec)
    free, total = gpu
    preset = planned_args(spec)
    lengths = estimated_lengths(spec, preset)
    fitted, verdict = fit_batch(preset, total, total - free, *lengths)
    if not verdict.fits:
        advice = server_share_advice(verdict, total)
        return MemoryFit(spec, refusal=plan_training_memory(fitted, total, total - free, *lengths, advice).message)
    if fitted.per_device_train_batch_size == preset.per_device_train_batch_size:
        return MemoryFit(spec)
    first = plan_training_memory(preset, total, total - free, *lengths)
    spec = replace(spec, per_device_train_batch_size=fitted.per_device_train_batch_size,
                   gradient_accumulation_steps=fitted.gradient_accumulation_steps)  # fmt: skip
    return MemoryFit(spec, note=batch_note(preset, fitted, first, verdict))


def batch_note(preset: TrainArgs, fitted: TrainArgs, first: MemoryVerdict, verdict: MemoryVerdict) -> str:
    """One line for the job's log and status: the preset's batch did not fit, the one chosen does."""
    before = preset.per_device_train_batch_size * preset.gradient_accumulation_steps
    after = fitted.per_device_train_batch_size * fitted.gradient_accumulation_steps
    rows = f"the same {after} rows" if after == before else f"{after} rows (the preset: {before})"
    return (
        f"memory plan: the preset's batch {preset.per_device_train_batch_size} x "
        f"{preset.gradient_accumulation_steps} accumulation steps needs about {first.need_gib:.1f} GiB and "
        f"{first.available_gib:.1f} GiB is free beside the server, so this job trains at batch "
        f"{fitted.per_device_train_batch_size} x {fitted.gradient_accumulation_steps} accumulation steps "
        f"(about {verdict.need_gib:.1f} GiB planned; {rows} per optimizer step)"
    )


def server_share_advice(verdict: MemoryVerdict, total_gib: float) -> str:
    """What to do when even batch 1 does not fit: free the missing memory, e.g. by a smaller server share."""
    held = total_gib - verdict.available_gib
    share = math.floor((held - verdict.shortfall_gib) / total_gib * 10) / 10  # what the holders may keep, a tenth down
    head = (
        "The Train tab tried every batch size down to 1 (raising the accumulation steps), and even batch 1 needs "
        f"{verdict.shortfall_gib:.1f} GiB more than is free."
    )
    if share < 0.1:
        return (
            f"{head} This GPU cannot hold the server and this run together: train with `python -m training` "
            "while no server runs (launch.sh trains its adapter before it starts the server)."
        )
    return (
        f"{head} Restart the app with its server at a smaller GPU share, e.g. `./launch.sh "
        f"--gpu-memory-utilization {share:.1f}` (`python -m serving --gpu_memory_utilization {share:.1f}`), or "
        "stop other programs that hold GPU memory."
    )
