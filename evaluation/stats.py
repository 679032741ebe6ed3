"""Paired bootstrap: the mean of each side, their difference and a 95% interval for it.

Rows are resampled with replacement (the same rows for both sides, which is what makes it paired); the
interval is the 2.5th and 97.5th percentile of the resampled mean differences. Seeded: the same scores
give the same interval. Below MIN_VERDICT_ROWS rows the percentile interval is too narrow to trust (one row's
difference is its own interval), so no difference is called significant there.

For a 0/1 score (a marker present, thinking closed) the percentile interval of a few changed rows is still too
narrow: 4 rows that all changed one way out of 10 give an interval excluding zero, while the chance of that
under "no effect" is 1 in 8. `sign_test_p` is the exact two-sided sign test on the rows that changed
(McNemar's exact test for paired 0/1 scores); the report calls such a difference only when it is under 0.05 too.
"""

from __future__ import annotations

import math
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


SIGN_TEST_LEVEL = 0.05


def sign_test_p(base: Sequence[float], adapter: Sequence[float]) -> float:
    """Two-sided exact sign test over the rows whose score changed: the chance, if a change were as likely either
    way, of changes at least this lopsided. 1.0 when no row changed."""
    ups = sum(b > a for a, b in zip(base, adapter, strict=True))
    downs = sum(b < a for a, b in zip(base, adapter, strict=True))
    changed = ups + downs
    if changed == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(min(ups, downs) + 1)) / 2**changed
    return min(1.0, 2 * tail)
