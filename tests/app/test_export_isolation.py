"""Two users exporting at the same moment each get their own conversation (exports share one folder).

The page writes exports into one folder for all sessions and Gradio serves the returned path; a name that
two sessions can both produce would hand one user the other's conversation.

    .venv/bin/python -m pytest tests/app/test_export_isolation.py
"""

from __future__ import annotations

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
