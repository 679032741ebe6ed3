"""Start a subprocess the way a terminal would: with Ctrl-C (SIGINT) at its default action.

A test run started in the background by a non-interactive shell (`nohup cmd &`) inherits SIGINT *ignored*, and a
shell script cannot trap a signal that was ignored when it started: `launch.sh` would then never see the Ctrl-C
the launch tests send. Pass `preexec_fn=default_sigint` to `subprocess.Popen`.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
