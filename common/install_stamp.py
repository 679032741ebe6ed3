"""The stamp scripts/install.sh leaves in `.venv`: which requirement files it installed, so a rerun skips pip.

A runtime install (`bash scripts/install.sh`, what launch.sh runs) is satisfied by a runtime stamp or by a dev
stamp (`--dev`, what scripts/test.sh runs) over the same runtime files: the dev install holds everything the
runtime one does. So running the tests and then the app (or the reverse) installs nothing again and needs no
package registry. A dev install needs a dev stamp over the same files. Standard library only (it runs on the
system Python).

    python -m common.install_stamp .venv cpu          # prints: installed<TAB>.venv/.installed-cpu-...
    python -m common.install_stamp .venv cpu --dev    # prints: missing<TAB>.venv/.installed-cpu-...-dev-...
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

STAMP_PREFIX = ".installed-"
RUNTIME_FILES = ("requirements.txt", "requirements-{kind}.txt")
DEV_FILE = "requirements-dev.txt"


def _digest(files: list[Path]) -> str:
    content = b"".join(path.read_bytes() for path in files)
    return hashlib.sha256(content).hexdigest()[:16]


def stamp_path(venv: Path, kind: str, root: Path, dev: bool) -> Path:
    """The stamp an install of these requirement files (under `root`) leaves in `venv`."""
    runtime = _digest([root / name.format(kind=kind) for name in RUNTIME_FILES])
    name = f"{STAMP_PREFIX}{kind}-{runtime}"
    if dev:
        name += f"-dev-{_digest([root / DEV_FILE])}"
    return Path(venv) / name


def installed(venv: Path, kind: str, root: Path, dev: bool) -> bool:
    """Whether `venv` already holds what the install asks for (a dev stamp also satisfies a runtime install)."""
    wanted = stamp_path(venv, kind, root, dev)
    if wanted.is_file():
        return True
    return not dev and any(Path(venv).glob(f"{wanted.name}-dev-*"))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] not in ("cpu", "gpu") or argv[2:] not in ([], ["--dev"]):
        print("usage: python -m common.install_stamp VENV cpu|gpu [--dev]", file=sys.stderr)
        return 2
    venv, kind, dev = Path(argv[0]), argv[1], argv[2:] == ["--dev"]
    root = Path(__file__).resolve().parent.parent
    status = "installed" if installed(venv, kind, root, dev) else "missing"
    print(f"{status}\t{stamp_path(venv, kind, root, dev)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
