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
        if not self.path.is_file():
            return entries
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                entry = CachedThinking(record["status"], record["thinking"], int(record["thinking_tokens"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a torn last line from a killed run
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
        line = json.dumps({"prompt": prompt, **asdict(entry)}, ensure_ascii=False)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as file:
                if file.tell() > 0 and not self._ends_with_newline():
                    file.write("\n")  # a torn line from a killed run stays on its own line
                file.write(line + "\n")
                file.flush()
            self._entries[prompt] = entry

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as file:
            file.seek(-1, 2)
            return file.read(1) == b"\n"
