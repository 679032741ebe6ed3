"""ModelThread: every call runs on its one thread, in order; results and errors come back to the caller.

.venv/bin/python -m pytest tests/serving/test_model_thread.py
"""

from __future__ import annotations

import threading

import pytest

from serving.model_thread import ModelThread


def test_calls_run_on_one_thread_in_order_and_return_their_results() -> None:
    worker = ModelThread("test-model-thread")
    seen: list[tuple[int, int]] = []
    futures = [worker.submit(lambda i=i: seen.append((i, threading.get_ident())) or i * i) for i in range(20)]
    assert [future.result(60) for future in futures] == [i * i for i in range(20)]
    assert [i for i, _ in seen] == list(range(20))
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()
    assert worker.stop(60)


def test_errors_reach_the_caller_and_a_call_from_the_thread_itself_runs_inline() -> None:
    worker = ModelThread("test-model-thread")

    def fail() -> None:
        raise ValueError("bad adapter")

    with pytest.raises(ValueError, match="bad adapter"):
        worker.call(fail)
    assert worker.call(lambda: worker.call(lambda: "nested")) == "nested"  # no deadlock
    assert worker.stop(60)
    with pytest.raises(RuntimeError, match="stopped"):
        worker.call(lambda: None)
