"""Run `python -m training` so that one checkpoint save stops half-way, for a test to kill -9 it right there.

    python tests/training/hang_in_save.py FLAG_FILE SAVE_NUMBER <training flags...>

The Trainer writes a checkpoint as adapter weights, then `optimizer.pt` (torch.save), then the scheduler, RNG
and trainer_state.json; our callback adds COMPLETE last. Here the SAVE_NUMBER-th `optimizer.pt` gets only half
its bytes, FLAG_FILE appears and the process sleeps: the folder is what a kill in the middle of a real save
leaves. Only the timing is arranged; the kill (SIGKILL from the test) and the rerun are real.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import torch

real_save = torch.save


def hang_on_save(flag_file: Path, save_number: int):
    optimizer_saves = 0

    def save(obj, f, *args, **kwargs):
        nonlocal optimizer_saves
        if not isinstance(f, (str, Path)) or Path(f).name != "optimizer.pt":
            return real_save(obj, f, *args, **kwargs)
        optimizer_saves += 1
        if optimizer_saves < save_number:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        Path(f).write_bytes(buffer.getvalue()[: buffer.tell() // 2])
        flag_file.write_text(str(Path(f).parent), encoding="utf-8")
        while True:
            time.sleep(1)

    return save


def main() -> int:
    flag_file, save_number, training_flags = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    torch.save = hang_on_save(flag_file, save_number)
    from training.train import main as train_main

    return train_main(training_flags)


if __name__ == "__main__":
    sys.exit(main())
