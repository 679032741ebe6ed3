"""Run every held-out prompt through the base and the adapter, and the reference through both for its loss.

The API an Evaluate tab calls (the command line is a thin wrapper around it):

    plan = EvalPlan(adapter="huanhuan", items=items, system_prompt=persona, params=SamplingParams(seed=0))
    results = evaluate(plan, engine, loss, store, progress=lambda phase, done, total: ..., stop=threading.Event())

Both sides get the same messages (system persona + prompt), sampling and seed. On an engine that serves
requests concurrently (vLLM through OpenAIEngine) `concurrency` requests are kept in flight, a new one
starting as soon as one ends; with `batched=True` (LocalEngine) `concurrency` requests at a time go to
`open_streams` as one batched generate. Each row's replies are appended to the RowStore as soon as both
sides are in; the reference losses follow once every reply is in (a separate phase, see `_losses`). A
stopped or failed run keeps what it finished and a rerun resumes.

The reference loss never holds the replies back: a row whose loss the server refuses (a reference longer than
its context, a server without `prompt_logprobs`) is kept without one, the reason goes to `RunStats.loss_error`,
and after LOSS_GIVE_UP_AFTER such rows in a row the phase ends (the scorer cannot work here). A rerun asks
again for the losses still missing. A server that cannot be reached fails the run (EvalAborted), as it does
while replying.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evaluation.refloss import LossesGivenUp, ReferenceLoss, TokenPair
from evaluation.store import RowStore
from serving.protocol import (
    BASE_MODEL_ALIAS,
    AnswerDelta,
    ChatRequest,
    EngineError,
    EngineUnavailableError,
    FinalDelta,
    ReasoningDelta,
    SamplingParams,
)

SIDES = ("base", "adapter")
CUT_SHORT_REASONS = ("cancelled", "abort")  # the local engine's and vLLM's: the reply was ended, not finished
LOSS_GIVE_UP_AFTER = 3  # rows in a row whose reference loss failed: the scorer cannot work here; stop asking
Progress = Callable[[str, int, int], None]


class EvalAborted(EngineError):
    """The engine failed mid-run; rows finished before it are kept (the message says how many and where)."""


@dataclass(frozen=True)
class EvalItem:
    """One held-out row: where it is in the dataset, the prompt, the reference answer and its token ids."""

    where: str
    prompt: str
    reference: str
    tokens: TokenPair


@dataclass
class EvalPlan:
    adapter: str
    items: list[EvalItem]
    system_prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    concurrency: int = 16
    batched: bool = False
    base: str = BASE_MODEL_ALIAS  # the model on the base side (the app's Evaluate tab may pick another)

    def messages(self, item: EvalItem) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": item.prompt}]

    def model_of(self, side: str) -> str:
        return self.base if side == "base" else self.adapter


@dataclass
class RunStats:
    rows_done_before: int = 0
    rows_done_now: int = 0
    completion_tokens: int = 0
    generate_s: float = 0.0
    stopped: bool = False
    loss_error: str = ""  # why some rows have no reference loss (the last failure); empty when none failed

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.generate_s if self.generate_s > 0 else 0.0


def drain(stream: Any, stop: threading.Event) -> dict[str, Any] | None:
    """Read one stream to its end: thinking, answer, finish reason, token counts; None when stopped or when the
    engine ended the reply early (CUT_SHORT_REASONS: a shutdown cancelled it), so it is never stored."""
    thinking, answer, final = [], [], None
    try:
        for delta in stream:
            if stop.is_set():
                return None
            if isinstance(delta, ReasoningDelta):
                thinking.append(delta.text)
            elif isinstance(delta, AnswerDelta):
                answer.append(delta.text)
            elif isinstance(delta, FinalDelta):
                final = delta
    finally:
        stream.close()
    if final is None or final.finish_reason in CUT_SHORT_REASONS:
        return None  # cut short (Stop, shutdown): not a reply to keep; a rerun asks again
    return {"thinking": "".join(thinking), "answer": "".join(answer), "finish_reason": final.finish_reason,
            "thinking_closed": final.thinking_closed, "reasoning_tokens": final.reasoning_tokens,
            "answer_tokens": final.answer_tokens}  # fmt: skip


class _Run:
    """The state of one evaluate() call, shared by its worker threads."""

    def __init__(self, plan, engine, store, progress, stop):
        self.plan, self.engine, self.store = plan, engine, store
        self.progress = progress or (lambda phase, done, total: None)
        self.stop = stop or threading.Event()
        self.abort = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.pending: dict[str, dict[str, Any]] = {}
        self.stats = RunStats()
        self.done = 0

    def halted(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.error = self.error or error
        self.abort.set()

    def side_done(self, item: EvalItem, side: str, reply: dict[str, Any]) -> None:
        with self.lock:
            self.stats.completion_tokens += reply["reasoning_tokens"] + reply["answer_tokens"]
            sides = self.pending.setdefault(item.where, {})
            sides[side] = reply
            if len(sides) < len(SIDES):
                return
            del self.pending[item.where]
        self.store_replies(item, sides)

    def store_replies(self, item: EvalItem, sides: dict[str, dict[str, Any]]) -> None:
        self.store.append({"part": "replies", "where": item.where, "prompt": item.prompt,
                           "reference": item.reference, **sides})  # fmt: skip
        with self.lock:
            self.done += 1
            done = self.done
        self.progress("generate", done, len(self.plan.items))


def _request(plan: EvalPlan, item: EvalItem, side: str) -> ChatRequest:
    return ChatRequest(plan.messages(item), plan.model_of(side), plan.params)


def _one_side(run: _Run, item: EvalItem, side: str) -> None:
    if run.halted():
        return
    try:
        stream = run.engine.stream_chat(run.plan.messages(item), run.plan.model_of(side), run.plan.params)
        reply = drain(stream, run.stop)
        if reply is not None:
            run.side_done(item, side, reply)
    except BaseException as error:
        run.fail(error)


def _windowed(run: _Run, todo: list[EvalItem]) -> None:
    jobs = [(item, side) for item in todo for side in SIDES]
    with ThreadPoolExecutor(max_workers=max(1, run.plan.concurrency), thread_name_prefix="eval") as pool:
        list(pool.map(lambda job: _one_side(run, *job), jobs))


def _batched(run: _Run, todo: list[EvalItem]) -> None:
    chunk = max(1, run.plan.concurrency // len(SIDES))
    for start in range(0, len(todo), chunk):
        if run.halted():
            return
        items = todo[start : start + chunk]
        try:
            streams = run.engine.open_streams([_request(run.plan, item, side) for item in items for side in SIDES])
            replies = [drain(stream, run.stop) for stream in streams]
            if any(reply is None for reply in replies):
                return
            for index, item in enumerate(items):
                sides = dict(zip(SIDES, replies[index * 2 : index * 2 + 2], strict=True))
                with run.lock:
                    run.stats.completion_tokens += sum(
                        r["reasoning_tokens"] + r["answer_tokens"] for r in sides.values()
                    )
                run.store_replies(item, sides)
        except BaseException as error:
            run.fail(error)
            return


def _losses(run: _Run, loss: ReferenceLoss, todo: list[EvalItem], chunk: int = 8) -> None:
    """The reference losses, after every reply is in (vLLM 0.32 can crash when a prompt_logprobs request with
    LoRA shares a batch with generating requests: vllm-project/vllm#16668, #29955). A chunk that fails is
    scored again row by row, so one bad row costs only its own loss."""
    failures_in_a_row = 0
    for start in range(0, len(todo), chunk):
        items = todo[start : start + chunk]
        groups = [items]
        while groups and not run.halted() and failures_in_a_row < LOSS_GIVE_UP_AFTER:
            group = groups.pop(0)
            try:
                _store_losses(run, loss, group)
                failures_in_a_row = 0
            except EngineUnavailableError as error:  # the server is gone: the run fails, as while replying
                run.fail(error)
            except LossesGivenUp as error:  # no row's fault (the server stayed busy): the rest go without a loss
                run.stats.loss_error = str(error)
                return
            except EngineError as error:  # the server refused these rows: find which, skip their loss
                if len(group) > 1:
                    groups = [[item] for item in group] + groups
                    continue
                failures_in_a_row += 1
                run.stats.loss_error = f"{group[0].where}: {error}"
            except Exception as error:  # anything else is no row's fault: the run fails with it
                run.fail(error)
        if groups or run.halted():
            return
        run.progress("loss", start + len(items), len(todo))


def _store_losses(run: _Run, loss: ReferenceLoss, items: list[EvalItem]) -> None:
    values = {side: loss.losses(run.plan.model_of(side), [item.tokens for item in items]) for side in SIDES}
    for index, item in enumerate(items):
        run.store.append({"part": "loss", "where": item.where, **{side: values[side][index] for side in SIDES}})


def evaluate(
    plan: EvalPlan,
    engine: Any,
    loss: ReferenceLoss,
    store: RowStore,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> tuple[list[dict[str, Any]], RunStats]:
    """Evaluate what of plan is not in store yet; returns (every finished row of the plan in plan order, stats).

    First every missing reply (both sides), then every missing reference loss. `progress(phase, done, total)`
    is called with phase "generate" or "loss". A row is finished once both replies are in; its sides carry
    `loss` when the reference loss is in too (stats.loss_error says why some are not). Raises EvalAborted when
    the engine fails while replying (what finished before is stored). Setting `stop` ends the run early
    without an error (stats.stopped; replies cut by the stop are not stored).
    """
    parts = store.parts()
    todo = [item for item in plan.items if item.where not in parts["replies"]]
    run = _Run(plan, engine, store, progress, stop)
    run.done = run.stats.rows_done_before = len(plan.items) - len(todo)
    run.progress("generate", run.done, len(plan.items))
    started = time.perf_counter()
    (_batched if plan.batched else _windowed)(run, todo)
    run.stats.generate_s = time.perf_counter() - started
    run.stats.rows_done_now = run.done - run.stats.rows_done_before
    if run.error is None and not run.stop.is_set():
        with_replies = store.parts()["replies"]
        _losses(
            run, loss, [item for item in plan.items if item.where in with_replies and item.where not in parts["loss"]]
        )
    run.stats.stopped = run.stop.is_set()
    rows = store.load()
    if run.error is not None:
        answered = sum(item.where in rows for item in plan.items)
        raise EvalAborted(
            f"the evaluation stopped with {answered} of {len(plan.items)} rows answered: {run.error}. "
            f"What was done is kept in {store.path}; run the same command again to resume."
        ) from run.error
    return [rows[item.where] for item in plan.items if item.where in rows], run.stats
