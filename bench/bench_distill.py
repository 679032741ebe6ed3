"""Benchmark the distillation step's generation against its ceiling: a plain concurrent client on the same vLLM.

Both ways send the same requests (persona + a huanhuan.json line, the same sampling and seed, the same
max_tokens) to one vLLM server with the same number in flight: (1) a plain `openai` client, non-streaming, in a
thread pool (nothing but the requests); (2) `training.distill.distill_rows` through OpenAIEngine (streaming,
splitting the thinking, counting its tokens, writing the cache; a fresh cache every round so nothing is
reused). The thinker is the tiny Qwen3's base, whose thinking never closes: every request generates exactly
max_tokens in both ways, so the work is the same and rows/s compare directly. Rounds alternate the two ways
(after one warm-up round of the plain client); the best round of each is reported with the ratio.

    .venv/bin/python -m bench.bench_distill                      # 96 rows, 16 in flight, 64 thinking tokens
    .venv/bin/python -m bench.bench_distill --rows 192 --concurrency 32 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "BENCH_DISTILL_API_KEY"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=96, help="rows (requests) per round")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight in both ways")
    parser.add_argument("--thinking-tokens", type=int, default=64, help="distill_max_thinking_tokens")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per way (alternating)")
    parser.add_argument("--dataset", default=str(REPO_ROOT.parent / "shared" / "datasets" / "huanhuan.json"))
    return parser.parse_args()


def plain_round(server, args, jobs, params) -> tuple[float, int]:
    """Wall seconds and generated tokens of the plain client sending every job."""
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=600)

    def one(messages) -> int:
        reply = client.chat.completions.create(
            model=server.served_model_name, messages=messages, max_tokens=params.max_tokens,
            temperature=params.temperature, top_p=params.top_p, seed=params.seed, extra_body={"top_k": params.top_k},
        )  # fmt: skip
        return reply.usage.completion_tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        tokens = sum(pool.map(one, jobs))
    return time.perf_counter() - started, tokens


def ours_round(train_args, rows, tokenizer) -> float:
    from training.distill import distill_rows

    with tempfile.TemporaryDirectory(prefix="bench-distill-") as cache_dir:
        train_args.distill_cache_dir = cache_dir
        started = time.perf_counter()
        result = distill_rows(train_args, rows, tokenizer, log=lambda message: None)
        wall = time.perf_counter() - started
    if result.report.generated != len(rows):
        raise RuntimeError(f"{result.report.generated} of {len(rows)} rows generated: {result.report.first_error}")
    return wall


def main() -> None:
    from transformers import AutoTokenizer

    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer
    from training.config import TrainArgs
    from training.distill import sampling_params, thinker_messages
    from training.tiny_qwen3 import build_tiny_qwen3
    from training.train import select_rows

    args = parse()
    model = build_tiny_qwen3(REPO_ROOT / ".cache" / "tiny-qwen3")
    train_args = TrainArgs(model_name_or_path=str(model), dataset_path=args.dataset, max_samples=args.rows,
                           thinking="distill", distill_engine="openai", distill_api_key_env=KEY_ENV,
                           distill_max_thinking_tokens=args.thinking_tokens, distill_concurrency=args.concurrency,
                           distill_base_url="set below")  # fmt: skip
    rows = list({row.prompt: row for row in reversed(select_rows(train_args)[0])}.values())  # one row per line
    tokenizer = AutoTokenizer.from_pretrained(model)
    params = sampling_params(train_args)
    jobs = [thinker_messages(row, train_args) for row in rows]
    with tempfile.TemporaryDirectory() as empty:
        serve = ServeArgs(model=str(model), served_model_name="tiny", adapters_dir=empty, api_key_env="",
                          max_model_len=2048, cpu_kv_cache_gib=1, log_path=f"{empty}/vllm.log")  # fmt: skip
        with VLLMServer(serve) as server:
            os.environ[KEY_ENV] = server.api_key
            train_args.distill_base_url = server.base_url
            plain_round(server, args, jobs, params)  # warm-up
            plain_walls, ours_walls, tokens = [], [], 0
            for _ in range(args.rounds):
                wall, tokens = plain_round(server, args, jobs, params)
                plain_walls.append(wall)
                ours_walls.append(ours_round(train_args, rows, tokenizer))
    report(args, len(rows), tokens, plain_walls, ours_walls)


def report(args, rows: int, tokens: int, plain_walls: list[float], ours_walls: list[float]) -> None:
    print(f"{rows} rows, {args.concurrency} in flight, max_tokens {args.thinking_tokens + 8}, {tokens} tokens/round")
    print("rounds (s): plain " + ", ".join(f"{w:.1f}" for w in plain_walls) + "; distill "
          + ", ".join(f"{w:.1f}" for w in ours_walls))  # fmt: skip
    plain_s, ours_s = min(plain_walls), min(ours_walls)
    print("| way | wall (best round) | rows/s | tokens/s |\n| --- | --- | --- | --- |")
    for name, wall in (("plain concurrent client (ceiling)", plain_s), ("distill_rows via OpenAIEngine", ours_s)):
        print(f"| {name} | {wall:.2f} s | {rows / wall:.2f} | {tokens / wall:.0f} |")
    print(f"ratio distill / plain: {plain_s / ours_s:.2f}")


if __name__ == "__main__":
    main()
