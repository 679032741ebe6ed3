"""Runs under `accelerate launch` / `torchrun` (DDP): which process writes shared files, and how to spot DDP
(or DataParallel, which transformers uses when one process sees several GPUs).

Every process trains; only the main one (RANK 0) cleans the run folder, marks checkpoints complete and
exports the adapter, so two processes never write the same file.
"""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """True in a single-process run and in the rank-0 process of a distributed one."""
    return int(os.environ.get("RANK", "0")) == 0


def is_parallel_wrapped(model) -> bool:
    """True when the Trainer wrapped the model for several devices: DistributedDataParallel (accelerate launch,
    torchrun) or DataParallel (a plain `python -m training` that sees 2+ GPUs). Both spread the work only
    through the wrapper's own forward: DDP syncs gradients there, DataParallel splits the batch there."""
    from torch.nn import DataParallel
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel | DataParallel)
