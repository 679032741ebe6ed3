"""Stop a subprocess together with everything it started: the subprocess leads its own process group
(`start_new_session=True`), and the whole group gets SIGTERM, then SIGKILL.

    stop_process_group(process.pid, grace_s=20.0, leader=process)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

KILL_WAIT_S = 10.0  # after SIGKILL, how long to wait for the processes to go


def process_alive(pid: int) -> bool:
    """True while process `pid` exists (an unreaped child counts)."""
    return _answers_signal_zero(os.kill, pid)


def process_group_alive(pgid: int) -> bool:
    """True while any process of the group exists (an unreaped leader counts)."""
    return _answers_signal_zero(os.killpg, pgid)


def _answers_signal_zero(send, target: int) -> bool:
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
    return True


def stop_process_group(pgid: int, grace_s: float, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM to the group; SIGKILL to what is left once the leader has exited (`leader` given: it is reaped
    here) or the whole group has (no `leader`: another thread reaps it), or after `grace_s`. Interrupted while
    waiting (a second Ctrl-C), it still kills the group before the interrupt goes on."""
    try:
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            if _wait_ended(pgid, wait_s, leader):
                break
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # children that outlived the leader still carry its group id


def _wait_ended(pgid: int, timeout_s: float, leader: subprocess.Popen | None) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        ended = leader.poll() is not None if leader is not None else not process_group_alive(pgid)
        if ended or time.monotonic() >= deadline:
            return ended
        time.sleep(0.1)
