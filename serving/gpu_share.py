"""The GPU share (`--gpu-memory-utilization`) a vLLM server started by a command asks, beside other servers.

`python -m evaluation` and distillation's thinker start their own vLLM. vLLM refuses to start when the share
it asks is more than the card has free, so a fixed 0.85 fails beside the app's server (launch.sh's 0.85). The
share asked is the default, or what is free now less a little headroom, whichever is smaller:

    share_that_fits(0.85, (40.0, 80.0))   # 0.48: 40 GiB free of 80, less 1.5 GiB
"""

from __future__ import annotations

import math

from serving.protocol import EngineUnavailableError

DEFAULT_GPU_SHARE = 0.85  # what vLLM gets when it has the card to itself (ServeArgs' default)
HEADROOM_GIB = 1.5  # left free beside the server: CUDA contexts of the command itself, allocator slack
MIN_GPU_SHARE = 0.05  # below this no model of this project fits: refuse with a clear message instead


class GpuTooBusyError(EngineUnavailableError):
    """The card is too full for another vLLM server; the message says what holds it and what to do."""


def share_that_fits(wanted: float, reading: tuple[float, float] | None) -> float:
    """`wanted`, or less when `reading` ((free, total) GiB; None: no GPU) says the card is partly held."""
    if reading is None:
        return wanted
    free, total = reading
    if total <= 0:
        return wanted
    fits = math.floor((free - HEADROOM_GIB) / total * 100) / 100
    if fits < MIN_GPU_SHARE:
        raise GpuTooBusyError(
            f"only {free:.1f} of the GPU's {total:.1f} GiB is free: another process (the app's vLLM server?) holds "
            "the rest, so a second vLLM server cannot start. Use the running server instead (python -m evaluation: "
            "--engine openai --base_url URL; distillation: --distill_engine openai --distill_base_url URL), or "
            "stop it first."
        )
    return min(wanted, fits)


def gpu_share_beside_others(wanted: float = DEFAULT_GPU_SHARE) -> float:
    """The share for a vLLM server started now on this machine's GPU (read with nvidia-smi; `wanted` on a CPU)."""
    from common.devices import gpu_memory_gib

    return share_that_fits(wanted, gpu_memory_gib())
