"""Load and soak the side-by-side app through its real Gradio API (gradio_client), over the real vLLM server.

load: `--users` simultaneous users, each one gradio_client session sending side-by-side turns (two streams
each) one after another for `--seconds`. Every turn must end as `done` (both sides finished) or `busy`
(refused by the app's queue with a clear "queue is full" message); `error` and `hung` (no end within
`--turn-timeout`) are failures. Prints turns/s and p50/p95 time to first token (first streamed text seen
by the client), and the peak number of requests vLLM ran at once.

soak: open / chat / close churn for `--seconds` (env SOAK_SECONDS, default 600): each user opens a session,
sends one to three turns (every fourth turn is abandoned mid-stream by closing the session), and closes it.
Prints the resident memory (RSS, whole process tree) of the app and of vLLM after the warm-up and at the end.

    python -m bench.load_soak load --app-url http://127.0.0.1:7860/ --left tiny --right huanhuan --users 16
    python -m bench.load_soak soak --app-url http://127.0.0.1:7860/ --app-pid 1234 --server-pid 5678
    python -m bench.load_soak load --model .cache/tiny-qwen3 --adapters-dir Models/adapters   # starts both

Loopback only; every loop is bounded by its duration; generations are short (`--max-tokens`, default 16).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.support.load_drivers import run_load, run_soak

REPO_ROOT = Path(__file__).resolve().parents[1]


def start_stack(args: argparse.Namespace) -> tuple[Any, Any, str, dict[str, int]]:
    """Start vLLM (tiny model, adapters folder) and `python -m app` on it when no --app-url is given."""
    import subprocess

    from common.net import free_port
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    server = VLLMServer(
        ServeArgs(
            model=args.model,
            served_model_name="tiny",
            adapters_dir=args.adapters_dir,
            api_key_env="",
            max_model_len=2048,
            cpu_kv_cache_gib=1,
        )
    ).start()
    port = free_port()
    env = {**os.environ, "HH_BENCH_KEY": server.api_key, "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable,
        "-m",
        "app",
        "--engine",
        "openai",
        "--base-url",
        server.base_url,
        "--api-key-env",
        "HH_BENCH_KEY",
        "--adapters-dir",
        args.adapters_dir,
        "--port",
        str(port),
        "--concurrency-limit",
        str(args.concurrency_limit),
        "--max-queue-size",
        str(args.max_queue_size),
    ]
    app = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    import httpx

    for _ in range(240):
        try:
            httpx.get(url + "config", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    return server, app, url, {"app": app.pid, "vllm": server._process.pid}


def stop_stack(server: Any, app: Any) -> None:
    """Stop what start_stack started (either may be None: nothing was started)."""
    if app is not None:
        app.terminate()
        app.wait(timeout=30)
    if server is not None:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["load", "soak"])
    parser.add_argument("--app-url", default="", help="a running app; empty: start vLLM and the app here")
    parser.add_argument("--vllm-url", default="", help="vLLM's base URL, for the peak running requests")
    parser.add_argument("--left", default="tiny", help="left model (the base's served name)")
    parser.add_argument("--right", default="huanhuan", help="right model (an adapter name)")
    parser.add_argument("--users", type=int, default=0, help="simultaneous users (load: 16, soak: 4)")
    parser.add_argument("--seconds", type=float, default=0, help="duration (load: 60, soak: $SOAK_SECONDS or 600)")
    parser.add_argument("--max-tokens", type=int, default=16, help="max new tokens per side")
    parser.add_argument("--turn-timeout", type=float, default=180, help="a turn not ended after this is 'hung'")
    parser.add_argument("--app-pid", type=int, default=0, help="soak: the app's pid (RSS)")
    parser.add_argument("--server-pid", type=int, default=0, help="soak: vLLM's pid (RSS)")
    parser.add_argument("--model", default=".cache/tiny-qwen3", help="self-started stack: the base model folder")
    parser.add_argument("--adapters-dir", default="Models/adapters", help="self-started stack: the adapters folder")
    parser.add_argument("--concurrency-limit", type=int, default=16, help="self-started app: turns at once")
    parser.add_argument("--max-queue-size", type=int, default=64, help="self-started app: queue size")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = app = None
    pids = {name: pid for name, pid in (("app", args.app_pid), ("vllm", args.server_pid)) if pid}
    url, vllm_url = args.app_url, args.vllm_url or None
    if not url:
        server, app, url, pids = start_stack(args)
        vllm_url = server.base_url
    try:
        models = (args.left, args.right)
        if args.mode == "load":
            report = run_load(
                url, models, args.users or 16, args.seconds or 60, args.max_tokens, args.turn_timeout, vllm_url
            )
        else:
            seconds = args.seconds or float(os.environ.get("SOAK_SECONDS", "600"))
            report = run_soak(url, models, pids, seconds, args.users or 4, args.max_tokens, None, args.turn_timeout)
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
        return 0 if not report.failures else 1
    finally:
        stop_stack(server, app)


if __name__ == "__main__":
    sys.exit(main())
