"""Two users exporting at the same moment each get their own conversation (exports share one folder).

The page writes exports into one folder for all sessions and Gradio serves the returned path; a name that
two sessions can both produce would hand one user the other's conversation.

    .venv/bin/python -m pytest tests/app/test_export_isolation.py
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from app.conversation import new_exchange
from app.export import write_export


@pytest.mark.parametrize("kind", ["json", "md"])
def test_same_second_exports_of_two_sessions_do_not_overwrite_each_other(tmp_path: Path, kind: str) -> None:
    alice = [new_exchange("alice's secret question", {"left": "tiny", "right": "huanhuan"}, now=0.0)]
    bob = [new_exchange("bob's question", {"left": "tiny", "right": "huanhuan"}, now=0.0)]
    second = int(time.time())
    while int(time.time()) == second:  # start at the beginning of a second: both land in the same one
        time.sleep(0.01)
    alice_path = write_export(alice, {}, tmp_path, kind)
    bob_path = write_export(bob, {}, tmp_path, kind)
    assert alice_path != bob_path
    assert "alice's secret question" in alice_path.read_text(encoding="utf-8")
    assert "alice" not in bob_path.read_text(encoding="utf-8")


def test_an_export_folder_outside_the_working_and_temp_folders_is_offered_as_a_copy(tmp_path: Path) -> None:
    """Gradio 6.31 refuses to serve a returned file outside the working directory and the temp folder: with
    `--export-dir /data/exports` both Export buttons failed although the files were written."""
    import tempfile

    from gradio.utils import is_allowed_file  # what Gradio 6.31 asks of every file a handler returns

    from app.export import downloadable

    outside = Path("/var/tmp") / f"hh-export-test-{tmp_path.name}"
    outside.mkdir(exist_ok=True)
    try:
        written = write_export([new_exchange("问", {"left": "tiny", "right": "huanhuan"}, now=0.0)], {}, outside, "md")
        roots = [tempfile.gettempdir(), str(Path.cwd())]
        assert not is_allowed_file(written, [], roots, [])[0], "the test's folder must be one Gradio refuses"
        (offered,) = downloadable([written])
        assert is_allowed_file(Path(offered), [], roots, [])[0] and Path(offered).read_text() == written.read_text()
        assert written.is_file(), "the export stays where it was asked for"
        assert downloadable([tmp_path / "inside.json"]) == [str((tmp_path / "inside.json").resolve())]
    finally:
        shutil.rmtree(outside, ignore_errors=True)
