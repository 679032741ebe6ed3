"""Helpers shared by the serving tests (imported by name: tests/serving is on sys.path under pytest)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def copy_adapter(source: Path, target: Path, **config_changes) -> Path:
    """A copy of an adapter folder with some adapter_config.json fields changed."""
    shutil.copytree(source, target)
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config.update(config_changes)
    config_path.write_text(json.dumps(config))
    return target
