"""Throughput of `python -m evaluation` on vLLM against its ceiling: a plain concurrent client, same prompts.

Both ways send the same requests to the same vLLM server in one run: every held-out prompt of the adapter
to the base and to the adapter, the same system prompt, sampling, seed, max tokens and number of requests in
flight. The ceiling is the raw `openai` client streaming chat completions from a thread pool (nothing but
reading the stream); the evaluation is `evaluation.run.evaluate` (OpenAIEngine, thinking/answer split,
rows stored as they finish). An untimed warm-up round (every request once, by the plain client) comes first, so
neither way pays the server's first requests on the adapter. Rounds go plain, evaluation, evaluation, plain
(drift cancels out); the figure is evaluation tokens/s over plain tokens/s. The evaluation's reference-loss
phase (prefill only) is timed apart.

    .venv/bin/python -m bench.bench_evaluate --adapter-dir Models/adapters/huanhuan-tiny --model .cache/tiny-qwen3
    .venv/bin/python -m bench.bench_evaluate --adapter-dir ... --base-url http://127.0.0.1:8000/v1 --api-key-env K
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def plain_client(base_url: str, key: str, requests: list[tuple[list, str]], params, concurrency: int) -> tuple:
    """(completion tokens, seconds) for the requests streamed by the bare openai client, `concurrency` at a time."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=600)

    def one(request: tuple[list, str]) -> int:
        messages, model = request
        stream = client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True},
            temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens, seed=params.seed,
            extra_body={"top_k": params.top_k},
        )  # fmt: skip
        tokens = 0
        for chunk in stream:
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(one, requests))
    return tokens, time.perf_counter() - started


def evaluation_run(engine, loss, plan) -> tuple:
    """(completion tokens, generation seconds, loss-phase seconds) of one evaluate() into a fresh store."""
    from evaluation.run import evaluate
    from evaluation.store import RowStore

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        _rows, stats = evaluate(plan, engine, loss, RowStore(Path(folder), "bench"))
        total = time.perf_counter() - started
    return stats.completion_tokens, stats.generate_s, total - stats.generate_s


@contextlib.contextmanager
def server(args: argparse.Namespace, adapter_dir: Path):
    """(base_url, api key, served base name): the given server, or a vLLM started on --model here."""
    if args.base_url:
        import openai

        key = os.environ.get(args.api_key_env, "")
        listed = openai.OpenAI(base_url=args.base_url, api_key=key).models.list()
        base = next(model.id for model in listed if not (model.model_extra or {}).get("parent"))
        yield args.base_url, key, base
        return
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    serve = ServeArgs(model=args.model, adapters_dir=str(adapter_dir.parent), api_key_env="", max_model_len=2048,
                      cpu_kv_cache_gib=1, max_lora_rank=8)  # fmt: skip
    with VLLMServer(serve) as running:
        print(f"vLLM healthy after {running.startup_s:.0f} s (not counted)", flush=True)
        yield running.base_url, running.api_key, running.served_model_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter-dir", required=True, help="an adapter exported by python -m training")
    parser.add_argument("--model", default=".cache/tiny-qwen3", help="its base model folder (tokenizer; vLLM)")
    parser.add_argument("--base-url", default="", help="use this running vLLM instead of starting one")
    parser.add_argument("--api-key-env", default="VLLM_API_KEY")
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from evaluation.cli import build_plan
    from evaluation.config import EvalArgs
    from evaluation.refloss import VllmReferenceLoss
    from serving.factory import create_engine
    from training.heldout import read_heldout

    adapter_dir = Path(args.adapter_dir)
    eval_args = EvalArgs(limit=args.rows, max_tokens=args.max_tokens, concurrency=args.concurrency)
    plan = build_plan(eval_args, read_heldout(adapter_dir), Path(args.model), adapter_dir.name, batched=False)
    with server(args, adapter_dir) as (base_url, key, base):
        engine = create_engine("openai", base_url=base_url, api_key=key, base_model=base)
        loss = VllmReferenceLoss(base_url, key, base)
        requests = [(plan.messages(item), name) for item in plan.items for name in (base, plan.adapter)]
        tokens, seconds = plain_client(base_url, key, requests, plan.params, args.concurrency)
        print(f"warm-up    {tokens:6d} tokens in {seconds:6.1f} s (not counted)", flush=True)
        results: dict[str, list[float]] = {"plain": [], "evaluation": []}
        for way in ("plain", "evaluation", "evaluation", "plain"):
            if way == "plain":
                tokens, seconds = plain_client(base_url, key, requests, plan.params, args.concurrency)
                note = ""
            else:
                tokens, seconds, loss_s = evaluation_run(engine, loss, plan)
                note = f"; reference-loss phase {loss_s:.1f} s for {2 * len(plan.items)} prefills"
            results[way].append(tokens / seconds)
            print(
                f"{way:10s} {tokens:6d} tokens in {seconds:6.1f} s = {tokens / seconds:7.1f} tokens/s{note}",
                flush=True,
            )
    plain, evaluation = statistics.mean(results["plain"]), statistics.mean(results["evaluation"])
    print(f"\n{len(requests)} requests ({len(plan.items)} rows x base + adapter), {args.max_tokens} max tokens, "
          f"{args.concurrency} in flight: evaluation {evaluation:.1f} tokens/s vs plain client {plain:.1f} tokens/s "
          f"= {evaluation / plain:.2f} of the ceiling")  # fmt: skip


if __name__ == "__main__":
    main()
