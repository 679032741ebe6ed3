"""The live progress log of a run: `<output_dir>/progress.jsonl`, one JSON object per line, appended as it trains.

A line is written when training starts (`{"event": "start", "max_steps": N}`), at every Trainer log entry
(`{"step": 3, "max_steps": N, "loss": 2.1, ...}` or `{"step": 4, "eval_loss": 2.0, ...}`) and when training
ends (`{"event": "end", "step": N}`). Each line is flushed at once, so another process (the app's Train tab,
`tail -f`) can follow a run while it trains. Only the main process writes (DDP ranks > 0 stay silent).

    entries = read_progress(Path("runs/huanhuan-lora/progress.jsonl"))
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from common.jsonl import append_record, read_records

PROGRESS_FILE = "progress.jsonl"


def append_entry(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line (non-finite numbers become null) and flush it."""
    append_record(path, {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()})


def read_progress(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a progress log (a line being written, or a torn one, is skipped)."""
    return read_records(path)


def progress_callback(output_dir: Path):
    """A TrainerCallback appending to `output_dir/progress.jsonl` (a resumed run adds a new `start` line)."""
    from transformers import TrainerCallback

    path = Path(output_dir) / PROGRESS_FILE

    class ProgressLog(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
                append_entry(path, {"event": "start", "step": state.global_step, "max_steps": state.max_steps,
                                    "time": time.time()})  # fmt: skip

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                append_entry(path, {"step": state.global_step, "max_steps": state.max_steps, "time": time.time(),
                                    **logs})  # fmt: skip

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                append_entry(path, {"event": "end", "step": state.global_step, "time": time.time()})

    return ProgressLog()
