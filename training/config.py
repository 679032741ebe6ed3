"""TrainArgs: the one dataclass config of `python -m training`, read from `--config x.yaml` plus CLI overrides.

Every field has a help string (`python -m training --help` lists them). Precedence: dataclass default <
YAML file < command-line flag. Booleans accept true/false/yes/no/1/0; lists accept comma-separated values.

    python -m training --config configs/lora_tiny.yaml --learning_rate 2e-3 --max_steps 50
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from common import dataclass_cli
from common.qwen3 import QWEN3_LORA_TARGETS, ZHEN_HUAN_PERSONA

DEFAULT_SYSTEM_PROMPT = ZHEN_HUAN_PERSONA  # the text placed before every example (app.personas names presets)
THINKING_MODES = ("empty", "distill")
DISTILL_PROMPTS = ("blind", "rationalized")
DISTILL_ENGINES = ("auto", "vllm", "local", "openai")
SEED_TARGET_MODULES = QWEN3_LORA_TARGETS  # the seed recipe: every linear layer of the decoder


_field = dataclass_cli.config_field


@dataclass
class TrainArgs:
    """Everything one training run needs. Defaults are the seed recipe (LoRA on Qwen3-4B-Thinking-2507)."""

    # --- where things are ---
    model_name_or_path: str = _field(
        "Models/Qwen3-4B-Thinking-2507", "base model folder (config + weights + tokenizer)"
    )
    dataset_path: str = _field(
        "Datasets/huanhuan.json", "training data: JSON array or JSONL of instruction/input/output"
    )
    output_dir: str = _field("runs/huanhuan-lora", "run folder: checkpoints, logs and run fingerprint (resumable)")
    export_dir: str = _field("Models/adapters/huanhuan", "final adapter (or full model) folder, written atomically")
    # --- data ---
    system_prompt: str = _field(DEFAULT_SYSTEM_PROMPT, "system persona placed before every example")
    max_length: int = _field(1024, "max tokens per example; examples whose answer would be cut are dropped")
    eval_ratio: float = _field(
        0.1,
        "share of rows held out for evaluation, about: each row's side is drawn from its content and the seed "
        "(0 disables evaluation)",
    )
    max_bad_ratio: float = _field(0.05, "abort when more than this share of rows is bad (0.05 = 5%)")
    max_answer_chars: int = _field(0, "drop rows whose output is longer than N characters (0 = keep all)")
    max_samples: int = _field(0, "use only the first N valid rows (0 = all); for quick runs and tests")
    # --- thinking (see training.distill) ---
    thinking: str = _field(
        "empty", "'empty': train on an empty <think></think> (the seed recipe); 'distill': the base writes it"
    )
    distill_prompt: str = _field(
        "blind", "distill: 'blind' (the thinker sees persona + line) or 'rationalized' (it also sees the answer, STaR)"
    )
    train_on_thinking: bool = _field(False, "distill: also put the loss on the thinking (default: the answer only)")
    distill_engine: str = _field("auto", "distill: 'vllm' (started here), 'local' (transformers), 'openai', 'auto'")
    distill_base_url: str = _field("", "distill_engine openai: the server's /v1 URL")
    distill_api_key_env: str = _field("VLLM_API_KEY", "distill_engine openai: env var holding the server's API key")
    distill_model: str = _field("base", "distill: served model that thinks ('base', or an adapter name for openai)")
    distill_adapter: str = _field("", "distill_engine vllm/local: an adapter folder to think with instead of the base")
    distill_cache_dir: str = _field(".cache/distill", "distill: where generated thinking is cached (resumable)")
    distill_max_thinking_tokens: int = _field(768, "distill: thinking longer than this (or never closed) is dropped")
    distill_concurrency: int = _field(64, "distill: requests in flight (vLLM/openai) or rows per batch (local)")
    distill_temperature: float = _field(0.6, "distill: sampling temperature (Qwen3 thinking recommends 0.6)")
    distill_top_p: float = _field(0.95, "distill: top-p")
    distill_top_k: int = _field(20, "distill: top-k (-1 = off)")
    # --- method ---
    finetune_type: str = _field("lora", "'lora' (adapter) or 'full' (every weight is trained)")
    lora_r: int = _field(8, "LoRA rank (vLLM must be started with --max-lora-rank >= this)")
    lora_alpha: int = _field(32, "LoRA alpha (scaling = alpha / r)")
    lora_dropout: float = _field(0.1, "dropout on the LoRA input")
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(SEED_TARGET_MODULES), metadata={"help": "module names that get LoRA weights"}
    )
    # --- optimisation ---
    learning_rate: float = _field(1e-4, "peak learning rate")
    num_train_epochs: float = _field(3.0, "epochs over the training split")
    max_steps: int = _field(-1, "stop after this many optimizer steps (-1 = use num_train_epochs)")
    per_device_train_batch_size: int = _field(8, "rows per forward pass")
    per_device_eval_batch_size: int = _field(8, "rows per evaluation forward pass")
    gradient_accumulation_steps: int = _field(2, "forward passes per optimizer step")
    warmup_ratio: float = _field(0.0, "share of steps spent warming the learning rate up")
    lr_scheduler_type: str = _field("linear", "transformers learning-rate schedule name (linear, cosine, constant...)")
    weight_decay: float = _field(0.0, "AdamW weight decay")
    max_grad_norm: float = _field(1.0, "gradient clipping norm")
    precision: str = _field(
        "auto", "'auto' (bf16 on a GPU with native bf16, fp16 on older GPUs, fp32 on a CPU), 'bf16', 'fp16' or 'fp32'"
    )
    gradient_checkpointing: bool = _field(True, "recompute activations in backward to save memory")
    checkpoint_only_if_needed: bool = _field(
        False, "on a GPU, turn gradient checkpointing off when the memory plan says the run fits without it (faster)"
    )
    group_by_length: bool = _field(True, "batch rows of similar length together (less padding)")
    seed: int = _field(42, "seed for the split, the sampler and the LoRA init")
    # --- evaluation, checkpoints, logging ---
    eval_steps: int = _field(50, "evaluate every N optimizer steps")
    save_steps: int = _field(100, "save a checkpoint every N optimizer steps")
    save_total_limit: int = _field(3, "keep at most N checkpoints (the best one is always kept)")
    load_best_model_at_end: bool = _field(True, "export the checkpoint with the lowest eval loss, not the last")
    eval_on_start: bool = _field(True, "evaluate once before training so the report shows the starting eval loss")
    logging_steps: int = _field(10, "log the training loss every N optimizer steps")
    resume: bool = _field(True, "resume from the last complete checkpoint in output_dir if there is one")
    overwrite_export: bool = _field(True, "replace an existing export_dir (atomically) when the run finishes")
    dataloader_num_workers: int = _field(0, "DataLoader worker processes")
    allow_cpu_training: bool = _field(
        False, "train on the CPU even when the model's weights exceed 2 GB (days for a 4B model: say so on purpose)"
    )

    def validate(self) -> None:
        """Raise ValueError naming every invalid field."""
        problems = []
        if self.finetune_type not in ("lora", "full"):
            problems.append(f"finetune_type must be 'lora' or 'full', got {self.finetune_type!r}")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            problems.append(f"precision must be auto/bf16/fp16/fp32, got {self.precision!r}")
        problems += self._thinking_problems()
        if not 0 <= self.eval_ratio < 1:
            problems.append(f"eval_ratio must be in [0, 1), got {self.eval_ratio}")
        if not 0 <= self.warmup_ratio < 1:  # TrainingArguments reads warmup_steps >= 1 as a step count
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.max_bad_ratio <= 1:
            problems.append(f"max_bad_ratio must be in [0, 1], got {self.max_bad_ratio}")
        if self.max_length < 16:
            problems.append(f"max_length must be >= 16, got {self.max_length}")
        if self.finetune_type == "lora" and (self.lora_r < 1 or not self.lora_target_modules):
            problems.append("LoRA needs lora_r >= 1 and at least one lora_target_modules entry")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "eval_steps", "save_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        problems += self._best_checkpoint_problems()
        if problems:
            raise ValueError("invalid training config:\n  " + "\n  ".join(problems))

    def _best_checkpoint_problems(self) -> list[str]:
        """transformers' rule, checked here before any work: the best checkpoint is picked among the saved ones by
        their eval loss, so with load_best_model_at_end (and evaluation on) every save must fall on an evaluation."""
        picks_best = self.load_best_model_at_end and self.eval_ratio > 0  # eval_ratio 0: no evaluation, no pick
        if not picks_best or min(self.eval_steps, self.save_steps) < 1 or self.save_steps % self.eval_steps == 0:
            return []  # (steps below 1 are reported on their own)
        nearest = self.eval_steps * max(1, round(self.save_steps / self.eval_steps))
        return [
            f"save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}) with "
            f"load_best_model_at_end (the best checkpoint is chosen at evaluations): set --save_steps {nearest}, "
            f"an --eval_steps that divides {self.save_steps}, or --load_best_model_at_end false"
        ]

    def _thinking_problems(self) -> list[str]:
        problems = []
        if self.thinking not in THINKING_MODES:
            problems.append(f"thinking must be one of {', '.join(THINKING_MODES)}, got {self.thinking!r}")
        if self.distill_prompt not in DISTILL_PROMPTS:
            problems.append(f"distill_prompt must be one of {', '.join(DISTILL_PROMPTS)}, got {self.distill_prompt!r}")
        if self.distill_engine not in DISTILL_ENGINES:
            problems.append(f"distill_engine must be one of {', '.join(DISTILL_ENGINES)}, got {self.distill_engine!r}")
        if self.thinking == "distill" and self.distill_engine == "openai" and not self.distill_base_url:
            problems.append("distill_engine openai needs distill_base_url (the server's /v1 URL)")
        if self.distill_max_thinking_tokens < 1 or self.distill_concurrency < 1:
            problems.append("distill_max_thinking_tokens and distill_concurrency must be >= 1")
        return problems

    def thinking_label(self) -> str:
        """How the thinking was trained, as the adapter table shows it: 'empty' or 'distill/blind' etc."""
        if self.thinking != "distill":
            return self.thinking
        return f"distill/{self.distill_prompt}" + ("+thinking-loss" if self.train_on_thinking else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_parser() -> argparse.ArgumentParser:
    description = "Fine-tune a Qwen3 model on instruction/output rows (LoRA or full)."
    return dataclass_cli.build_parser(TrainArgs, "python -m training", description)


def parse_args(argv: list[str] | None = None) -> TrainArgs:
    """Defaults < YAML (--config) < CLI flags; the result is validated."""
    args = dataclass_cli.parse_config(TrainArgs, argv, "python -m training")
    args.validate()
    return args


def args_from_dict(values: dict[str, Any]) -> TrainArgs:
    """Rebuild TrainArgs from a resolved-config mapping (e.g. train_config.yaml)."""
    return dataclass_cli.from_mapping(TrainArgs, values)
