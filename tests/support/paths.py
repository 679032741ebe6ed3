"""Where the tests find the repository, its cache and the real dataset (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

CACHE_DIR = REPO_ROOT / ".cache"


def dataset_path() -> Path:
    """Where the real huanhuan.json is: $HUANHUAN_DATASET, Datasets/, or ../shared/datasets/."""
    candidates = [
        os.environ.get("HUANHUAN_DATASET", ""),
        REPO_ROOT / "Datasets" / "huanhuan.json",
        REPO_ROOT.parent / "shared" / "datasets" / "huanhuan.json",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("huanhuan.json not found: set HUANHUAN_DATASET or see Datasets/README.md")
