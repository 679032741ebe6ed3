"""How fast Stop ends generation on the server: from `TurnControl.stop()` (what the Stop button's handler calls)
to vLLM's `vllm:num_requests_running` gauge reading 0, for the first Stop after the server starts and later ones.

Each round opens one side-by-side turn (base + adapter, long max tokens) through the app's own streaming
layer (`app.merge_sides.stream_sides`), waits until both sides have streamed text, calls stop, then polls
/metrics every 10 ms. Starts the real vLLM server on a model + adapters folder (tiny model by default).

    .venv/bin/python -m bench.bench_stop --rounds 5        # the tiny bench model and a random r=8 LoRA
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from bench.bench_side_by_side import REPO_ROOT, prepare

MESSAGES = [{"role": "user", "content": "讲一个很长的故事"}]


def running_requests(server) -> float:
    """The sum of vLLM's running-requests gauge over its engines (Prometheus text from /metrics)."""
    import httpx

    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    gauge = "vllm:num_requests_running"
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(gauge))


def one_stop(server, adapter: str, max_tokens: int) -> tuple[float, float, float]:
    """For one turn stopped mid-stream, seconds from stop() to: stop() returned, both of the app's stream
    readers ended, vLLM's running gauge at 0."""
    from app.merge_sides import TurnControl, stream_sides
    from serving.protocol import ChatRequest, SamplingParams

    engine = server.engine()
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    requests = {"left": ChatRequest(MESSAGES, engine.base_model, params),
                "right": ChatRequest(MESSAGES, adapter, params)}  # fmt: skip
    control, seen, both_streaming = TurnControl(), set(), threading.Event()

    def consume() -> None:
        for batch in stream_sides(engine, requests, control):
            seen.update(event.side for event in batch if event.delta is not None)
            if len(seen) == 2:
                both_streaming.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    if not both_streaming.wait(120):
        raise RuntimeError("the two sides did not both stream within 120 s")
    stopped_at = time.perf_counter()
    control.stop()
    returned = time.perf_counter() - stopped_at
    reader.join(30)
    readers_ended = time.perf_counter() - stopped_at
    while running_requests(server) > 0:
        if time.perf_counter() - stopped_at > 60:
            raise RuntimeError("vLLM still runs requests 60 s after stop")
        time.sleep(0.01)
    return returned, readers_ended, time.perf_counter() - stopped_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="base model folder (default: the tiny bench model, built once)")
    parser.add_argument("--adapters-dir", default="", help="adapters folder (default: a random LoRA for it)")
    parser.add_argument("--adapter", default="lora", help="the adapter on the right side")
    parser.add_argument("--rounds", type=int, default=5, help="stops measured after one fresh server start")
    parser.add_argument("--max-tokens", type=int, default=1500, help="max new tokens per side (never reached)")
    args = parser.parse_args()
    if not args.model:
        model_dir, adapter_dir = prepare("tiny", REPO_ROOT / ".cache")
        args.model, args.adapters_dir, args.adapter = str(model_dir), str(adapter_dir.parent), adapter_dir.name
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    serve_args = ServeArgs(model=args.model, served_model_name="tiny", adapters_dir=args.adapters_dir, api_key_env="",
                           max_model_len=2048, cpu_kv_cache_gib=1, log_path="logs/bench-stop-vllm.log")  # fmt: skip
    with VLLMServer(serve_args) as server:
        times = [one_stop(server, args.adapter, args.max_tokens) for _ in range(args.rounds)]
    print("| stop | stop() returned | app's readers ended | vLLM running 0 |\n| --- | --- | --- | --- |")
    for index, (returned, ended, zero) in enumerate(times, 1):
        label = f"{index} (first after start)" if index == 1 else str(index)
        print(f"| {label} | {returned:.3f} s | {ended:.3f} s | {zero:.3f} s |")
    zeros = [zero for *_, zero in times]
    print(f"\nto running 0: median {statistics.median(zeros):.3f} s, max {max(zeros):.3f} s over {len(zeros)} stops")


if __name__ == "__main__":
    main()
