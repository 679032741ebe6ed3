"""Blind votes on disk and the adapter's win rate with a Wilson 95% interval. No Gradio here.

    store = VoteStore(Path("data/votes"))
    store.append({"vote": "left", "prompt": "...", "left": {"model": "huanhuan", "weights_sha256": "9f..", ...},
                  "right": {...}, "seed": 0})
    rate = win_rate(store.load(), "huanhuan@2", "9f..")  # wins, losses, ties and both-bad apart, Wilson interval

A side's `weights_sha256` (serving.protocol.served_weights: the weights its served name was loaded from) is
what counts: a vote for `huanhuan` counts for `huanhuan@2` when both served the same weights (a Reload), and
not once the adapter was trained again. Votes without it (older ones, a server that does not say) count by
name.

One JSON line per vote in `<votes dir>/votes.jsonl`, appended and fsynced (common.jsonl), so the votes
survive a restart; a line cut by a crash is skipped when reading and never costs the vote after it. Ties and
"both bad" are reported apart and are NOT counted in the win rate: win rate = wins / (wins + losses) over the
votes where the adapter faced another model.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.jsonl import append_record, read_records

VOTES_FILE = "votes.jsonl"
VOTES = ("left", "right", "tie", "both_bad")  # left better, right better, tie, both bad
Z_95 = 1.959963984540054


def wilson_interval(wins: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion wins/n (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = wins / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


class VoteStore:
    """Append-only JSONL of votes, shared by every session of the app (thread-safe)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / VOTES_FILE
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store one vote (`vote` must be one of VOTES); returns the record as written (with its time)."""
        if record.get("vote") not in VOTES:
            raise ValueError(f"a vote must be one of {', '.join(VOTES)}, got {record.get('vote')!r}")
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
        with self._lock:
            append_record(self.path, record)
        return record

    def load(self) -> list[dict[str, Any]]:
        """Every complete vote, oldest first."""
        return [record for record in read_records(self.path) if record.get("vote") in VOTES]


@dataclass(frozen=True)
class WinRate:
    """The adapter's record against other models in blind votes; `rate` and the interval leave ties out."""

    adapter: str
    wins: int
    losses: int
    ties: int
    both_bad: int

    @property
    def decided(self) -> int:
        return self.wins + self.losses

    @property
    def rate(self) -> float | None:
        return self.wins / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.wins, self.decided)

    def describe(self) -> str:
        """One Markdown line for the Evaluate summary."""
        total = self.decided + self.ties + self.both_bad
        if total == 0:
            return f"Blind votes for `{self.adapter}`: none yet (turn on Blind mode in the Chat tab)."
        apart = f"{self.ties} tie(s) and {self.both_bad} 'both bad' are reported apart, not counted"
        if self.rate is None:
            return f"Blind votes for `{self.adapter}`: {total} vote(s), no decided one; {apart}."
        low, high = self.interval
        return (f"Blind votes for `{self.adapter}`: {self.wins} win(s), {self.losses} loss(es): win rate "
                f"{self.rate:.0%} (Wilson 95% interval {low:.0%} to {high:.0%}); {apart}.")  # fmt: skip


def win_rate(votes: list[dict[str, Any]], adapter: str, weights_sha256: str = "") -> WinRate:
    """Tally the votes where `adapter` (these weights, when given) was on one side and another model on the
    other."""
    counts = {"win": 0, "loss": 0, "tie": 0, "both_bad": 0}
    for vote in votes:
        sides = {side: vote.get(side) or {} for side in ("left", "right")}
        ours = {side: _is_adapter(reply, adapter, weights_sha256) for side, reply in sides.items()}
        if ours["left"] == ours["right"]:  # neither side, or both sides the same model
            continue
        choice = vote["vote"]
        if choice in ("tie", "both_bad"):
            counts[choice] += 1
        else:
            counts["win" if ours[choice] else "loss"] += 1
    return WinRate(adapter, counts["win"], counts["loss"], counts["tie"], counts["both_bad"])


def _is_adapter(reply: dict[str, Any], adapter: str, weights_sha256: str) -> bool:
    """Was this side of a vote `adapter`: the same weights when both are known, else the same served name."""
    recorded = reply.get("weights_sha256") or ""
    if weights_sha256 and recorded:
        return recorded == weights_sha256
    return reply.get("model") == adapter
