"""tests.support.threads.thread_stack names where a live thread is, and says when it has ended."""

from __future__ import annotations

import threading

from tests.support.threads import thread_stack


def wait_for_release(release: threading.Event) -> None:
    release.wait(30)


def test_a_waiting_thread_shows_the_function_it_waits_in() -> None:
    release = threading.Event()
    thread = threading.Thread(target=wait_for_release, args=(release,), name="waiter", daemon=True)
    thread.start()
    try:
        assert "in wait_for_release" in thread_stack(thread)
    finally:
        release.set()
        thread.join(5)
    assert thread_stack(thread) == "thread waiter is not running"
