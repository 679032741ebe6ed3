"""Benchmark: the seed recipe's padding (every row padded to 1024) vs training/'s batching, same model, same steps.

Both sides run LoRA training steps (r=8, alpha=32, q/k/v/o/gate/up/down, AdamW) on a Qwen3-0.6B-shaped model
with random weights (hidden 1024, 16 heads, 8 KV heads, head_dim 128, intermediate 3072, vocabulary 151,936;
fewer layers than 28 by default so it finishes in minutes on a 2-core CPU; the same for every side), over
real huanhuan.json rows rendered with the real Qwen3-Thinking chat template (tiny model's tokenizer).

  seed:    pad every row to 1024, random batches, standard causal-LM loss (logits at every position)
  dynamic: pad to the longest row of a length-grouped batch, standard loss
  ours:    what `python -m training` does: dynamic padding + length grouping + answer-only logits

    python -m bench.bench_padding                       # defaults: 2 layers, batch 2, 2 timed steps
    python -m bench.bench_padding --layers 28 --steps 5 # the full 0.6B depth (slow on a CPU)

The sides run interleaved (step i of each, then step i + 1) so a busy machine slows them alike.
Prints samples/s and tokens/s per side and the ratios to the seed side.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from common.qwen3 import QWEN3_LORA_TARGETS

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_model(layers: int, seed: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=layers,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=4096,
        tie_word_embeddings=True, use_cache=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    targets = list(QWEN3_LORA_TARGETS)
    lora = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def load_examples(dataset: Path, tokenizer_dir: Path, limit: int):
    from transformers import AutoTokenizer

    from common.qwen3 import ZHEN_HUAN_PERSONA
    from training.data import load_rows
    from training.examples import encode_rows

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = load_rows(dataset).rows[:limit]
    return encode_rows(tokenizer, rows, ZHEN_HUAN_PERSONA, max_length=1024).examples, tokenizer.pad_token_id


def batches(examples, batch_size: int, steps: int, grouped: bool, seed: int):
    """steps + 1 batches (the first is a warm-up); grouped = LengthGroupedSampler-style megabatches."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    needed = (steps + 1) * batch_size
    order = order[:needed]
    if grouped:  # sort within megabatches of 50 batches, as transformers' LengthGroupedSampler does
        mega = batch_size * 50
        order = [
            i for s in range(0, needed, mega) for i in sorted(order[s : s + mega], key=lambda i: -len(examples[i]))
        ]
    chunks = [order[s : s + batch_size] for s in range(0, needed, batch_size)]
    random.Random(seed + 1).shuffle(chunks)
    return [[{"input_ids": examples[i].input_ids, "labels": examples[i].labels} for i in c] for c in chunks]


class Side:
    """One way of batching: its batches, collator and loss, and what it has measured so far."""

    def __init__(self, name: str, batch_list, collator, answer_only: bool):
        self.name, self.batch_list, self.collator, self.answer_only = name, batch_list, collator, answer_only
        self.seconds = 0.0
        self.samples = self.real_tokens = self.computed_tokens = 0

    def step(self, model, optimizer, index: int) -> None:
        from training.answer_loss import answer_only_loss

        started = time.perf_counter()
        batch = self.collator(self.batch_list[index])
        loss = answer_only_loss(model, batch) if self.answer_only else model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= 1:  # step 0 is a warm-up
            self.seconds += time.perf_counter() - started
            self.samples += len(self.batch_list[index])
            self.real_tokens += int(batch["attention_mask"].sum())
            self.computed_tokens += batch["input_ids"].numel()

    def report(self) -> float:
        rate = self.samples / self.seconds
        tokens_rate = self.real_tokens / self.seconds
        print(f"{self.name:8s} {self.samples} samples in {self.seconds:7.1f} s: {rate:.3f} samples/s, "
              f"{tokens_rate:.0f} real tokens/s, {self.computed_tokens} tokens computed")  # fmt: skip
        return rate


def run_interleaved(model, sides: list[Side], steps: int) -> None:
    """Step i of every side, then step i + 1 of every side...: a busy machine slows all sides alike."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    for index in range(steps + 1):
        for side in sides:
            side.step(model, optimizer, index)
        print(f"step {index} done ({'warm-up' if index == 0 else 'timed'})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None, help="huanhuan.json (default: as the tests find it)")
    parser.add_argument("--tokenizer", type=Path, default=REPO_ROOT / ".cache" / "tiny-qwen3", help="Qwen3 tokenizer")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers (Qwen3-0.6B has 28)")
    parser.add_argument("--batch-size", type=int, default=2, help="rows per step (same for every side)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per side (plus one warm-up step)")
    parser.add_argument("--pad-to", type=int, default=1024, help="the seed recipe's fixed length")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and batch order")
    args = parser.parse_args(argv)
    import torch

    from tests.support.paths import dataset_path
    from training.collate import PadCollator
    from training.tiny_qwen3 import build_tiny_qwen3

    build_tiny_qwen3(args.tokenizer)
    examples, pad_id = load_examples(args.dataset or dataset_path(), args.tokenizer, limit=2000)
    print(f"{len(examples)} examples, torch threads {torch.get_num_threads()}, layers {args.layers}, "
          f"batch {args.batch_size}, {args.steps} timed steps per side", flush=True)  # fmt: skip
    model = build_model(args.layers, args.seed)
    grouped = batches(examples, args.batch_size, args.steps, True, args.seed)
    sides = [
        Side(
            "seed",
            batches(examples, args.batch_size, args.steps, False, args.seed),
            PadCollator(pad_id, pad_to=args.pad_to),
            False,
        ),
        Side("dynamic", grouped, PadCollator(pad_id, pad_to_multiple_of=8), answer_only=False),
        Side("ours", grouped, PadCollator(pad_id, pad_to_multiple_of=8), answer_only=True),
    ]
    run_interleaved(model, sides, args.steps)
    seed_rate, dynamic_rate, ours_rate = (side.report() for side in sides)
    print(f"ratio dynamic/seed samples/s: {dynamic_rate / seed_rate:.1f}x")
    print(f"ratio ours/seed samples/s:    {ours_rate / seed_rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
