"""Where a thread is stuck, for a test's failure message: `thread_stack(thread)` is its current Python stack.

assert not reader.is_alive(), thread_stack(reader)
"""

from __future__ import annotations

import sys
import threading
import traceback


def thread_stack(thread: threading.Thread) -> str:
    """The thread's current stack, innermost call last ("not running" when it has ended)."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return f"thread {thread.name} is not running"
    return f"thread {thread.name} is still in:\n" + "".join(traceback.format_stack(frame))
