"""Plan a training run's GPU memory before it starts: estimate the peak, compare it with what is free beside
the model server, and refuse with the numbers when it cannot fit. `python -m training` runs the check on a
GPU before loading the model, with the longest row it will really train on; the app's Train tab runs it
before Start with the rows' lengths estimated from their characters (training.job.memory_verdict).

On one GPU, vLLM takes `--gpu-memory-utilization` of the card (0.85 by default) for itself, whatever it needs.
A training job started beside it gets the rest. The estimate (pure arithmetic on the model's config.json and
the run's settings; rows at max_length unless measured lengths are given) adds up:

- the weights: for LoRA the frozen base in the precision (bf16/fp16: 2 bytes a parameter, fp32: 4); a full
  fine-tune loads fp32 master weights whatever the precision (training.train.load_model: mixed precision
  only autocasts the compute), 4 bytes a parameter;
- what training keeps per trainable parameter: LoRA weights live in fp32 under peft (weight + gradient + two
  AdamW moments = 16 bytes); a full fine-tune keeps an fp32 gradient and two fp32 AdamW moments of every
  weight (12 bytes), so 16 bytes a parameter with the weights;
- activations kept for the backward pass, counted per token and layer from the layer's own tensors
  (`activation_bytes_per_token`): RMSNorm's fp32 copies, q/k/v with their norms and RoPE, the attention output,
  the MLP's gate, up, SiLU and product (attention scores are not stored with SDPA), and for each LoRA target
  with dropout the dropped-out copy of its input and its mask: 258 KB per token and layer for Qwen3-4B with
  the recipe's LoRA. With gradient checkpointing only each layer's input is kept (2 x hidden) plus one layer
  recomputed at a time. Measured on an H100 (2026-11-27, bench/README.md): the old rule of thumb (34 x
  hidden, Korthikanti et al. 2022, for a GPT with a 4 x hidden MLP and no LoRA: 87,040 bytes a token and layer
  at 4B) was about 3 times too low for Qwen3-4B's 3.8 x hidden MLP with LoRA dropout, so a run without
  checkpointing was let through that needed 28 GiB against the 18 GiB planned;
- the logits of the answer positions (training.answer_loss projects only those): answer tokens x vocabulary
  x 10 bytes (16-bit logits, their fp32 copy for the loss and its gradient), large for Qwen's 151,936 tokens;
- 1 GiB of CUDA context and allocator slack, and a 10% margin on the whole.

    verdict = plan_training_memory(args, total_gib=24.0, reserved_gib=reserved_beside_vllm(24.0, 0.9))
    if not verdict.fits:
        print(verdict.message)   # "training needs about 11.7 GiB ... but only 2.4 GiB of the 24.0 GiB GPU ..."
    args, verdict = fit_batch(args, 24.0, 12.0)   # the batch halved (accumulation raised) until the plan fits
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

GIB = 1024**3
CHECKPOINTED_BYTES_PER_HIDDEN = 2  # each layer's input only, 16-bit
DROPOUT_BYTES_PER_INPUT = 3  # a LoRA target's dropped-out input copy (16-bit) and its mask (1 byte)
LOGIT_BYTES = 10  # 16-bit logits + fp32 copy + its gradient, per token and vocabulary entry
LORA_BYTES_PER_PARAM = 16  # fp32 weight + gradient + two AdamW moments
FULL_WEIGHT_BYTES = 4  # full fine-tuning loads fp32 master weights (training.train.load_model)
FULL_STATE_BYTES_PER_PARAM = 12  # fp32 gradient + two fp32 AdamW moments
CONTEXT_GIB = 1.0  # CUDA context, cuBLAS workspaces, allocator fragmentation
MARGIN = 0.10
PRECISION_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "auto": 2}  # auto trains in bf16/fp16 on a GPU
CLI_ADVICE = (
    "Lower --per_device_train_batch_size (raise --gradient_accumulation_steps to keep the effective batch) or "
    "--max_length, turn on --gradient_checkpointing, or restart the server with a lower --gpu-memory-utilization "
    "(e.g. 0.5)."
)


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that the estimate needs (from its config.json)."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied_embeddings: bool = True

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelShape:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        return cls(
            hidden=hidden,
            layers=int(config["num_hidden_layers"]),
            intermediate=int(config["intermediate_size"]),
            vocab=int(config["vocab_size"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        )

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one decoder layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        mlp = self.intermediate
        return {
            "q_proj": (self.hidden, q),
            "k_proj": (self.hidden, kv),
            "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, mlp),
            "up_proj": (self.hidden, mlp),
            "down_proj": (mlp, self.hidden),
        }

    @property
    def parameters(self) -> int:
        per_layer = sum(i * o for i, o in self.module_shapes().values()) + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + embeddings + self.hidden

    def lora_parameters(self, rank: int, targets: list[str] | tuple[str, ...]) -> int:
        shapes = self.module_shapes()
        return self.layers * sum(rank * (shapes[m][0] + shapes[m][1]) for m in targets if m in shapes)


@dataclass(frozen=True)
class MemoryVerdict:
    """Whether the run fits, the estimate's parts in GiB, and a message for the user."""

    fits: bool
    need_gib: float
    available_gib: float
    parts: dict[str, float]
    message: str

    @property
    def shortfall_gib(self) -> float:
        """How much more free memory the run needs (0 when it fits)."""
        return max(self.need_gib - self.available_gib, 0.0)


def estimate_parts(
    shape: ModelShape, args: Any, row_tokens: int | None = None, answer_tokens: int | None = None
) -> dict[str, float]:
    """The peak's parts in GiB for a TrainArgs-like `args` (finetune_type, lora_r, lora_dropout,
    lora_target_modules, per_device_train_batch_size, max_length, gradient_checkpointing, precision); `row_tokens` and
    `answer_tokens`: the longest row and answer trained on (default max_length)."""
    width = PRECISION_BYTES.get(args.precision, 2)
    tokens = args.per_device_train_batch_size * min(row_tokens or args.max_length, args.max_length)
    answers = args.per_device_train_batch_size * min(answer_tokens or args.max_length, args.max_length)
    if args.finetune_type == "lora":
        trainable = shape.lora_parameters(args.lora_r, list(args.lora_target_modules))
        weight_bytes, training_state = width, trainable * LORA_BYTES_PER_PARAM
    else:
        weight_bytes, training_state = FULL_WEIGHT_BYTES, shape.parameters * FULL_STATE_BYTES_PER_PARAM
    per_layer = activation_bytes_per_token(shape, args)
    if args.gradient_checkpointing:
        kept = shape.layers * CHECKPOINTED_BYTES_PER_HIDDEN * shape.hidden + per_layer  # + one layer recomputed
    else:
        kept = shape.layers * per_layer
    return {
        "weights": shape.parameters * weight_bytes / GIB,
        "trainable + optimizer": training_state / GIB,
        "activations": tokens * kept * width / 2 / GIB,
        "logits": answers * shape.vocab * LOGIT_BYTES / GIB,
        "CUDA context": CONTEXT_GIB,
    }


def activation_bytes_per_token(shape: ModelShape, args: Any) -> int:
    """Bytes one token keeps for the backward pass in one decoder layer, in 16-bit training (fp32: twice that).

    Qwen3's layer keeps: the two RMSNorms' fp32 input copies and outputs (16 x hidden with the residual and
    projection inputs), q and k through their per-head norms and RoPE plus the attention output (12 x q width),
    k and v (10 x kv width), the MLP's gate, up, SiLU output and their product (8 x intermediate); LoRA with
    dropout adds, for each target, the dropped-out copy of its input and the mask (3 x its input width)."""
    q_width, kv_width = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    kept = 16 * shape.hidden + 12 * q_width + 10 * kv_width + 8 * shape.intermediate
    if args.finetune_type == "lora" and args.lora_dropout > 0:
        inputs = shape.module_shapes()
        kept += sum(DROPOUT_BYTES_PER_INPUT * inputs[m][0] for m in args.lora_target_modules if m in inputs)
    return kept


def reserved_beside_vllm(total_gib: float, gpu_memory_utilization: float) -> float:
    """What a vLLM server started with `--gpu-memory-utilization` holds of the card."""
    return total_gib * gpu_memory_utilization


def plan_training_memory(
    args: Any,
    total_gib: float,
    reserved_gib: float,
    row_tokens: int | None = None,
    answer_tokens: int | None = None,
    advice: str = CLI_ADVICE,
) -> MemoryVerdict:
    """Does the run of `args` (TrainArgs) fit in `total_gib - reserved_gib`? `reserved_gib`: what other processes
    (the vLLM server) hold. `row_tokens` / `answer_tokens`: the longest row / answer to train on, when measured
    (default: max_length); `advice`: what a refusal tells the user to do. A model folder without config.json
    cannot be estimated and is let through."""
    config_path = Path(args.model_name_or_path) / "config.json"
    available = max(total_gib - reserved_gib, 0.0)
    try:
        shape = ModelShape.from_config(json.loads(config_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        message = f"training memory not estimated ({config_path}: {error}); {available:.1f} GiB free"
        return MemoryVerdict(True, 0.0, available, {}, message)
    parts = estimate_parts(shape, args, row_tokens, answer_tokens)
    need = sum(parts.values()) * (1 + MARGIN)
    listed = ", ".join(f"{name} {value:.1f}" for name, value in parts.items())
    summary = (f"training needs about {need:.1f} GiB ({listed}, +{MARGIN:.0%} margin; {shape.parameters / 1e9:.2f}B "
               f"parameters, {args.finetune_type}, batch {args.per_device_train_batch_size} x "
               f"{min(row_tokens or args.max_length, args.max_length)} tokens, gradient checkpointing "
               f"{'on' if args.gradient_checkpointing else 'off'})")  # fmt: skip
    if need <= available:
        return MemoryVerdict(True, need, available, parts, f"{summary}; {available:.1f} GiB free: it fits")
    message = (
        f"{summary}, but only {available:.1f} GiB of the {total_gib:.1f} GiB GPU is free ({reserved_gib:.1f} GiB is "
        f"held, e.g. by the vLLM server's --gpu-memory-utilization share). {advice}"
    )
    return MemoryVerdict(False, need, available, parts, message)


def fit_batch(
    args: Any, total_gib: float, reserved_gib: float, row_tokens: int | None = None, answer_tokens: int | None = None
) -> tuple[Any, MemoryVerdict]:
    """`args` (a TrainArgs) with per_device_train_batch_size halved until the plan fits, and
    gradient_accumulation_steps raised so that batch x steps still covers the rows of one optimizer step; with
    the verdict of the args returned (not fitting: even batch 1 does not)."""
    rows_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
    verdict = plan_training_memory(args, total_gib, reserved_gib, row_tokens, answer_tokens)
    while not verdict.fits and args.per_device_train_batch_size > 1:
        batch = args.per_device_train_batch_size // 2
        args = replace(
            args, per_device_train_batch_size=batch, gradient_accumulation_steps=math.ceil(rows_per_step / batch)
        )
        verdict = plan_training_memory(args, total_gib, reserved_gib, row_tokens, answer_tokens)
    return args, verdict
