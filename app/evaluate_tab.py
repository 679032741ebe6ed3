"""The Evaluate tab: run `evaluation` on the page's engine for a left model and a right adapter, then browse it.

The right model must be an adapter of the configured adapters folder: its held-out split (recorded at
training time) gives the prompts, and the report lands in its `eval/` (evaluation.cli.run_evaluation, the same
code as `python -m evaluation`; the app never builds adapter paths, evaluation.cli.adapter_dir does). A run
shows its progress, Stop ends it (the requests are closed, so the server stops generating; the rows done are
kept and a rerun resumes; closing or reloading the page ends it too), then the summary with the blind-vote win
rate (app.votes), the chart and the rows sorted by the adapter's gain (worst first). A row can be sent to the
chat's message box; Export writes JSON and Markdown like the chat's export.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from app.adapter_panel import picker_choices
from app.config import AppArgs
from app.eval_rows import GAIN_METRICS, ORDERS, TABLE_HEADERS, read_report, row_prompt, table_rows, write_eval_export
from app.event_options import QUIET
from app.export import downloadable, export_folder
from app.votes import VoteStore, win_rate
from serving.protocol import folder_of, served_weights, server_url

DEFAULT_ROWS = 8


class EvalRuns:
    """At most one evaluation per browser session; Stop sets that session's event."""

    def __init__(self) -> None:
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            previous = self._stops.get(session)
            self._stops[session] = event = threading.Event()
        if previous is not None:
            previous.set()
        return event

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._stops.get(session) is event:
                del self._stops[session]

    def stop(self, session: str) -> bool:
        with self._lock:
            event = self._stops.get(session)
        if event is None:
            return False
        event.set()
        return True

    def run(self, session: str, work: Callable[[threading.Event], Iterator[Any]]) -> Iterator[Any]:
        """Yield from `work(stop_event)` as the session's run; however it ends, its event is set, so the work
        thread stops too when Gradio closes this generator (the page was closed or reloaded mid-run)."""
        event = self.start(session)
        try:
            yield from work(event)
        finally:
            event.set()
            self.finish(session, event)


def progress_html(phase: str, done: int, total: int) -> str:
    label = {"generate": "replies", "loss": "reference loss"}.get(phase, phase)
    return (f'<div class="hh-eval-progress"><progress value="{done}" max="{max(total, 1)}"></progress> '
            f"{label}: {done}/{total} rows</div>")  # fmt: skip


def votes_line(engine: Any, settings: AppArgs, adapter: str | None) -> str:
    """The blind-vote record of `adapter`: of the weights it serves now when the server says (app.votes)."""
    if not adapter:
        return ""
    votes = VoteStore(Path(settings.votes_dir)).load()
    return win_rate(votes, adapter, served_weights(engine, adapter)).describe()


def build_evaluate_tab(engine: Any, settings: AppArgs, message: gr.Textbox, tabs: gr.Tabs, chat_tab: str) -> None:
    """The tab's components and events (call inside `gr.Tabs`); a row sent to chat selects tab `chat_tab`."""
    runs = EvalRuns()
    with gr.Tab("Evaluate", id="evaluate", elem_id="evaluate-tab") as tab:
        gr.Markdown("Runs the right adapter's held-out rows through both models (same system prompt, sampling and "
                    "seed) and scores them; `python -m evaluation` does the same on the command line.")  # fmt: skip
        with gr.Row():
            initial = picker_choices(engine, settings, None, None)
            left = gr.Dropdown(label="Left model", elem_id="eval-left", **initial[0])
            right = gr.Dropdown(label="Right model (an adapter)", elem_id="eval-right", **initial[1])
        with gr.Row():
            limit = gr.Number(DEFAULT_ROWS, precision=0, label="first N held-out rows (0 = all)", elem_id="eval-rows")
            max_tokens = gr.Number(settings.max_new_tokens, precision=0, label="max new tokens", elem_id="eval-max")
            run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
            stop = gr.Button("Stop", variant="stop", elem_id="eval-stop")
        progress = gr.HTML(elem_id="eval-progress")
        votes = gr.Markdown(votes_line(engine, settings, settings.default_adapter), elem_id="eval-votes")
        summary = gr.Markdown(elem_id="eval-summary")
        chart = gr.Image(label="base vs adapter, 95% intervals", type="pil", interactive=False, elem_id="eval-chart")
        table, report = _rows_panel(message, tabs, chat_tab)
        _export(settings, report)
    outputs = [progress, summary, chart, table, report, votes]

    def start(request: gr.Request, *values: Any) -> Any:
        yield from runs.run(request.session_hash or "", lambda event: _run(engine, settings, event, *values))

    run.click(start, [left, right, limit, max_tokens], outputs, api_name="evaluate", show_progress_on=[progress])

    def halt(request: gr.Request) -> str:
        return _stopping(runs.stop(request.session_hash or ""))

    stop.click(halt, None, progress, concurrency_limit=None, api_name="evaluate_stop")
    right.change(lambda name: votes_line(engine, settings, name), right, votes, queue=False)
    tab.select(lambda *names: refreshed(engine, settings, *names), [left, right], [left, right, votes], queue=False)


def refreshed(engine: Any, settings: AppArgs, left: str | None, right: str | None) -> list[Any]:
    """[left, right, votes line] when the tab is opened: the models served now (an adapter trained or reloaded since
    the page was built is offered; a name no longer served falls back) and the right one's votes."""
    choices = picker_choices(engine, settings, left, right)
    shown = choices[1].get("value", right)
    return [gr.update(**choices[0]), gr.update(**choices[1]), votes_line(engine, settings, shown)]


def _stopping(was_running: bool) -> str:
    return "Stopping… the rows done so far are kept." if was_running else "Nothing is running."


def _rows_panel(message: gr.Textbox, tabs: gr.Tabs, chat_tab: str) -> tuple[gr.Dataframe, gr.State]:
    report = gr.State(None)
    with gr.Row():
        metric = gr.Dropdown([(label, key) for key, label in GAIN_METRICS.items()], value="chrf",
                             label="sort by the adapter's gain on", elem_id="eval-metric")  # fmt: skip
        order = gr.Radio(list(ORDERS), value=ORDERS[0], label="order", elem_id="eval-order")
    table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True, elem_id="eval-table")
    with gr.Row():
        row = gr.Number(None, precision=0, label="row # (the table's # column)", elem_id="eval-row")
        send = gr.Button("Send this row's prompt to the chat", elem_id="eval-send-row")
    note = gr.Markdown(elem_id="eval-row-note")

    def resort(current: Any, key: str, how: str) -> Any:
        return table_rows(current["rows"], key, how) if current else gr.skip()

    def to_chat(current: Any, number: Any) -> list[Any]:
        try:
            prompt = row_prompt(current["rows"] if current else [], number)
        except ValueError as error:
            return [gr.skip(), gr.skip(), f"⚠ {error}"]
        return [prompt, gr.Tabs(selected=chat_tab), f"Row #{int(number)} is in the chat's message box: press Send."]

    for control in (metric, order):
        control.change(resort, [report, metric, order], table, queue=False, **QUIET)
    report.change(resort, [report, metric, order], table, queue=False, **QUIET)
    send.click(to_chat, [report, row], [message, tabs, note], queue=False, api_name="evaluate_row_to_chat", **QUIET)
    return table, report


def _export(settings: AppArgs, report: gr.State) -> None:
    export_dir = export_folder(settings.export_dir)
    with gr.Accordion("Export the evaluation", open=False):
        button = gr.Button("Export JSON + Markdown", elem_id="eval-export")
        files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="eval-export-files")

    def export(current: Any) -> list[str]:
        if not current:
            raise gr.Error("nothing to export yet: run an evaluation first", print_exception=False)
        return downloadable(write_eval_export(current, export_dir))

    button.click(export, report, files, concurrency_limit=None, api_name="evaluate_export")


def _run(engine: Any, settings: AppArgs, stop: threading.Event, left: str, right: str, limit: Any,
         max_tokens: Any) -> Any:  # fmt: skip
    """Yields [progress, summary, chart, table, report, votes] while the evaluation runs in a thread."""
    from evaluation.cli import USER_ERRORS, EvalError, adapter_dir

    skip = [gr.skip()] * 5
    try:
        args = _eval_args(engine, settings, right, limit, max_tokens)
        adapter_dir(args.adapters_dir, right)  # a name inside the adapters folder, or a clear refusal
    except (ValueError, EvalError) as error:
        yield [f"⚠ {error}", *skip]
        return
    updates: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}

    def work() -> None:
        from evaluation.cli import run_evaluation

        try:
            result["folder"] = run_evaluation(args, lambda *p: updates.put(p), stop, engine=engine, left=left)
        except (*USER_ERRORS, ValueError, OSError) as error:
            result["error"] = error
        except Exception as error:  # a bug must still end the run on the page, with its traceback in the log
            logging.getLogger("app").exception("the evaluation failed")
            result["error"] = f"the evaluation failed unexpectedly: {error!r} (see the app's log)"
        finally:
            updates.put(None)

    threading.Thread(target=work, name="evaluate-tab", daemon=True).start()
    yield [progress_html("generate", 0, 0), *skip]
    while (update := _next_update(updates)) is not None:
        yield [gr.skip(), *skip] if update is STILL else [progress_html(*update), *skip]
    if "error" in result and stop.is_set():
        yield [f"⏹ Stopped before any row was answered: the replies done so far are kept and Run resumes them "
               f"({result['error']}).", *skip]  # fmt: skip
        return
    if "error" in result:
        yield [f"⚠ {result['error']}", *skip]
        return
    yield _shown(engine, settings, result["folder"], right, stopped=stop.is_set())


STILL = ("still",)  # no progress for a while: the run yields anyway, so Gradio can close it when the page goes
STILL_EVERY_S = 1.0


def _next_update(updates: queue.Queue) -> Any:
    """The next progress update (None: the work ended), or STILL after STILL_EVERY_S without one. A generator
    blocked on the queue could not be closed (a page closed mid-run) until the next row finished."""
    try:
        return updates.get(timeout=STILL_EVERY_S)
    except queue.Empty:
        return STILL


def _eval_args(engine: Any, settings: AppArgs, right: str, limit: Any, max_tokens: Any) -> Any:
    from evaluation.config import EvalArgs

    if not settings.adapters_dir:
        raise ValueError("no adapters folder is configured (--adapters-dir): there is nothing to evaluate")
    if not right:
        raise ValueError("choose the right model: an adapter")
    try:
        rows, tokens = int(limit or 0), int(max_tokens or 0)
    except (TypeError, ValueError):
        raise ValueError("rows and max new tokens must be whole numbers") from None
    if rows < 0 or not 1 <= tokens <= settings.max_new_tokens_limit:
        raise ValueError(f"rows must be >= 0 and max new tokens 1 to {settings.max_new_tokens_limit}")
    base_folder = settings.model or settings.train_model
    folder = folder_of(right)  # a retrained adapter is served as `name@N`; its split is in folder `name`
    if folder is None:
        raise ValueError(f"'{right}' is not an adapter of the adapters folder")
    return EvalArgs(adapter=folder, served_adapter=right, adapters_dir=str(settings.adapters_dir), model=base_folder,
                    engine="local" if server_url(engine) is None else "openai",
                    base_url=server_url(engine) or "", limit=rows, max_tokens=tokens,
                    temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k, seed=settings.seed,
                    concurrency=8).validate()  # fmt: skip


def _shown(engine: Any, settings: AppArgs, folder: Path, adapter: str, stopped: bool) -> list[Any]:
    from PIL import Image

    report = read_report(folder)
    summary = report["summary"]
    done = f"{summary['rows_scored']}/{summary['rows_planned']} rows" + (" (stopped)" if stopped else "")
    text = (folder / "summary.md").read_text(encoding="utf-8")
    with Image.open(folder / "chart.png") as image:
        chart = image.copy()
    return [
        progress_html("done", summary["rows_scored"], summary["rows_planned"])
        + f"<p>Finished: {done}. Report: <code>eval/</code> in the adapter's folder.</p>",
        text,
        chart,
        gr.skip(),  # the table: report.change fills it, sorted as the page asks
        report,
        votes_line(engine, settings, adapter),
    ]
