"""common.devices: the CUDA verdict and the precision choice, on simulated machines (old driver, old card...)."""

from __future__ import annotations

import pytest

from common.devices import (
    Gpu,
    MachineFacts,
    TorchFacts,
    auto_precision,
    cuda_verdict,
    min_build_capability,
    parse_nvidia_smi,
    visible_gpu,
)

CUDA13_TORCH = TorchFacts("2.13.0", "13.0", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), True)
H100 = Gpu("NVIDIA H100 80GB HBM3", "580.82.07", (9, 0), 79.6)
T4 = Gpu("Tesla T4", "580.82.07", (7, 5), 15.0)


def machine(gpu: Gpu | None = H100, torch: TorchFacts = CUDA13_TORCH) -> MachineFacts:
    return MachineFacts(
        gpus=(gpu,) if gpu else (), torch=torch, nvidia_smi_error="" if gpu else "nvidia-smi not found"
    )


def test_a_modern_gpu_with_a_cuda_torch_is_usable() -> None:
    verdict = cuda_verdict(machine())
    assert verdict.usable and "H100" in verdict.reason


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (machine(gpu=None), "no NVIDIA GPU found (nvidia-smi not found)"),
        (machine(torch=TorchFacts()), "torch is not installed"),
        (machine(torch=TorchFacts("2.13.0+cpu")), "torch 2.13.0+cpu is a CPU build"),
        (machine(gpu=Gpu("A10", "535.54.03", (8, 6), 24.0)), "driver 535.54.03 is older than 580.65.6"),
        (machine(gpu=Gpu("Tesla V100", "580.82.07", (7, 0), 32.0)), "compute capability 7.0; torch 2.13.0"),
        (machine(torch=TorchFacts("2.13.0", "13.0", ("sm_90",), False, "CUDA busy")), "CUDA busy"),
    ],
)
def test_each_obstacle_is_named(facts: MachineFacts, expected: str) -> None:
    verdict = cuda_verdict(facts)
    assert not verdict.usable
    assert expected in verdict.reason


def test_a_cuda_12_torch_runs_on_an_older_driver() -> None:
    torch12 = TorchFacts("2.9.1", "12.8", ("sm_50", "sm_80", "sm_90"), True)
    assert cuda_verdict(machine(gpu=Gpu("A10", "535.54.03", (8, 6), 24.0), torch=torch12)).usable


@pytest.mark.parametrize(
    ("gpu", "precision"), [(H100, "bf16"), (Gpu("A10", "580.82.07", (8, 6), 24.0), "bf16"), (T4, "fp16")]
)
def test_auto_precision_picks_bf16_only_where_it_is_native(gpu: Gpu, precision: str) -> None:
    chosen, why = auto_precision(machine(gpu=gpu))
    assert chosen == precision
    assert gpu.name in why


def test_auto_precision_without_a_usable_gpu_is_fp32_and_says_why() -> None:
    chosen, why = auto_precision(machine(gpu=Gpu("A10", "470.1", (8, 6), 24.0)))
    assert chosen == "fp32"
    assert "driver 470.1 is older" in why


def test_nvidia_smi_csv_is_parsed() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 580.82.07, 9.0, 81559\nTesla T4, 535.104.05, 7.5, 15360\n")
    assert gpus == (
        Gpu("NVIDIA H100 80GB HBM3", "580.82.07", (9, 0), 79.6),
        Gpu("Tesla T4", "535.104.05", (7, 5), 15.0),
    )


def test_free_memory_is_read_from_nvidia_smi_and_the_visible_gpu_is_cuda_0(monkeypatch) -> None:
    gpus = parse_nvidia_smi(
        "NVIDIA H100 80GB HBM3, 580.82.07, 9.0, 81559, 8192\nTesla T4, 535.104.05, 7.5, 15360, 15000\n"
    )
    assert (gpus[0].memory_gib, gpus[0].free_gib) == (79.6, 8.0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    assert visible_gpu(gpus) == gpus[1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5f3c")  # a UUID: the first listed
    assert visible_gpu(gpus) == gpus[0]
    for hidden in ("", "-1"):  # CUDA sees no GPU
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert visible_gpu(gpus) is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpu(gpus) == gpus[0]


def test_the_oldest_architecture_of_a_torch_build() -> None:
    assert min_build_capability(("sm_90", "sm_75", "sm_100a", "sm_120")) == (7, 5)
    assert min_build_capability(()) is None


@pytest.mark.parametrize(
    ("facts", "placement"),
    [(machine(), ("cuda", "bfloat16")), (machine(gpu=T4), ("cuda", "float16")), (machine(gpu=None), ("cpu", "auto"))],
)
def test_local_generation_runs_on_a_usable_gpu_in_its_best_half_precision(facts, placement) -> None:
    from common.devices import inference_placement

    assert inference_placement(facts) == placement


def test_local_engine_fills_in_auto_from_the_machine(monkeypatch) -> None:
    from common import devices
    from serving.local_engine import resolve_placement

    monkeypatch.setattr(devices, "probe", lambda: machine(gpu=T4))
    assert resolve_placement("auto", "auto") == ("cuda", "float16")
    assert resolve_placement("cpu", "auto") == ("cpu", "auto"), "a device asked for keeps the checkpoint's dtype"
    assert resolve_placement("auto", "float32") == ("cuda", "float32")


def test_an_nvidia_smi_too_old_for_compute_cap_still_names_its_driver(monkeypatch) -> None:
    """R470's nvidia-smi rejects the `compute_cap` field: the GPU is still found, and its driver is the reason."""
    import subprocess

    import common.devices as devices

    def nvidia_smi(command, **kwargs):
        if "compute_cap" in command[1]:
            return subprocess.CompletedProcess(command, 2, "", 'Field "compute_cap" is not a valid field to query.')
        return subprocess.CompletedProcess(command, 0, "Tesla V100-SXM2-32GB, 470.256.02, 32510, 32000\n", "")

    monkeypatch.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(devices.subprocess, "run", nvidia_smi)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus, error = devices.query_gpus()
    assert error == "" and [(gpu.name, gpu.driver, gpu.memory_gib) for gpu in gpus] == [
        ("Tesla V100-SXM2-32GB", "470.256.02", 31.7)
    ]
    torch = devices.TorchFacts("2.13.0", "13.0", ("sm_75", "sm_90"), False)
    verdict = devices.cuda_verdict(devices.MachineFacts(gpus=gpus, torch=torch))
    assert not verdict.usable and "NVIDIA driver 470.256.02 is older than 580.65.6" in verdict.reason
