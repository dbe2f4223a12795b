"""Statistics of a JUICE study: majority vote, win rate with a 95 % interval, agreement levels, Fleiss' kappa."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from emu_video.juice.protocol import AGREEMENT_LEVELS, agreement_level

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def majority(votes_for_a: int, n: int) -> str:
    """'a' or 'b': the side chosen by more than half of `n` (odd) raters."""
    if n % 2 == 0:
        raise ValueError(f"the number of raters must be odd so a majority always exists, got {n}")
    if not 0 <= votes_for_a <= n:
        raise ValueError(f"votes {votes_for_a} outside 0..{n}")
    return "a" if 2 * votes_for_a > n else "b"


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} outside 0..{trials}")
    p = successes / trials
    z2 = z * z
    denom = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    # Clamp tiny rounding errors; the exact ends are 0 and 1 when p is 0 or 1.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a table `counts[i][j]` = raters putting item i in category j.

    Every item must have the same number of raters n >= 2. Returns None when kappa is undefined: no items,
    or every rating in the same category (chance agreement is then 1).
    """
    rows = [list(map(int, r)) for r in counts]
    if not rows:
        return None
    k = len(rows[0])
    n = sum(rows[0])
    if n < 2:
        raise ValueError("Fleiss' kappa needs at least two raters per item")
    for r in rows:
        if len(r) != k or sum(r) != n or min(r) < 0:
            raise ValueError("every item needs the same number of raters and categories, with counts >= 0")
    n_items = len(rows)
    p_bar = sum((sum(c * c for c in r) - n) / (n * (n - 1)) for r in rows) / n_items
    p_j = [sum(r[j] for r in rows) / (n_items * n) for j in range(k)]
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def agreement_counts(votes_for_a: Sequence[int], n: int) -> dict[str, int]:
    """How many items reached complete, partial and split agreement."""
    c = Counter(agreement_level(v, n) for v in votes_for_a)
    return {level: c.get(level, 0) for level in AGREEMENT_LEVELS}


def binary_kappa(votes_for_a: Sequence[int], n: int) -> float | None:
    """Fleiss' kappa for two categories (system A, system B) from the A-vote count of each item."""
    return fleiss_kappa([(v, n - v) for v in votes_for_a])
