"""Where LocalEngine's time goes: a plain batched `generate`, then the same call with one of LocalEngine's parts
added at a time, then LocalEngine itself, interleaved round by round on the same model and adapter.

Variants (the same two rows, base + LoRA, greedy, the same new-token count; the same model object):
  plain        model.generate(..., adapter_names=[...]) on the engine's model thread, no streamer, no criterion
  +streamer    plus LocalEngine's BatchRowStreamer (per-token decode and queueing)
  +criterion   plus LocalEngine's stopping criterion
  engine       LocalEngine.open_streams, both streams read on their own threads (as the app does)
With `--second-team`, the main thread also runs torch work first (as LocalEngine's constructor did when it
loaded the model there), and two more variants run: plain on the calling (main) thread, and plain on a fresh
thread per turn (what LocalEngine did before: one new generate thread per turn).
Prints the median wall time per turn and each variant as a share of plain (plain / variant).

    .venv/bin/python -m bench.profile_local_engine --shape 0.6b --rounds 3
    .venv/bin/python -m bench.profile_local_engine --shape 0.6b --rounds 3 --second-team
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from bench.bench_side_by_side import MESSAGES, REPO_ROOT, SHAPES, consume_concurrently, plain_generate, prepare


def variants(engine, new_tokens: int, second_team: bool) -> dict[str, Callable[[], int]]:
    from serving.local_streaming import BatchRowStreamer, RowState, cancel_rows_criterion
    from serving.protocol import ChatRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, seed=0)
    requests = [ChatRequest(MESSAGES, "base", params), ChatRequest(MESSAGES, "lora", params)]

    def rows() -> list:
        return [RowState(time.perf_counter(), engine._eos_ids) for _ in requests]

    def on_thread() -> int:
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(plain_generate(engine, ["base", "lora"], new_tokens)))
        thread.start()
        thread.join()
        return result[0]

    def there(extra) -> int:  # a plain generate on the engine's model thread
        return engine.run_on_model_thread(lambda: plain_generate(engine, ["base", "lora"], new_tokens, **extra()))

    ways = {
        "plain": lambda: there(dict),
        "+streamer": lambda: there(lambda: {"streamer": BatchRowStreamer(rows(), engine.tokenizer)}),
        "+criterion": lambda: there(lambda: {"stopping_criteria": [cancel_rows_criterion(rows())]}),
        "engine": lambda: consume_concurrently(engine.open_streams(requests)),
    }
    if second_team:
        ways["plain, calling thread"] = lambda: plain_generate(engine, ["base", "lora"], new_tokens)
        ways["plain, fresh thread per turn"] = on_thread
    return ways


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.6b", help="model shape (random weights)")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per row")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (each runs every variant once)")
    parser.add_argument("--second-team", action="store_true", help="also use torch on the main thread (see above)")
    args = parser.parse_args(argv)
    import torch

    from serving.local_engine import LocalEngine

    model_dir, adapter_dir = prepare(args.shape, REPO_ROOT / ".cache")
    engine = LocalEngine(model_dir, adapters={"lora": adapter_dir})
    if args.second_team:
        torch.ones(1 << 22).sum()  # a parallel region on the main thread: a second OpenMP team from now on
    runs = variants(engine, args.new_tokens, args.second_team)
    print(f"shape {args.shape}, {args.new_tokens} new tokens per row, torch threads {torch.get_num_threads()}, "
          f"second team: {args.second_team}")  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name, run in runs.items():
            started = time.perf_counter()
            tokens = run()
            if round_index:
                times[name].append(time.perf_counter() - started)
            assert tokens == 2 * args.new_tokens, f"{name} generated {tokens} tokens"
        print(f"  round {round_index} done", flush=True)
    plain = statistics.median(times["plain"])
    print("\n| variant | median wall per turn | share of plain |\n| --- | --- | --- |")
    for name, walls in times.items():
        print(f"| {name} | {statistics.median(walls):.2f} s | {plain / statistics.median(walls):.0%} |")
    engine.close()


if __name__ == "__main__":
    main()
