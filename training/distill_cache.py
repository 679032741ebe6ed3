"""The on-disk cache of distilled thinking: one JSONL file per (thinker, sampling, budget), one line per prompt.

The file name is a hash of what decides a generation apart from the prompt (the thinker model's identity,
the sampling values, the thinking budget, the prompt style); each line is keyed by a hash of the exact
messages sent. Lines are appended and flushed as results arrive, so a killed run keeps everything it
finished and a rerun (or a second training with other settings) asks only for what is missing. Dropped
outcomes (never closed, over budget) are cached too: a rerun does not ask for them again. A torn last
line (a kill in the middle of a write) is ignored. Next to it, `<key>.json` says in words what the key is.

    cache = ThinkingCache(Path(".cache/distill"), {"model": ..., "sampling": ...})
    cache.get(messages)         # a CachedThinking or None
    cache.put(messages, CachedThinking("kept", "嗯……", 42))
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.jsonl import append_record, read_records

KEPT, NEVER_CLOSED, OVER_BUDGET = "kept", "never_closed", "over_budget"
STATUSES = (KEPT, NEVER_CLOSED, OVER_BUDGET)


@dataclass(frozen=True)
class CachedThinking:
    """One generation's outcome: `kept` (thinking closed within the budget) or why it was dropped."""

    status: str
    thinking: str = ""
    thinking_tokens: int = 0


def stable_hash(value: Any) -> str:
    """sha256 of the canonical JSON of value (sorted keys, no whitespace)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ThinkingCache:
    """Append-only JSONL cache; safe to share between the threads of one run."""

    def __init__(self, cache_dir: Path, key_material: dict[str, Any]):
        self.key = stable_hash(key_material)[:24]
        self.path = Path(cache_dir) / f"{self.key}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        describe = self.path.with_suffix(".json")
        if not describe.is_file():
            describe.write_text(json.dumps(key_material, ensure_ascii=False, indent=2), encoding="utf-8")
        self._entries = self._read()
        self._lock = threading.Lock()

    def _read(self) -> dict[str, CachedThinking]:
        entries: dict[str, CachedThinking] = {}
        for record in read_records(self.path):
            try:
                entry = CachedThinking(record["status"], record["thinking"], int(record["thinking_tokens"]))
            except (KeyError, TypeError, ValueError):
                continue  # a record of another shape
            if entry.status in STATUSES:
                entries[record["prompt"]] = entry
        return entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, messages: list[dict[str, str]]) -> CachedThinking | None:
        return self._entries.get(stable_hash(messages))

    def put(self, messages: list[dict[str, str]], entry: CachedThinking) -> None:
        """Record one outcome and flush it to disk before returning."""
        prompt = stable_hash(messages)
        with self._lock:
            append_record(self.path, {"prompt": prompt, **asdict(entry)})
            self._entries[prompt] = entry
