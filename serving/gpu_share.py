"""The GPU share (`--gpu-memory-utilization`) a vLLM server started by a command asks, beside other servers.

`python -m evaluation` and distillation's thinker start their own vLLM. vLLM refuses to start when the share
it asks is more than the card has free, so a fixed 0.85 fails beside the app's server (launch.sh's 0.85). The
share asked is the default, or what is free now less a little headroom, whichever is smaller; when even that
cannot hold the model's weights, vLLM's own working memory and a minimal KV cache, GpuTooBusyError says so
before vLLM is started:

    share_that_fits(0.85, (40.0, 80.0), need_gib=9.0)   # 0.48: 40 GiB free of 80, less 1.5 GiB
"""

from __future__ import annotations

import math
from pathlib import Path

from serving.protocol import EngineUnavailableError

DEFAULT_GPU_SHARE = 0.85  # what vLLM gets when it has the card to itself (ServeArgs' default)
HEADROOM_GIB = 1.5  # left free beside the server: CUDA contexts of the command itself, allocator slack
KV_CACHE_MIN_GIB = 1.0  # the least KV cache worth starting a server with
# vLLM's own memory besides its weights and KV cache: the CUDA context and library buffers ("non_torch_memory"), the
# activation peak of its start-up profiling run ("PyTorch activation peak memory"; both in vLLM's start-up log)
# and the CUDA graphs it captures. The logs quoted in vllm-project/vllm#10511 (Llama-3-8B, H100: 1.79 + 1.26 GiB)
# and #14447 (0.20 + 0.37 GiB) bracket it; 1.5 GiB for a 4B model is an estimate, not measured in this project.
VLLM_NON_KV_GIB = 1.5
MIN_GPU_SHARE = 0.05
GIB_PER_GB = 1e9 / 2**30


class GpuTooBusyError(EngineUnavailableError):
    """The card is too full for another vLLM server; the message says what holds it and what to do."""


def share_that_fits(
    wanted: float, reading: tuple[float, float] | None, need_gib: float = 0.0, beside_gib: float = 0.0
) -> float:
    """`wanted`, or less when `reading` ((free, total) GiB; None: no GPU) says the card is partly held.

    `need_gib`: the least the server needs (its weights, vLLM's non-KV memory and a minimal KV cache);
    `beside_gib`: what the command itself will load on the card besides the server (a reference model).
    GpuTooBusyError when it cannot fit."""
    if reading is None:
        return wanted
    free, total = reading
    if total <= 0:
        return wanted
    fits = math.floor((free - HEADROOM_GIB - beside_gib) / total * 100) / 100
    if fits < MIN_GPU_SHARE or fits * total < need_gib:
        beside = f" and {beside_gib:.1f} GiB for the command's own model" if beside_gib else ""
        raise GpuTooBusyError(
            f"only {free:.1f} of the GPU's {total:.1f} GiB is free, and a vLLM server needs about {need_gib:.1f} "
            f"GiB (weights, vLLM's own working memory and a minimal KV cache){beside}: another process (the app's "
            "vLLM server?) holds the rest. Use the running server instead (python -m evaluation: --engine openai "
            "--base_url URL; distillation: --distill_engine openai --distill_base_url URL), or stop it first."
        )
    return min(wanted, fits)


def gpu_share_beside_others(
    model_dir: Path, wanted: float = DEFAULT_GPU_SHARE, in_process_model: Path | None = None
) -> float:
    """The share for a vLLM server of `model_dir` started now on this machine's GPU (read with nvidia-smi;
    `wanted` on a CPU). `in_process_model`: a model the command loads on the card itself, beside the server."""
    from common.devices import gpu_memory_gib, weights_size_gb

    need = weights_size_gb(model_dir) * GIB_PER_GB + VLLM_NON_KV_GIB + KV_CACHE_MIN_GIB
    beside = weights_size_gb(in_process_model) * GIB_PER_GB if in_process_model else 0.0
    return share_that_fits(wanted, gpu_memory_gib(), need, beside)
