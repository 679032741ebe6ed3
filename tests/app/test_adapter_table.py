"""The adapters table shows how each adapter's training treated the thinking, as its metrics.json records it."""

from __future__ import annotations

import json
from pathlib import Path

from app.adapter_panel import TABLE_HEADERS, panel_values
from app.config import AppArgs
from tests.app.fake_engine import FakeEngine


def adapter_folder(root: Path, name: str, metrics: dict | None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return folder


def test_thinking_column_shows_the_recorded_mode(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    adapter_folder(adapters, "distilled", {"thinking_mode": "distill/blind", "final_eval_loss": 1.5})
    adapter_folder(adapters, "plain", {"thinking_mode": "empty"})
    adapter_folder(adapters, "old", {"final_eval_loss": 2.0})  # trained before the mode was recorded
    engine = FakeEngine(adapters_dir=adapters)  # the table comes from the serving side's answer
    rows, *_ = panel_values(engine, AppArgs(), None, "", None, None)
    column = TABLE_HEADERS.index("thinking")
    assert {row[0]: row[column] for row in rows} == {"distilled": "distill/blind", "plain": "empty", "old": ""}
    assert rows[0][TABLE_HEADERS.index("eval loss")] == "1.5000"


def test_a_served_adapter_trained_again_on_disk_says_a_reload_serves_it(tmp_path: Path) -> None:
    from app.adapter_panel import CHANGED_ON_DISK, table_row
    from serving.protocol import AdapterStatus

    column = TABLE_HEADERS.index("served as")
    assert table_row(AdapterStatus("huanhuan", served_as="huanhuan"))[column] == "huanhuan"
    changed = AdapterStatus("huanhuan", served_as="huanhuan", changed_on_disk=True)
    assert table_row(changed)[column] == "huanhuan" + CHANGED_ON_DISK and "Reload" in CHANGED_ON_DISK
