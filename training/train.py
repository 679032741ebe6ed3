"""The training run: rows -> SFT examples -> Trainer (LoRA via peft, or full) -> atomic export + report.

    python -m training --config configs/lora_qwen3_4b_thinking.yaml
    python -m training --config configs/lora_tiny.yaml --model_name_or_path .cache/tiny-qwen3 \
        --dataset_path ../shared/datasets/huanhuan.json --output_dir runs/tiny --export_dir Models/adapters/tiny

Re-running the same command after a kill resumes from the last complete checkpoint in output_dir.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from common.devices import CPU_FRIENDLY_WEIGHTS_GB, cuda_usable, weights_size_gb
from serving.protocol import EngineError
from training.checkpoints import ResumeRefused, completion_callback, prepare_resume, run_fingerprint
from training.config import TrainArgs, parse_args
from training.data import DatasetError, LoadReport, Row, load_dataset_checked
from training.examples import IGNORE_INDEX, EncodeReport, Example
from training.export import ExportError
from training.heldout import heldout_draw


class ModelNotFound(FileNotFoundError):
    """model_name_or_path is not a local model folder."""


class OutOfMemory(RuntimeError):
    """Training ran out of memory; the message says what to change."""


class CpuTrainingRefused(RuntimeError):
    """A multi-GB model would be trained on the CPU; the message names the ways forward."""


class GpuMemoryRefused(OutOfMemory):
    """The planned peak does not fit in the GPU memory left free (e.g. beside vLLM); the message has the numbers."""


@dataclass
class PreparedData:
    train: list[dict[str, list[int]]]
    eval: list[dict[str, list[int]]]
    encode: EncodeReport
    total_rows: int
    bad_rows: int
    distill: dict[str, Any] | None = None  # training.distill's summary when the thinking was distilled
    eval_rows: list[Row] = field(default_factory=list)  # the held-out rows, recorded in the export


def log(message: str) -> None:
    print(f"[training] {message}", flush=True)


def split_examples(
    examples: list[Example], rows: dict[str, Row], eval_ratio: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, eval). An example is held out when its row's draw (training.heldout.heldout_draw: seed and content)
    is below eval_ratio, so no other row moves it between the two; at least one example goes to each side. Train
    keeps the examples' order, eval is in draw order (a random order: `--limit N` evaluates a random sample)."""
    if eval_ratio <= 0 or len(examples) < 2:
        return list(examples), []
    draws = {example.where: heldout_draw(rows[example.where], seed) for example in examples}
    by_draw = sorted(examples, key=lambda example: draws[example.where])
    drawn = sum(draw < eval_ratio for draw in draws.values())
    held_out = by_draw[: min(max(drawn, 1), len(examples) - 1)]
    held_out_where = {example.where for example in held_out}
    return [example for example in examples if example.where not in held_out_where], held_out


def select_rows(args: TrainArgs) -> tuple[list[Row], LoadReport]:
    """The dataset's valid rows, filtered by max_answer_chars and cut to max_samples (with the load report)."""
    full_list = Path(args.output_dir) / "bad-rows.txt"
    report = load_dataset_checked(args.dataset_path, args.max_bad_ratio, log=log, full_list_path=full_list)
    rows = report.rows
    if args.max_answer_chars > 0:
        rows = [row for row in rows if len(row.output) <= args.max_answer_chars]
        log(f"kept {len(rows)} of {len(report.rows)} rows with answers of at most {args.max_answer_chars} characters")
    return (rows[: args.max_samples] if args.max_samples > 0 else rows), report


def prepare_data(args: TrainArgs, tokenizer) -> PreparedData:
    from tqdm.auto import tqdm

    from training.distill import encode_for_mode

    rows, report = select_rows(args)

    def progress(items):
        return tqdm(items, desc="tokenizing", unit="row", total=len(items), mininterval=1.0)

    encoded, distill = encode_for_mode(args, tokenizer, rows, progress, log)
    if encoded.dropped_too_long:
        log(
            f"dropped {len(encoded.dropped_too_long)} example(s) longer than max_length={args.max_length} "
            f"(their answers would be cut): {', '.join(encoded.dropped_too_long[:10])}"
        )
    if len(encoded.examples) < 2:
        raise DatasetError(f"only {len(encoded.examples)} usable example(s) after tokenization; need at least 2")
    log(f"token lengths: {encoded.percentiles()}")
    by_where = {row.where: row for row in rows}
    train, evaluation = split_examples(encoded.examples, by_where, args.eval_ratio, args.seed)
    log(f"{len(rows)} rows used -> {len(train)} train / {len(evaluation)} eval examples")
    as_dict = [{"input_ids": e.input_ids, "labels": e.labels} for e in train]
    return PreparedData(
        as_dict,
        [{"input_ids": e.input_ids, "labels": e.labels} for e in evaluation],
        encoded,
        report.total,
        len(report.bad),
        distill=distill,
        eval_rows=[by_where[e.where] for e in evaluation],
    )


def choose_precision(args: TrainArgs) -> str:
    """The precision to train in; for 'auto' the choice and its reason are printed."""
    if args.precision != "auto":
        return args.precision
    from common.devices import auto_precision, probe

    precision, why = auto_precision(probe())
    log(f"precision auto -> {precision}: {why}")
    return precision


def refuse_big_model_on_cpu(args: TrainArgs) -> None:
    """Never train a multi-GB model on the CPU by accident (a 4B model would take days there)."""
    weights_gb = weights_size_gb(Path(args.model_name_or_path))
    if weights_gb <= CPU_FRIENDLY_WEIGHTS_GB or args.allow_cpu_training or cuda_usable():
        return
    raise CpuTrainingRefused(
        f"{args.model_name_or_path} has {weights_gb:.1f} GB of weights and there is no usable GPU "
        "(`python -m serving.doctor` says why): training it on the CPU would take days. Train on an NVIDIA GPU, "
        "use the offline profile (`./launch.sh --offline`), or pass --allow_cpu_training true on purpose."
    )


def check_gpu_memory(args: TrainArgs, data: PreparedData) -> TrainArgs:
    """On a GPU, refuse (with the numbers) a run whose planned peak exceeds the memory free now, and with
    --checkpoint_only_if_needed turn gradient checkpointing off when the run fits without it; returns the args
    to train with. On a CPU, nothing."""
    from common.devices import gpu_memory_gib
    from training.memory_plan import plan_training_memory

    gpu = gpu_memory_gib()
    if gpu is None:
        return args
    free, total = gpu
    rows = [example["input_ids"] for example in data.train]
    answers = [sum(label != IGNORE_INDEX for label in example["labels"]) for example in data.train]
    longest = (max(map(len, rows), default=None), max(answers, default=None))
    if args.gradient_checkpointing and args.checkpoint_only_if_needed:
        without = replace(args, gradient_checkpointing=False)
        verdict = plan_training_memory(without, total, total - free, *longest)
        if verdict.fits:
            log(f"{verdict.message} without gradient checkpointing, so it is off (--checkpoint_only_if_needed)")
            return without
    verdict = plan_training_memory(args, total, total - free, *longest)
    log(verdict.message)
    if not verdict.fits:
        raise GpuMemoryRefused(verdict.message)
    return args


def load_model(args: TrainArgs, precision: str):
    """The base model; for LoRA wrapped by peft with the configured adapter (bias none, no DoRA)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    load_dtype = dtype if args.finetune_type == "lora" else torch.float32  # full FT keeps fp32 master weights
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=load_dtype)
    model.config.use_cache = False
    if args.finetune_type == "full":
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.lora_target_modules),
        bias="none",
        use_dora=False,
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    log(f"LoRA r={args.lora_r} alpha={args.lora_alpha}: {trainable:,} trainable of {total:,} parameters")
    return model


def training_arguments(args: TrainArgs, precision: str, has_eval: bool):
    from transformers import TrainingArguments

    eval_strategy = "steps" if has_eval else "no"
    return TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        warmup_steps=args.warmup_ratio,  # a float below 1 is a share of the steps (transformers 5)
        lr_scheduler_type=args.lr_scheduler_type,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=args.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if args.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        eval_strategy=eval_strategy,
        eval_steps=args.eval_steps,
        eval_on_start=has_eval and args.eval_on_start,
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        load_best_model_at_end=has_eval and args.load_best_model_at_end,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=args.logging_steps,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        dataloader_num_workers=args.dataloader_num_workers,
        remove_unused_columns=False,
        prediction_loss_only=True,
        use_cpu=not cuda_usable(),
    )


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def oom_message(args: TrainArgs) -> str:
    from training.checkpoints import scan_checkpoints

    complete, _ = scan_checkpoints(Path(args.output_dir))
    last = complete[-1] if complete else None
    return (
        f"out of memory (batch {args.per_device_train_batch_size} x max_length {args.max_length}). "
        f"Last good checkpoint: {last or 'none yet'}. Lower --per_device_train_batch_size (raise "
        f"--gradient_accumulation_steps to keep the effective batch), lower --max_length, or set "
        f"--gradient_checkpointing true; then rerun the same command to resume."
    )


@dataclass
class Fitted:
    trainer: Any  # the transformers Trainer after training
    tokens_seen_before: int  # tokens a resumed run had already trained on at its checkpoint (0 for a fresh run)


def fit(args: TrainArgs, data: PreparedData, tokenizer, extra_callbacks: list | None = None) -> Fitted:
    """Train (resuming when a complete checkpoint exists) and return the Trainer with this session's start."""
    from training.answer_loss import answer_loss_trainer_class
    from training.collate import PadCollator
    from training.progress import progress_callback
    from training.report import session_start_callback

    resume_from = prepare_resume(args, log=log)
    precision = choose_precision(args)
    log(f"precision {precision}, device {'cuda' if cuda_usable() else 'cpu'}, method {args.finetune_type}")
    model = load_model(args, precision)
    session_start = session_start_callback()
    trainer = answer_loss_trainer_class()(
        model=model,
        args=training_arguments(args, precision, has_eval=bool(data.eval)),
        train_dataset=data.train,
        eval_dataset=data.eval or None,
        data_collator=PadCollator(pad_token_id=tokenizer.pad_token_id or 0, pad_to_multiple_of=8),
        processing_class=tokenizer,
        callbacks=[
            completion_callback(run_fingerprint(args)),
            progress_callback(Path(args.output_dir)),
            session_start,
            *(extra_callbacks or []),
        ],
    )
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except Exception as error:
        if is_out_of_memory(error):
            raise OutOfMemory(oom_message(args)) from error
        raise
    return Fitted(trainer, session_start.tokens_seen_before)


@dataclass
class RunResult:
    metrics: dict[str, Any]
    trainer: Any  # the transformers Trainer (its .model is the trained model)


def run(args: TrainArgs, extra_callbacks: list | None = None) -> RunResult:
    """Everything after argument parsing; returns the metrics written to the export and the Trainer."""
    from transformers import AutoTokenizer, set_seed

    from training.finish import export_run, run_metrics

    started = time.time()
    if not (Path(args.model_name_or_path) / "config.json").is_file():
        raise ModelNotFound(
            f"no model at {args.model_name_or_path} (config.json missing); get it with `python -m training.download "
            f"--model-id Qwen/Qwen3-4B-Thinking-2507 --out {args.model_name_or_path}` or build the offline one with "
            f"`python -m training.tiny_qwen3 --out {args.model_name_or_path}`"
        )
    refuse_big_model_on_cpu(args)
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = prepare_data(args, tokenizer)
    args = check_gpu_memory(args, data)
    fitted = fit(args, data, tokenizer, extra_callbacks)
    trainer, tokens_seen_before = fitted.trainer, fitted.tokens_seen_before
    if not trainer.is_world_process_zero():  # under DDP rank 0 alone exports (and says so)
        return RunResult(run_metrics(args, trainer, data, tokens_seen_before), trainer)
    metrics = export_run(args, trainer, tokenizer, data, tokens_seen_before)
    log(summary_line(args, metrics, time.time() - started))
    return RunResult(metrics, trainer)


def summary_line(args: TrainArgs, metrics: dict[str, Any], wall_s: float) -> str:
    evals = metrics.get("eval_loss") or []
    eval_part = "no eval"
    if evals and args.load_best_model_at_end:
        eval_part = f"eval loss {evals[0]['eval_loss']:.3f} -> {metrics['best_eval_loss']:.3f} (best, exported)"
    elif evals:  # the last checkpoint is exported, whatever the best eval loss was
        eval_part = (f"eval loss {evals[0]['eval_loss']:.3f} -> {evals[-1]['eval_loss']:.3f} (last, exported; best "
                     f"{metrics['best_eval_loss']:.3f})")  # fmt: skip
    return (
        f"done: {args.finetune_type} on {Path(args.model_name_or_path).name}, {metrics['train_examples']} examples, "
        f"{metrics['total_steps']} steps in {wall_s:.0f} s ({metrics['train_samples_per_second']} samples/s, "
        f"{metrics['train_tokens_per_second']} tokens/s), {eval_part}; exported to {args.export_dir}"
    )


# What ends a run with one clear line (EngineError: distillation's thinker could not start or answer).
USER_ERRORS = (DatasetError, ModelNotFound, ResumeRefused, ExportError, OutOfMemory, CpuTrainingRefused, EngineError)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        run(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 3 if isinstance(error, OutOfMemory) else 1
    return 0
