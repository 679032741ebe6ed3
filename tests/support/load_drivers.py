"""Load and soak drivers for the side-by-side app, over its real Gradio API (gradio_client).

`run_load`: simultaneous users send side-by-side turns back to back; every turn must end `done` or `busy`
(refused by the app's queue with a clear "queue is full" message). `run_soak`: open / chat / close churn with
the resident memory of the app and of vLLM measured after the warm-up, at its peak and at the end.
Used by tests/reliability/test_reliability_load.py and test_reliability_soak.py, and by `python -m bench.load_soak`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tests.support.vllm_metrics import metric

MESSAGES = ["你是谁？", "皇上今日可好？", "讲一个很长的故事", "What is the weather like in the palace?"]
MARKERS = ("hh-thinking", "hh-answer")


@dataclass
class TurnResult:
    """How one side-by-side turn ended: done, busy (refused by the queue), error, hung or abandoned."""

    outcome: str
    ttft_s: float | None = None
    total_s: float = 0.0
    detail: str = ""


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def send_turn(client: Any, message: str, models: tuple[str, str], max_tokens: int) -> Any:
    left, right = models
    return client.submit(message, left, right, "", True, 0.6, 0.95, 20, max_tokens, 0, api_name="/send")


def has_text(output: Any) -> bool:
    """True once either chat pane of a streamed output shows thinking or answer text."""
    return isinstance(output, list | tuple) and len(output) >= 3 and any(m in str(output[1:3]) for m in MARKERS)


def classify(final: Any) -> TurnResult:
    stats = [str(line) for line in final[3:5]]
    if all("tok/s" in line for line in stats):
        return TurnResult("done")
    return TurnResult("error", detail=" | ".join(stats) + " | " + str(final[1:3])[-300:])


def clear(client: Any) -> None:
    """Clear the session's history (keeps the context bounded); a full queue refusing it is retried."""
    for _ in range(20):
        try:
            client.predict("", api_name="/clear")
            return
        except Exception as error:
            if "queue is full" not in str(error).lower():
                raise
            time.sleep(0.5)


def run_turn(client: Any, models: tuple[str, str], max_tokens: int, timeout_s: float, abandon: bool = False):
    """Send one turn and follow it to its end; `abandon` leaves it after the first streamed text."""
    started = time.monotonic()
    job = send_turn(client, random.choice(MESSAGES), models, max_tokens)
    ttft = None
    while not job.done():
        if ttft is None and any(has_text(output) for output in job.outputs()[-2:]):
            ttft = time.monotonic() - started
            if abandon:
                return TurnResult("abandoned", ttft, ttft)
        if time.monotonic() - started > timeout_s:
            job.cancel()
            return TurnResult("hung", ttft, time.monotonic() - started, f"no end after {timeout_s:.0f} s")
        time.sleep(0.02)
    total = time.monotonic() - started
    try:
        final = job.result(timeout=5)
    except Exception as error:  # the queue refuses with an AppError/ValueError carrying Gradio's message
        text = str(error)
        busy = "queue is full" in text.lower() or "busy" in text.lower()
        return TurnResult("busy" if busy else "error", None, total, f"{type(error).__name__}: {text}"[:300])
    result = classify(final)
    result.ttft_s, result.total_s = ttft, total
    return result


@dataclass
class LoadReport:
    users: int
    seconds: float
    outcomes: dict[str, int]
    turns_per_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    turn_p50_s: float | None
    peak_running_requests: float | None
    failures: list[str] = field(default_factory=list)


class PeakSampler(threading.Thread):
    """Samples vLLM's vllm:num_requests_running gauge every 0.25 s and keeps the peak."""

    def __init__(self, vllm_url: str | None):
        super().__init__(daemon=True)
        self.vllm_url, self.peak, self.stop_event = vllm_url, None, threading.Event()

    def run(self) -> None:
        server = SimpleNamespace(base_url=(self.vllm_url or "").rstrip("/"), api_key="")  # /metrics is an open probe
        while self.vllm_url and not self.stop_event.wait(0.25):
            try:
                running = metric(server, "vllm:num_requests_running")
            except OSError:  # the server is busy or restarting: skip this sample
                continue
            self.peak = max(self.peak or 0.0, running)


def run_load(
    app_url: str,
    models: tuple[str, str],
    users: int = 16,
    seconds: float = 60,
    max_tokens: int = 16,
    turn_timeout_s: float = 180,
    vllm_url: str | None = None,
) -> LoadReport:
    """`users` sessions send turns back to back until `seconds` have passed (the last turns finish after)."""
    from gradio_client import Client

    results: list[TurnResult] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def user() -> None:
        client = Client(app_url, verbose=False)
        try:
            while time.monotonic() < deadline:
                result = run_turn(client, models, max_tokens, turn_timeout_s)
                with lock:
                    results.append(result)
                clear(client)
        except Exception as error:  # a user that dies is a failure, never a silent loss
            with lock:
                results.append(TurnResult("error", detail=f"user crashed: {type(error).__name__}: {error}"[:300]))
        finally:
            client.close()

    sampler = PeakSampler(vllm_url)
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + turn_timeout_s + 60)
    elapsed = time.monotonic() - started
    sampler.stop_event.set()
    done = [r for r in results if r.outcome == "done"]
    ttfts = [r.ttft_s for r in done if r.ttft_s is not None]
    failures = [f"{r.outcome}: {r.detail}" for r in results if r.outcome not in ("done", "busy")]
    failures += [f"user thread still running after {elapsed:.0f} s" for t in threads if t.is_alive()]
    return LoadReport(
        users,
        round(elapsed, 1),
        dict(Counter(r.outcome for r in results)),
        round(len(done) / elapsed, 3),
        percentile(ttfts, 0.5),
        percentile(ttfts, 0.95),
        percentile([r.total_s for r in done], 0.5),
        sampler.peak,
        failures,
    )


def tree_rss_mib(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


@dataclass
class SoakReport:
    seconds: float
    sessions: int
    outcomes: dict[str, int]
    rss_start_mib: dict[str, float]
    rss_end_mib: dict[str, float]
    rss_peak_mib: dict[str, float]
    failures: list[str] = field(default_factory=list)


def soak_session(app_url: str, models: tuple[str, str], max_tokens: int, timeout_s: float, turn_index: list[int]):
    """One open / chat / close cycle; returns its turn results."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    results = []
    try:
        for _ in range(random.randint(1, 3)):
            turn_index[0] += 1
            abandon = turn_index[0] % 4 == 0
            results.append(run_turn(client, models, max_tokens, timeout_s, abandon=abandon))
            if abandon:
                break  # closing the session mid-stream
    finally:
        client.close()
    return results


def run_soak(
    app_url: str,
    models: tuple[str, str],
    pids: dict[str, int],
    seconds: float = 600,
    users: int = 4,
    max_tokens: int = 16,
    warmup_s: float | None = None,
    turn_timeout_s: float = 180,
) -> SoakReport:
    """Churn sessions for `seconds`; RSS of each pid's process tree after the warm-up, at its peak and at the end."""
    warmup_s = min(60.0, seconds / 5) if warmup_s is None else warmup_s
    results: list[TurnResult] = []
    sessions = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def user(index: int) -> None:
        turn_index = [index]
        while time.monotonic() < deadline:
            batch = soak_session(app_url, models, max_tokens, turn_timeout_s, turn_index)
            with lock:
                results.extend(batch)
                sessions[0] += 1

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s)
    start = {name: tree_rss_mib(pid) for name, pid in pids.items()}
    peak = dict(start)
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline + turn_timeout_s + 60:
        time.sleep(2)
        peak = {name: max(peak[name], tree_rss_mib(pid)) for name, pid in pids.items()}
    time.sleep(3)  # let the last closed sessions and aborted requests settle
    end = {name: tree_rss_mib(pid) for name, pid in pids.items()}
    failures = [f"{r.outcome}: {r.detail}" for r in results if r.outcome not in ("done", "busy", "abandoned")]
    failures += ["a user thread never ended" for t in threads if t.is_alive()]
    return SoakReport(seconds, sessions[0], dict(Counter(r.outcome for r in results)), start, end, peak, failures)
