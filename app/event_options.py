"""Options shared by the page's events.

`QUIET`: the event shows no progress tracker and keeps no loading status on any component. Gradio's page
otherwise keeps a loading status for every output of every event that has run in the tab, and on each streamed
update it re-reads (deep-copies) the props of every one of them: both chat histories, the loss curve, the log,
the model pickers. Each update of a turn then cost more as the conversation grew, although the bytes sent
stayed flat (bench/README.md, "Gradio's status bookkeeping"). With `show_progress_on=[]` an event has no
progress targets, so its outputs never enter that bookkeeping.
"""

from __future__ import annotations

from typing import Any

QUIET: dict[str, Any] = {"show_progress": "hidden", "show_progress_on": []}
