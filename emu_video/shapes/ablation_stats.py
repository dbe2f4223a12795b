"""Statistics of an ablation on Shapes World: rates with 95 % Wilson intervals, means with bootstrap intervals,
and the paired win rate of two arms judged on the same (prompt, seed) items, in JUICE's form.

A paired comparison gives each item to the arm with the better score (ties counted apart). JUICE's raters
always pick one side, so its win rate is wins / decided items with a Wilson interval; with an automatic judge
many items tie (both faithful, or both not), so the tie-inclusive rate (wins + ties / 2) / items is reported
too, with an interval from a bootstrap over items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emu_video.juice.stats import wilson_interval

BOOTSTRAP_RESAMPLES = 10_000


def rate(successes: Sequence[bool]) -> dict:
    """The share of true values, with its 95 % Wilson interval."""
    n, k = len(successes), int(sum(bool(s) for s in successes))
    low, high = wilson_interval(k, n)
    return {"n": n, "k": k, "rate": k / n if n else None, "ci95": [low, high]}


def bootstrap_mean(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """The mean of `values` with a 95 % percentile-bootstrap interval (resampling the items)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": None, "ci95": [None, None]}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": int(x.size), "mean": float(x.mean()), "ci95": [float(low), float(high)]}


def compare(a, b) -> int:
    """1 when score `a` is better, -1 when `b` is, 0 for a tie (scores are numbers or tuples of numbers)."""
    return (a > b) - (a < b)


def paired_win_rate(scores_a: Sequence, scores_b: Sequence, resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = 0) -> dict:
    """How often arm A beats arm B on the same items (higher score wins; scores may be tuples, compared in
    order). Returns wins, losses, ties; JUICE's win rate wins / (wins + losses) with its Wilson interval;
    and the tie-inclusive win rate (wins + ties / 2) / items with a bootstrap interval over items."""
    if len(scores_a) != len(scores_b):
        raise ValueError(f"paired scores need the same items: {len(scores_a)} against {len(scores_b)}")
    outcome = np.array([compare(a, b) for a, b in zip(scores_a, scores_b)], dtype=np.float64)
    wins, losses = int((outcome > 0).sum()), int((outcome < 0).sum())
    ties, n = len(outcome) - wins - losses, len(outcome)
    low, high = wilson_interval(wins, wins + losses)
    points = (outcome + 1.0) / 2.0  # 1 win, 0.5 tie, 0 loss
    with_ties = bootstrap_mean(points, resamples, seed)
    return {
        "items": n, "wins": wins, "losses": losses, "ties": ties,
        "win_rate": wins / (wins + losses) if wins + losses else None, "win_rate_ci95": [low, high],
        "win_rate_with_ties": with_ties["mean"], "win_rate_with_ties_ci95": with_ties["ci95"],
    }
