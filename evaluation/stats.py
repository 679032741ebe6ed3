"""Paired bootstrap: the mean of each side, their difference and a 95% interval for it.

Rows are resampled with replacement (the same rows for both sides, which is what makes it paired); the
interval is the 2.5th and 97.5th percentile of the resampled mean differences. Seeded: the same scores
give the same interval. Below MIN_VERDICT_ROWS rows the percentile interval is too narrow to trust (one row's
difference is its own interval), so no difference is called significant there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

MIN_VERDICT_ROWS = 10


@dataclass(frozen=True)
class Paired:
    """base and adapter means, adapter - base, and the bootstrap interval of that difference."""

    base: float
    adapter: float
    diff: float
    low: float
    high: float
    n: int
    base_interval: tuple[float, float] = (0.0, 0.0)  # each side's own 95% interval of its mean (for charts)
    adapter_interval: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def significant(self) -> bool:
        """The interval excludes zero, over at least MIN_VERDICT_ROWS rows."""
        return self.n >= MIN_VERDICT_ROWS and (self.low > 0 or self.high < 0)


def paired_bootstrap(
    base: Sequence[float], adapter: Sequence[float], samples: int = 2000, seed: int = 0, level: float = 0.95
) -> Paired:
    import numpy as np

    if len(base) != len(adapter):
        raise ValueError(f"paired scores need the same rows on both sides ({len(base)} vs {len(adapter)})")
    if not base:
        raise ValueError("no rows to compare")
    a, b = np.asarray(base, dtype=float), np.asarray(adapter, dtype=float)
    diffs = b - a
    picks = np.random.default_rng(seed).integers(0, len(diffs), size=(samples, len(diffs)))
    tail = (1 - level) / 2 * 100

    def interval(values) -> tuple[float, float]:
        low, high = np.percentile(values[picks].mean(axis=1), [tail, 100 - tail])
        return float(low), float(high)

    low, high = interval(diffs)
    means = float(a.mean()), float(b.mean()), float(diffs.mean())
    return Paired(*means, low, high, len(diffs), interval(a), interval(b))
