"""What this machine's GPU can do for torch: one home for "is CUDA usable?" and "is bf16 native?".

Facts are gathered once (`probe()`: nvidia-smi and the installed torch) into plain dataclasses, and every
decision is a pure function of those facts, so an old driver or an old card can be simulated in tests.

    from common.devices import probe, cuda_verdict
    verdict = cuda_verdict(probe())      # Verdict(usable=False, reason="no NVIDIA GPU found (nvidia-smi ...)")
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# The oldest Linux driver each CUDA major version of torch runs on (CUDA's minor-version compatibility:
# any 12.x build runs on a driver >= 525.60.13, any 13.x build on >= 580.65.06).
MIN_DRIVER_FOR_CUDA_MAJOR = {12: (525, 60, 13), 13: (580, 65, 6)}
CPU_FRIENDLY_WEIGHTS_GB = 2.0  # Qwen3-0.6B (1.5 GB in bf16) runs on a CPU; a 4B model (8 GB) takes days to train
NATIVE_BF16_CAPABILITY = (8, 0)  # Ampere and newer; older cards (T4, RTX 20xx, V100) only emulate bf16


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str  # e.g. "580.82.07"
    capability: tuple[int, int]  # e.g. (9, 0) for an H100
    memory_gib: float
    free_gib: float = 0.0  # free as of the query (nvidia-smi's memory.free: what every process leaves)


@dataclass(frozen=True)
class TorchFacts:
    version: str = ""  # "" when torch is not installed
    cuda_build: str = ""  # torch.version.cuda, e.g. "13.0"; "" for a CPU build
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(), e.g. ("sm_75", "sm_80", ...)
    cuda_available: bool = False
    cuda_error: str = ""  # why torch.cuda.is_available() is False, when torch says


@dataclass(frozen=True)
class MachineFacts:
    gpus: tuple[Gpu, ...] = ()
    torch: TorchFacts = field(default_factory=TorchFacts)
    nvidia_smi_error: str = ""  # why no GPU was listed ("" when nvidia-smi answered)

    @property
    def gpu(self) -> Gpu | None:
        """The GPU torch and vLLM compute on (cuda:0): the one every check judges (visible_gpu)."""
        return visible_gpu(self.gpus)


@dataclass(frozen=True)
class Verdict:
    usable: bool
    reason: str


def version_tuple(text: str) -> tuple[int, ...]:
    """ "580.65.06" -> (580, 65, 6); non-numeric parts end the tuple."""
    parts = []
    for part in text.strip().split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def min_build_capability(arch_list: tuple[str, ...]) -> tuple[int, int] | None:
    """The oldest compute capability torch's CUDA build has kernels for ("sm_75" -> (7, 5))."""
    capabilities = []
    for arch in arch_list:
        digits = arch.removeprefix("sm_").removeprefix("compute_").rstrip("afx")
        if digits.isdigit() and len(digits) >= 2:
            capabilities.append((int(digits[:-1]), int(digits[-1])))
    return min(capabilities) if capabilities else None


def cuda_verdict(facts: MachineFacts, gpu: Gpu | None = None) -> Verdict:
    """Can the installed torch compute on `gpu` (default: the one this run sees, facts.gpu)? The reason names the
    first obstacle."""
    gpu, torch = gpu or facts.gpu, facts.torch
    if gpu is None:
        return Verdict(False, f"no NVIDIA GPU found ({facts.nvidia_smi_error or no_gpu_listed(facts)})")
    if not torch.version:
        return Verdict(False, "torch is not installed (run scripts/install.sh)")
    if not torch.cuda_build:
        return Verdict(False, f"torch {torch.version} is a CPU build; scripts/install.sh installs the CUDA one")
    floor = MIN_DRIVER_FOR_CUDA_MAJOR.get(version_tuple(torch.cuda_build)[0])
    if floor and version_tuple(gpu.driver) < floor:
        return Verdict(
            False,
            f"NVIDIA driver {gpu.driver} is older than {'.'.join(map(str, floor))}, which torch {torch.version} "
            f"(CUDA {torch.cuda_build}) needs: update the driver",
        )
    oldest = min_build_capability(torch.arch_list)
    if oldest and gpu.capability < oldest:
        return Verdict(
            False,
            f"{gpu.name} has compute capability {gpu.capability[0]}.{gpu.capability[1]}; torch {torch.version} "
            f"(CUDA {torch.cuda_build}) supports {oldest[0]}.{oldest[1]} and newer",
        )
    if not torch.cuda_available:
        return Verdict(
            False, f"torch cannot use {gpu.name}: {torch.cuda_error or 'torch.cuda.is_available() is False'}"
        )
    return Verdict(True, f"{gpu.name}, driver {gpu.driver}, torch {torch.version} (CUDA {torch.cuda_build})")


def native_bf16(gpu: Gpu) -> bool:
    """True where bf16 runs in hardware (compute capability >= 8.0); emulated bf16 does not count."""
    return gpu.capability >= NATIVE_BF16_CAPABILITY


GPU_FIELDS = "name,driver_version,compute_cap,memory.total,memory.free"
OLD_DRIVER_GPU_FIELDS = "name,driver_version,memory.total,memory.free"  # nvidia-smi before compute_cap (R470)


def query_gpus() -> tuple[tuple[Gpu, ...], str]:
    """(GPUs listed by nvidia-smi, error): the error says why none were listed. An nvidia-smi too old to know
    `compute_cap` is asked again without it, so the verdict names its driver (too old) rather than no GPU."""
    if not shutil.which("nvidia-smi"):
        return (), "nvidia-smi not found"
    done, error = _nvidia_smi(GPU_FIELDS)
    if done is not None and done.returncode != 0 and "compute_cap" in (done.stderr + done.stdout):
        older, _ = _nvidia_smi(OLD_DRIVER_GPU_FIELDS)
        if older is not None and older.returncode == 0:
            return parse_nvidia_smi(_with_unknown_capability(older.stdout)), ""
    if done is None:
        return (), error
    if done.returncode != 0:
        return (), f"nvidia-smi failed: {(done.stderr or done.stdout).strip()[:200]}"
    return parse_nvidia_smi(done.stdout), ""


def _nvidia_smi(fields: str) -> tuple[subprocess.CompletedProcess | None, str]:
    try:
        command = ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
        return subprocess.run(command, capture_output=True, text=True, timeout=30), ""
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"nvidia-smi failed: {error}"


def _with_unknown_capability(csv_text: str) -> str:
    """OLD_DRIVER_GPU_FIELDS lines with an unknown compute capability (0.0) put where GPU_FIELDS has it."""
    lines = []
    for line in csv_text.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        lines.append(", ".join([*parts[:2], "0.0", *parts[2:]]))
    return "\n".join(lines)


def parse_nvidia_smi(csv_text: str) -> tuple[Gpu, ...]:
    """Parse `nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total[,memory.free]
    --format=csv,noheader,nounits`."""
    gpus = []
    for line in csv_text.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) not in (4, 5):
            continue
        name, driver, capability, memory_mib, *free_mib = parts
        major, _, minor = capability.partition(".")
        cap = (int(major), int(minor or 0)) if major.isdigit() else (0, 0)
        gpus.append(Gpu(name=name, driver=driver, capability=cap, memory_gib=_gib(memory_mib),
                        free_gib=_gib(free_mib[0]) if free_mib else 0.0))  # fmt: skip
    return tuple(gpus)


def _gib(mib: str) -> float:
    return round(float(mib) / 1024, 1) if mib.replace(".", "", 1).isdigit() else 0.0


def no_gpu_listed(facts: MachineFacts) -> str:
    """Why there is no GPU to judge although nvidia-smi answered."""
    if not facts.gpus:
        return "nvidia-smi listed none"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"CUDA_VISIBLE_DEVICES={visible} names none of the {len(facts.gpus)} GPUs nvidia-smi listed"


def visible_gpu(gpus: tuple[Gpu, ...]) -> Gpu | None:
    """The GPU torch calls cuda:0: the first of CUDA_VISIBLE_DEVICES when it names an index, the first listed
    when it is unset or names a UUID (nvidia-smi's order; launch.sh sets CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA
    counts the same way), and none when it is empty or starts with anything else (`-1`): CUDA then sees no GPU,
    the usual way to keep a run on the CPU."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus[0] if gpus else None
    first = visible.split(",")[0].strip()
    if first.isdigit():
        return gpus[int(first)] if int(first) < len(gpus) else None
    if first.startswith(("GPU-", "MIG-")):
        return gpus[0] if gpus else None
    return None


def torch_facts() -> TorchFacts:
    """What the installed torch says about CUDA (never raises; a missing torch gives empty facts)."""
    try:
        import torch
    except ImportError:
        return TorchFacts()
    cuda_build = torch.version.cuda or ""
    if not cuda_build:
        return TorchFacts(version=torch.__version__)
    error = ""
    try:
        available = bool(torch.cuda.is_available())
    except Exception as failure:
        available, error = False, str(failure)
    return TorchFacts(torch.__version__, cuda_build, tuple(torch.cuda.get_arch_list()), available, error)


def probe() -> MachineFacts:
    gpus, error = query_gpus()
    return MachineFacts(gpus=gpus, torch=torch_facts(), nvidia_smi_error=error)


def gpu_memory_gib() -> tuple[float, float] | None:
    """(free, total) GiB of the GPU torch and vLLM would run on, free as of now; None without a usable GPU.

    Read with nvidia-smi, not torch: asking torch would open a CUDA context, and the app (which asks before
    Start) would then hold a few hundred MiB of the card beside vLLM for the rest of its life."""
    facts = probe()
    gpu = facts.gpu
    if not cuda_verdict(facts).usable or gpu is None:
        return None
    return gpu.free_gib, gpu.memory_gib


@lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """The one check the rest of the project asks: will torch (and the CUDA vLLM build) run on a GPU here?"""
    return cuda_verdict(probe()).usable


def auto_precision(facts: MachineFacts) -> tuple[str, str]:
    """(precision, why) for `precision: auto`: bf16 only where native, fp16 with loss scaling on older GPUs."""
    verdict = cuda_verdict(facts)
    if not verdict.usable:
        return "fp32", f"no usable GPU ({verdict.reason}): fp32 on the CPU"
    gpu = facts.gpu
    assert gpu is not None  # a usable verdict has one
    cap = f"{gpu.capability[0]}.{gpu.capability[1]}"
    if native_bf16(gpu):
        return "bf16", f"{gpu.name} (compute capability {cap}) has native bf16"
    return "fp16", f"{gpu.name} (compute capability {cap}) only emulates bf16: fp16 with loss scaling"


def inference_placement(facts: MachineFacts) -> tuple[str, str]:
    """(device, dtype) for in-process generation: the GPU in bf16 (fp16 without native bf16), else the CPU."""
    if not cuda_verdict(facts).usable:
        return "cpu", "auto"  # the checkpoint's own dtype
    return "cuda", "bfloat16" if facts.gpu is not None and native_bf16(facts.gpu) else "float16"


def free_disk_gb(path: Path) -> float:
    """Free space in GB on the disk that holds `path` (or its nearest existing parent, for a folder to come)."""
    existing = next((folder for folder in (Path(path), *Path(path).parents) if folder.exists()), Path("/"))
    return shutil.disk_usage(existing).free / 1e9


def weights_size_gb(model_dir: Path) -> float:
    """Size of a model folder's safetensors weights in GB (0 when there are none)."""
    return sum(path.stat().st_size for path in Path(model_dir).glob("*.safetensors")) / 1e9
