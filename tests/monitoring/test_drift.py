"""Drift measures (`monitoring.drift`): the population stability index of numeric and
categorical inputs (hand-computed on tiny examples, its midpoint edges, missing values as a bin)
and the realised AUC and calibration error of scores whose outcomes are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.drift import FLOOR, psi_categorical, psi_frame, psi_numeric, realised


def _psi_by_hand(ref_shares: list[float], cur_shares: list[float]) -> float:
    """sum (cur - ref) * ln(cur / ref), shares floored as documented."""
    total = 0.0
    for r, c in zip(ref_shares, cur_shares, strict=True):
        r, c = max(r, FLOOR), max(c, FLOOR)
        total += (c - r) * math.log(c / r)
    return total


def test_identical_samples_have_a_psi_of_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert psi_numeric(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    cats = pd.Series(rng.choice(["web", "event", "referral"], size=500))
    assert psi_categorical(cats, cats.copy()) == pytest.approx(0.0, abs=1e-12)


def test_categorical_psi_matches_a_hand_computation_with_an_unseen_category():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = pd.Series(["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10)  # "d": unseen -> other
    # bins a, b, c, other: reference 0.5, 0.3, 0.2, 0 (floored); current 0.4, 0.3, 0.2, 0.1
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - FLOOR) * math.log(0.1 / FLOOR)
    assert psi_categorical(ref, cur) == pytest.approx(expected, rel=1e-9)
    assert psi_categorical(ref, cur) == pytest.approx(
        _psi_by_hand([0.5, 0.3, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1]), rel=1e-9)


def test_categorical_missing_values_are_a_category_of_their_own():
    ref = pd.Series(["a", "a", "b", None] * 25)
    cur = pd.Series(["a", "b", None, None] * 25)
    # a, b, <missing>: reference 0.5, 0.25, 0.25; current 0.25, 0.25, 0.5
    expected = _psi_by_hand([0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.5, 0.0])
    assert psi_categorical(ref, cur) == pytest.approx(expected, rel=1e-9)


def test_numeric_psi_on_a_tiny_example_matches_a_hand_computation():
    ref = np.array([1.0] * 4 + [2.0] * 4 + [3.0] * 2)
    cur = np.array([1.0] * 2 + [2.0] * 3 + [3.0] * 5)
    # three distinct values, each in a bin of its own (edges between them); missing bin empty
    expected = _psi_by_hand([0.4, 0.4, 0.2, 0.0], [0.2, 0.3, 0.5, 0.0])
    assert psi_numeric(ref, cur) == pytest.approx(expected, rel=1e-9)


def test_a_shifted_normal_drifts_and_a_second_sample_of_the_same_one_does_not():
    reference = np.random.default_rng(1).normal(0.0, 1.0, 20_000)
    same = np.random.default_rng(2).normal(0.0, 1.0, 20_000)
    shifted = np.random.default_rng(3).normal(1.0, 1.0, 20_000)
    assert psi_numeric(reference, shifted) > 0.25
    assert psi_numeric(reference, same) < 0.1


def test_a_few_shared_values_moving_by_a_hair_keep_psi_near_zero():
    rates = np.array([0.02, 0.05, 0.11, 0.17, 0.30])  # e.g. a conversion rate per source
    rng = np.random.default_rng(4)
    reference = rng.choice(rates, size=2_000, p=[0.4, 0.25, 0.15, 0.15, 0.05])
    for hair in (1e-6, -1e-6):
        assert psi_numeric(reference, reference + hair) == pytest.approx(0.0, abs=1e-9)
    # the same groups with a real change of mix do register
    moved = rng.choice(rates, size=2_000, p=[0.05, 0.15, 0.15, 0.25, 0.4])
    assert psi_numeric(reference, moved) > 0.25


def test_numeric_missing_values_are_their_own_bin_and_a_rising_share_raises_psi():
    known = np.repeat(np.arange(10.0), 9)  # 90 known values, ten distinct

    def with_missing(n_known_each: int, n_missing: int) -> np.ndarray:
        return np.concatenate([np.repeat(np.arange(10.0), n_known_each),
                               np.full(n_missing, np.nan)])

    reference = np.concatenate([known, np.full(10, np.nan)])  # 10% missing
    current = with_missing(6, 40)  # same known mix, 40% missing
    # every known bin shrinks by the same factor 0.6 / 0.9, so the known bins add up to
    # (0.6 - 0.9) ln(0.6 / 0.9) whatever the edges; the missing bin adds (0.4 - 0.1) ln(4)
    expected = (0.6 - 0.9) * math.log(0.6 / 0.9) + (0.4 - 0.1) * math.log(0.4 / 0.1)
    assert psi_numeric(reference, current) == pytest.approx(expected, rel=1e-9)
    psis = [psi_numeric(reference, with_missing(k, m)) for k, m in ((9, 10), (8, 20), (6, 40))]
    assert psis[0] == pytest.approx(0.0, abs=1e-12)
    assert psis[0] < psis[1] < psis[2]


def test_psi_frame_measures_the_inputs_present_in_both_frames():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"age": rng.normal(size=1000), "source": rng.choice(["a", "b"], 1000),
                        "only_ref": 1.0})
    cur = pd.DataFrame({"age": rng.normal(0.5, 1.0, 1000), "source": ["a"] * 1000})
    got = psi_frame(ref, cur, numeric=["age", "only_ref"], categorical=["source"])
    assert set(got) == {"age", "source"}
    assert got["age"] == pytest.approx(psi_numeric(ref["age"].to_numpy(), cur["age"].to_numpy()),
                                       abs=1e-5)
    b_share = (ref["source"] == "b").mean()
    assert got["source"] == pytest.approx(
        _psi_by_hand([1 - b_share, b_share, 0.0], [1.0, 0.0, 0.0]), abs=1e-5)


def test_realised_has_no_auc_when_only_one_class_occurred():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    out = realised(np.zeros(4), p)
    assert out["auc"] is None
    assert out["rows"] == 4 and out["positives"] == 0
    assert out["mean_score"] == pytest.approx(p.mean())
    assert realised(np.ones(4), p)["auc"] is None
    empty = realised(np.array([]), np.array([]))
    assert empty["rows"] == 0 and empty["auc"] is None and empty["ece"] is None


def test_realised_auc_and_ece_match_a_hand_computation_on_a_tiny_example():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.05, 0.15, 0.15, 0.85, 0.95])
    out = realised(y, p)
    # AUC: of the 3 x 2 (positive, negative) pairs, 5 are ordered right and one is a tie
    assert out["auc"] == pytest.approx(5.5 / 6)
    # ECE over bins of width 0.1: [0.05 vs 0], [0.15, 0.15 vs 0.5], [0.85 vs 1], [0.95 vs 1]
    assert out["ece"] == pytest.approx((0.05 + 2 * 0.35 + 0.15 + 0.05) / 5)
    assert out["positives"] == 3 and out["rows"] == 5
    assert out["observed_rate"] == pytest.approx(0.6)
    assert out["mean_score"] == pytest.approx(p.mean())
    assert out["ece_low"] <= out["ece_high"]
    # the calibration curve: one point per occupied bin (mean score, observed rate, rows)
    assert out["calibration"] == [[0.05, 0.0, 1], [0.15, 0.5, 2], [0.85, 1.0, 1],
                                  [0.95, 1.0, 1]]


def test_realised_agrees_with_sklearn_and_a_pandas_ece_on_random_scores():
    rng = np.random.default_rng(6)
    p = rng.uniform(0.001, 0.999, 3000)
    y = (rng.uniform(size=3000) < p ** 1.5).astype(float)  # scores a little too high
    out = realised(y, p)
    assert out["auc"] == pytest.approx(roc_auc_score(y, p))
    frame = pd.DataFrame({"y": y, "p": p,
                          "bin": pd.cut(p, np.linspace(0, 1, 11), labels=False)})
    per_bin = frame.groupby("bin").agg(n=("y", "size"), rate=("y", "mean"), score=("p", "mean"))
    ece = float((per_bin["n"] * (per_bin["rate"] - per_bin["score"]).abs()).sum() / len(y))
    assert out["ece"] == pytest.approx(ece, rel=1e-9)
    assert out["ece"] > 0.05  # the miscalibration built in above shows
