"""Replace a file whole: write a uniquely named temporary file beside it, then rename it over the target.

A reader never sees a half-written file, a crash leaves the old one in place, and two writers at once (two
browser sessions, the app and a CLI run) each rename a complete file of their own: the last one wins, neither
fails.

    write_json_atomic(Path("jobs/1/state.json"), {"status": "running"})
    with replaced_file(Path("eval/chart.png")) as temporary:
        figure.savefig(temporary)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replaced_file(path: Path) -> Iterator[Path]:
    """A temporary path to write; when the block ends without an error it replaces `path`, else it is removed."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(0o644)  # mkstemp makes it 0600; the file replaced was readable by others
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with replaced_file(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2))
