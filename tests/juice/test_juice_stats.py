"""Fleiss' kappa, agreement levels, majority and Wilson intervals against hand-computed values."""

import math
import random

import pytest

from emu_video.juice.protocol import agreement_level
from emu_video.juice.stats import (
    agreement_counts,
    binary_kappa,
    fleiss_kappa,
    majority,
    wilson_interval,
)


def test_kappa_always_complete_is_one():
    # 5|0 on every item, both systems winning some items: observed agreement 1 -> kappa 1.
    assert binary_kappa([5, 0, 5, 0, 5, 0], 5) == pytest.approx(1.0)
    assert binary_kappa([5, 5, 5, 0], 5) == pytest.approx(1.0)


def test_kappa_always_split_is_minus_point_two():
    # Paper's lower bound (simulation of 304 tasks x 5 raters): always 3|2, balanced between the systems.
    # P_i = (3*2 + 2*1) / (5*4) = 0.4 for every item; p_A = p_B = 0.5 so P_e = 0.5; kappa = (0.4-0.5)/0.5.
    votes = [3, 2] * 152
    assert len(votes) == 304
    assert binary_kappa(votes, 5) == pytest.approx(-0.2)


def test_kappa_always_split_same_side():
    # Always 3|2 for A: p_A = 0.6, P_e = 0.36 + 0.16 = 0.52; kappa = (0.4 - 0.52) / 0.48 = -0.25.
    assert binary_kappa([3] * 10, 5) == pytest.approx(-0.25)


def test_kappa_mixed_by_hand():
    # Items 5|0, 4|1, 3|2, 0|5:
    # P_i = 1, (16+1-5)/20 = 0.6, (9+4-5)/20 = 0.4, 1 -> P_bar = 0.75
    # p_A = (5+4+3+0)/20 = 0.6 -> P_e = 0.52 -> kappa = 0.23 / 0.48 = 23/48
    assert binary_kappa([5, 4, 3, 0], 5) == pytest.approx(23 / 48)


def test_kappa_wikipedia_example():
    # Fleiss (1971)-style worked example: 10 items, 14 raters, 5 categories; kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)


def test_kappa_undefined_and_bad_input():
    assert fleiss_kappa([]) is None
    assert binary_kappa([5, 5, 5], 5) is None  # everyone always picks A: chance agreement is 1
    with pytest.raises(ValueError):
        fleiss_kappa([[3, 2], [2, 2]])  # unequal raters per item
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0]])  # one rater


def test_kappa_random_raters_near_zero():
    rng = random.Random(0)
    votes = [sum(rng.random() < 0.5 for _ in range(5)) for _ in range(304)]
    assert abs(binary_kappa(votes, 5)) < 0.08


@pytest.mark.parametrize(
    "votes_a, level", [(5, "complete"), (0, "complete"), (4, "partial"), (1, "partial"), (3, "split"), (2, "split")]
)
def test_agreement_levels_five_raters(votes_a, level):
    assert agreement_level(votes_a, 5) == level


def test_agreement_levels_other_sizes_and_counts():
    assert agreement_level(2, 3) == "split" and agreement_level(3, 3) == "complete"
    assert agreement_level(5, 7) == "partial" and agreement_level(4, 7) == "split"
    assert agreement_counts([5, 0, 4, 1, 3, 2, 3], 5) == {"complete": 2, "partial": 2, "split": 3}
    with pytest.raises(ValueError):
        agreement_level(2, 4)
    with pytest.raises(ValueError):
        agreement_level(6, 5)


def test_majority():
    assert [majority(v, 5) for v in range(6)] == ["b", "b", "b", "a", "a", "a"]
    with pytest.raises(ValueError):
        majority(2, 4)


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # Symmetry: the interval of B is one minus the interval of A.
    la, ha = wilson_interval(297, 307)
    lb, hb = wilson_interval(10, 307)
    assert math.isclose(la, 1 - hb) and math.isclose(ha, 1 - lb)
