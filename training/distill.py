"""Distilled thinking: before training, the base model writes its own thinking for every training prompt.

huanhuan.json has no reasoning; trained as `<think>\\n\\n</think>\\n\\n{answer}` an adapter learns to skip
thinking. With `--thinking distill` the thinker (the base, through serving: vLLM with many requests in
flight, or LocalEngine in batches) is asked each row's prompt with the persona system prompt, and the
example becomes `<think>\\n{its thinking}\\n</think>\\n\\n{persona answer}`. Two ways to ask (`distill_prompt`):

- `blind`: exactly the messages serving will send (persona + line);
- `rationalized` (STaR): the persona prompt also tells the thinker the reference answer and asks it to
  think its way there, so the thinking leads to the answer that follows it.

A stream is closed as soon as its thinking closes (the thinker's own answer is not needed), so the server
stops generating it. Results are cached on disk (training.distill_cache): a rerun, or a second training,
reuses them; a killed run resumes. Thinking that never closes, or closes after more than
`distill_max_thinking_tokens`, is dropped and counted. Fill the cache without training:

    python -m training.distill --config configs/lora_qwen3_4b_thinking.yaml --thinking distill
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serving.protocol import (
    AnswerDelta,
    ChatRequest,
    EngineError,
    EngineUnavailableError,
    FinalDelta,
    ReasoningDelta,
    SamplingParams,
)
from training.config import TrainArgs
from training.data import DatasetError, Row
from training.distill_cache import KEPT, NEVER_CLOSED, OVER_BUDGET, CachedThinking, ThinkingCache, stable_hash
from training.examples import EncodeReport, encode_rows, encode_with_thinking, percentiles, prompt_messages

RATIONALIZE_HINT = (
    "\n\n（你对这句话的回答将是：「{answer}」。请先在思考中一步步想清楚，为什么要这样回答；"
    "思考时就像自己想到的一样，不要提到事先知道了这个回答。）"
)
CLOSE_MARGIN_TOKENS = 8  # room past the budget for `</think>` and the first answer token, which ends the stream


def thinker_messages(row: Row, args: TrainArgs) -> list[dict[str, str]]:
    """What the thinker is asked: the training prompt (blind), plus the reference answer (rationalized)."""
    messages = prompt_messages(row, args.system_prompt)
    if args.distill_prompt != "rationalized":
        return messages
    hint = RATIONALIZE_HINT.format(answer=row.output)
    if messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + hint}, *messages[1:]]
    return [{"role": "system", "content": hint.strip()}, *messages]


def read_thinking(stream, count_tokens: Callable[[str], int], budget: int) -> CachedThinking:
    """Read a stream until its thinking closes (then close it); classify the outcome."""
    pieces: list[str] = []
    closed = False
    try:
        for delta in stream:
            if isinstance(delta, ReasoningDelta):
                pieces.append(delta.text)
            elif isinstance(delta, AnswerDelta):
                closed = True
                break
            elif isinstance(delta, FinalDelta):
                closed = closed or delta.thinking_closed
    finally:
        stream.close()
    thinking = "".join(pieces).strip("\n")  # the chat template strips these too
    tokens = count_tokens(thinking)
    if not closed:
        return CachedThinking(NEVER_CLOSED, "", tokens)
    if tokens > budget:
        return CachedThinking(OVER_BUDGET, "", tokens)
    return CachedThinking(KEPT, thinking, tokens)


@dataclass
class DistillReport:
    """Counts and timings of one distillation step (written into the adapter's metrics.json)."""

    prompt_style: str
    rows: int = 0
    from_cache: int = 0
    generated: int = 0
    failed: int = 0
    engine_start_s: float = 0.0  # starting the thinker (vLLM start-up, model load), not counted in generation_s
    generation_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: {KEPT: 0, NEVER_CLOSED: 0, OVER_BUDGET: 0})
    kept_thinking_tokens: list[int] = field(default_factory=list)
    first_error: str = ""

    def add(self, entry: CachedThinking) -> None:
        self.outcomes[entry.status] += 1
        if entry.status == KEPT:
            self.kept_thinking_tokens.append(entry.thinking_tokens)

    def summary(self) -> dict[str, Any]:
        answered = sum(self.outcomes.values())
        closed = self.outcomes[KEPT] + self.outcomes[OVER_BUDGET]
        return {
            "prompt_style": self.prompt_style,
            "rows": self.rows,
            "rows_used": self.outcomes[KEPT],
            "dropped_never_closed": self.outcomes[NEVER_CLOSED],
            "dropped_over_budget": self.outcomes[OVER_BUDGET],
            "failed": self.failed,
            "from_cache": self.from_cache,
            "generated": self.generated,
            "engine_start_s": round(self.engine_start_s, 2),
            "generation_s": round(self.generation_s, 2),
            "generated_per_s": round(self.generated / self.generation_s, 3) if self.generation_s else None,
            "closed_thinking_rate": round(closed / answered, 4) if answered else None,
            "thinking_tokens": percentiles(self.kept_thinking_tokens),
        }


@dataclass
class DistillResult:
    thinking: dict[Row, str]
    report: DistillReport


def sampling_params(args: TrainArgs) -> SamplingParams:
    return SamplingParams(
        temperature=args.distill_temperature,
        top_p=args.distill_top_p,
        top_k=args.distill_top_k,
        max_tokens=args.distill_max_thinking_tokens + CLOSE_MARGIN_TOKENS,
        seed=args.seed,
    ).validate()


def open_cache(args: TrainArgs) -> ThinkingCache:
    from training.distill_engine import thinker_identity

    material = {
        "thinker": thinker_identity(args),
        "sampling": asdict(sampling_params(args)),
        "max_thinking_tokens": args.distill_max_thinking_tokens,
        "prompt_style": args.distill_prompt,
    }
    return ThinkingCache(Path(args.distill_cache_dir), material)


def generate_missing(thinker, jobs: list[list[dict[str, str]]], args: TrainArgs, read, on_done) -> None:
    """Ask the thinker for every job; on_done(messages, CachedThinking | EngineError) as each one finishes.

    vLLM / openai: a pool of `distill_concurrency` requests in flight, each read on its own thread. LocalEngine:
    batches of `distill_concurrency` rows, each batch ONE generate (open_streams), its rows read in parallel.
    `read(stream)` turns one stream into its outcome (read_thinking).
    """
    params = sampling_params(args)
    chunk = args.distill_concurrency if thinker.batched else 1

    def one_batch(batch: list[list[dict[str, str]]]) -> None:
        try:
            streams = thinker.engine.open_streams([ChatRequest(m, thinker.model, params) for m in batch])
        except EngineUnavailableError:
            raise
        except EngineError as error:
            for messages in batch:
                on_done(messages, error)
            return
        if len(streams) == 1:
            _report(batch[0], lambda: read(streams[0]), on_done)
            return
        with ThreadPoolExecutor(max_workers=len(streams)) as readers:
            futures = {readers.submit(read, stream): messages for stream, messages in zip(streams, batch, strict=True)}
            for future in as_completed(futures):
                _report(futures[future], future.result, on_done)

    batches = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    workers = 1 if thinker.batched else args.distill_concurrency
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(batches)))) as pool:
        futures = [pool.submit(one_batch, batch) for batch in batches]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _report(messages, outcome: Callable[[], CachedThinking], on_done) -> None:
    try:
        on_done(messages, outcome())
    except EngineUnavailableError:
        raise
    except EngineError as error:
        on_done(messages, error)


class _Collector:
    """Receives each finished generation: caches it, counts it, moves the progress bar."""

    def __init__(self, cache: ThinkingCache, report: DistillReport, progress):
        self.cache, self.report, self.progress = cache, report, progress
        self._lock = threading.Lock()

    def __call__(self, messages, outcome) -> None:
        with self._lock:
            self._record(messages, outcome)

    def _record(self, messages, outcome) -> None:
        if isinstance(outcome, EngineError):
            self.report.failed += 1
            self.report.first_error = self.report.first_error or str(outcome)
        else:
            self.cache.put(messages, outcome)
            self.report.generated += 1
        self.progress.update(1)


def distill_rows(args: TrainArgs, rows: list[Row], tokenizer, log: Callable[[str], None]) -> DistillResult:
    """The thinking of every row: from the cache where it is there, from the thinker for the rest."""
    from tqdm.auto import tqdm

    from training.distill_engine import open_thinker

    cache, report = open_cache(args), DistillReport(args.distill_prompt, rows=len(rows))
    asked = {row: thinker_messages(row, args) for row in rows}
    missing_rows = [messages for messages in asked.values() if cache.get(messages) is None]
    report.from_cache = len(rows) - len(missing_rows)
    missing = list({stable_hash(messages): messages for messages in missing_rows}.values())  # same line, one request
    log(f"distill ({args.distill_prompt}): {report.from_cache} of {len(rows)} rows cached in {cache.path}")
    if missing:
        started = time.perf_counter()

        tokenizer_lock = threading.Lock()  # a fast tokenizer must not encode on two threads at once

        def count_tokens(text: str) -> int:
            with tokenizer_lock:
                return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

        def read(stream) -> CachedThinking:
            return read_thinking(stream, count_tokens, args.distill_max_thinking_tokens)

        bar = tqdm(total=len(missing), desc="thinking", unit="row", mininterval=1.0)
        with bar as progress, open_thinker(args, log) as thinker:
            ready = time.perf_counter()
            report.engine_start_s = ready - started
            generate_missing(thinker, missing, args, read, _Collector(cache, report, progress))
            report.generation_s = time.perf_counter() - ready
    thinking: dict[Row, str] = {}
    for row, messages in asked.items():
        entry = cache.get(messages)
        if entry is not None:
            report.add(entry)
            if entry.status == KEPT:
                thinking[row] = entry.thinking
    log("distill: " + json.dumps(report.summary(), ensure_ascii=False))
    if report.failed:
        log(f"distill: {report.failed} request(s) failed and were left out (rerun to retry): {report.first_error}")
    return DistillResult(thinking, report)


def encode_for_mode(args: TrainArgs, tokenizer, rows: list[Row], progress, log) -> tuple[EncodeReport, dict | None]:
    """Encode the rows as the thinking mode asks; with distill, also the distillation summary."""
    if args.thinking != "distill":
        return encode_rows(tokenizer, rows, args.system_prompt, args.max_length, progress=progress), None
    result = distill_rows(args, rows, tokenizer, log)
    kept = [row for row in rows if row in result.thinking]
    if not kept:
        raise DatasetError(
            f"no row kept a closed thinking of at most {args.distill_max_thinking_tokens} tokens "
            f"({json.dumps(result.report.summary(), ensure_ascii=False)}); raise --distill_max_thinking_tokens"
        )

    def encode(row: Row):
        return encode_with_thinking(tokenizer, row, args.system_prompt, result.thinking[row], args.train_on_thinking)

    encoded = encode_rows(tokenizer, kept, args.system_prompt, args.max_length, progress=progress, encode=encode)
    return encoded, result.report.summary()


def main(argv: list[str] | None = None) -> int:
    """Fill the cache for a training config (same rows as `python -m training` would use) and print the summary."""
    from transformers import AutoTokenizer

    from training.config import parse_args
    from training.train import log, select_rows

    try:
        args = parse_args(argv)
        args.thinking = "distill"
        rows, _ = select_rows(args)
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
        result = distill_rows(args, rows, tokenizer, log)
    except (ValueError, DatasetError, EngineError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result.report.summary(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
