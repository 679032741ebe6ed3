"""One home for hashing a file's content (a dataset, an adapter's weights), read in 1 MiB blocks.

file_sha256(Path("Models/adapters/huanhuan/adapter_model.safetensors"))   # 64 hex digits
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
