"""The true ceiling of an in-process side-by-side turn: a plain script, in a process of its own, that loads the
model and the LoRA with peft and calls ONE batched `model.generate` with per-row `adapter_names` on its main
thread, nothing else (no engine, no other thread using torch). bench_side_by_side runs it as a subprocess and
compares LocalEngine with it; it prints one JSON line: the wall time of each timed round and the new tokens
before any EOS (counted as the other ways count them).

    .venv/bin/python -m bench.plain_script --model .cache/bench-qwen3-0.6b \
        --adapter .cache/bench-qwen3-0.6b-adapters/lora --new-tokens 64 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up")
    args = parser.parse_args(argv)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.bench_side_by_side import MESSAGES, _tokens_before_eos
    from serving.local_engine import PEFT_BASE_NAME

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(model, args.adapter, adapter_name="lora").eval()
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    batch = tokenizer.pad({"input_ids": [ids, ids]}, padding=True, return_tensors="pt")
    eos = model.generation_config.eos_token_id
    eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
    walls, tokens = [], 0
    for round_index in range(args.rounds + 1):
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**batch, adapter_names=[PEFT_BASE_NAME, "lora"], max_new_tokens=args.new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        if round_index:
            walls.append(time.perf_counter() - started)
        tokens = sum(_tokens_before_eos(row.tolist(), eos_ids) for row in out[:, batch["input_ids"].shape[1] :])
    print(json.dumps({"walls": walls, "tokens": tokens}))


if __name__ == "__main__":
    main()
