"""One long-lived thread that runs every call touching a torch model, in order: `ModelThread`.

Why one thread: PyTorch's CPU build runs its intra-op work on an OpenMP (libgomp) team owned by the
calling thread. libgomp lets a team's idle threads spin (fast hand-off between the many small parallel
regions of a decode step) only while the process has no more OpenMP threads than CPUs; a second thread
that calls torch adds a second team, and from then on every team waits in the kernel instead. A plain
`model.generate` in a script runs on one team; LocalEngine used to start a new generate thread per turn
on top of the team that loaded the model. Running load, adapter changes and every generate on this one
thread keeps a single team, as a plain script has (bench/README.md, "where LocalEngine's time went").

    worker = ModelThread("local-engine")
    model = worker.call(load_model)            # runs there, returns here (exceptions re-raised here)
    worker.submit(generate, prompts)           # runs there, in order; returns a Future
    worker.stop()                              # after the queued calls; joins the thread
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class ModelThread:
    """A daemon thread with a job queue; `call` from the thread itself runs inline (no deadlock)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue[tuple[Future, Callable[..., Any], tuple] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        if not self._thread.is_alive():
            future.set_exception(RuntimeError("the model thread has stopped (the engine was closed)"))
            return future
        self._jobs.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self.submit(fn, *args).result()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Let the queued calls finish, end the thread and wait for it; True when it has ended."""
        if threading.current_thread() is self._thread:
            return False
        self._jobs.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # handed to the caller through the future
                future.set_exception(error)
