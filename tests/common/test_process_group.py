"""common.process_group: a subprocess and everything it started are stopped together; one that ignores SIGTERM
gets SIGKILL after the grace period.

    .venv/bin/python -m pytest tests/common/test_process_group.py
"""

from __future__ import annotations

import subprocess
import time

from common.process_group import process_group_alive, stop_process_group


def start_group(script: str) -> subprocess.Popen:
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    time.sleep(0.3)  # the shell has started its children
    return process


def wait_group_gone(pgid: int, timeout_s: float = 5.0) -> bool:
    """The children outlive their leader for a moment: until init reaps them they still count."""
    deadline = time.monotonic() + timeout_s
    while process_group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_group_alive(pgid)


def test_the_leader_and_its_children_are_stopped() -> None:
    process = start_group("sleep 60 & sleep 60 & wait")
    assert process_group_alive(process.pid)
    stop_process_group(process.pid, grace_s=5.0, leader=process)
    assert process.poll() is not None
    assert wait_group_gone(process.pid)


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    process = start_group("trap '' TERM; sleep 60 & wait; sleep 60")
    started = time.monotonic()
    stop_process_group(process.pid, grace_s=1.0, leader=process)
    assert process.poll() is not None and 1.0 <= time.monotonic() - started < 8.0
    assert wait_group_gone(process.pid)


def test_a_second_ctrl_c_while_waiting_still_kills_the_group() -> None:
    import _thread
    import threading

    import pytest

    process = start_group("trap '' TERM INT; sleep 60 & wait; sleep 60")
    threading.Timer(0.5, _thread.interrupt_main).start()  # Ctrl-C again, while the grace period runs
    with pytest.raises(KeyboardInterrupt):
        stop_process_group(process.pid, grace_s=30.0, leader=process)
    process.wait(timeout=5)  # the leader was killed (it ignores SIGTERM and SIGINT): reap it
    assert wait_group_gone(process.pid), "the server would keep the GPU and the port with nothing left to stop it"
