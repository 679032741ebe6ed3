"""The app's resident memory as conversations grow: 16 sessions x 50 turns, kept open, over the real vLLM server.

Each of `--sessions` gradio_client sessions (one per simulated browser tab) sends `--turns` side-by-side turns one
after another and never clears its history, so every session holds a 50-turn conversation at the end. The RSS of
the app's process tree is read once every session has finished its first turn, again when all have finished their
last, and after the sessions are closed. Issue 15 asks: last <= 1.5 x first.

    python -m bench.bench_app_memory --model .cache/tiny-qwen3 --adapters-dir Models/adapters   # starts both
    python -m bench.bench_app_memory --app-url http://127.0.0.1:7860/ --app-pid 1234 --sessions 16 --turns 50
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load_soak import start_stack, stop_stack
from tests.support.load_drivers import run_turn, tree_rss_mib

BOUND = 1.5  # issue 15: the app's RSS after 50 turns per session <= 1.5 x its RSS after the first turn


@dataclass
class MemoryReport:
    """RSS (MiB, app process tree) after the first turn of every session, after the last, and after closing."""

    sessions: int
    turns: int
    outcomes: dict[str, int]
    rss_before_mib: float
    rss_first_turn_mib: float
    rss_last_turn_mib: float
    rss_closed_mib: float
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return round(self.rss_last_turn_mib / self.rss_first_turn_mib, 3)


def run_long_sessions(
    app_url: str, models: tuple[str, str], app_pid: int, sessions: int = 16, turns: int = 50, max_tokens: int = 16
) -> MemoryReport:
    """Every session sends `turns` turns without clearing; RSS is read at the two barriers and after closing."""
    from gradio_client import Client

    results: list[Any] = []
    lock = threading.Lock()
    after_first, after_last = threading.Barrier(sessions + 1), threading.Barrier(sessions + 1)
    closed = threading.Barrier(sessions + 1)

    def user() -> None:
        client = Client(app_url, verbose=False)
        try:
            for turn in range(turns):
                result = run_turn(client, models, max_tokens, timeout_s=300)
                with lock:
                    results.append(result)
                if turn == 0:
                    after_first.wait()
            after_last.wait()
        finally:
            client.close()
            closed.wait()

    started = time.monotonic()
    before = tree_rss_mib(app_pid)
    threads = [threading.Thread(target=user, daemon=True) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    after_first.wait()
    first = tree_rss_mib(app_pid)
    after_last.wait()
    last = tree_rss_mib(app_pid)
    closed.wait()
    time.sleep(3)  # let the closed sessions' state be dropped
    closed_rss = tree_rss_mib(app_pid)
    failures = [f"{r.outcome}: {r.detail}" for r in results if r.outcome != "done"]
    outcomes = dict(Counter(r.outcome for r in results))
    seconds = round(time.monotonic() - started, 1)
    return MemoryReport(sessions, turns, outcomes, before, first, last, closed_rss, seconds, failures)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-url", default="", help="a running app; empty: start vLLM and the app here")
    parser.add_argument("--app-pid", type=int, default=0, help="the running app's pid (RSS)")
    parser.add_argument("--left", default="tiny", help="left model (the base's served name)")
    parser.add_argument("--right", default="huanhuan", help="right model (an adapter name)")
    parser.add_argument("--sessions", type=int, default=16, help="sessions open at once")
    parser.add_argument("--turns", type=int, default=50, help="turns per session, history kept")
    parser.add_argument("--max-tokens", type=int, default=16, help="max new tokens per side")
    parser.add_argument("--model", default=".cache/tiny-qwen3", help="self-started stack: the base model folder")
    parser.add_argument("--adapters-dir", default="Models/adapters", help="self-started stack: the adapters folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = app = None
    url, app_pid = args.app_url, args.app_pid
    if not url:
        stack_args = argparse.Namespace(**vars(args), concurrency_limit=args.sessions, max_queue_size=64)
        server, app, url, pids = start_stack(stack_args)
        app_pid = pids["app"]
    try:
        report = run_long_sessions(url, (args.left, args.right), app_pid, args.sessions, args.turns, args.max_tokens)
        print(json.dumps({**asdict(report), "growth": report.growth, "bound": BOUND}, ensure_ascii=False, indent=2))
        return 0 if not report.failures and report.growth <= BOUND else 1
    finally:
        stop_stack(server, app)


if __name__ == "__main__":
    sys.exit(main())
