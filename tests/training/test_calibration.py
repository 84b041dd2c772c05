"""Calibration that keeps the ranking: a strictly increasing map from the booster's raw score
to a probability, never exactly 0 or 1, about as well calibrated as isotonic regression."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from core.model_bundle import Calibrator
from training.evaluate import score_metrics
from training.fit import fit_calibrator


def _world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    raw = rng.normal(-2.0, 1.2, n)  # a booster's log-odds, over-confident
    truth = 1.0 / (1.0 + np.exp(-(0.8 * raw - 0.3)))
    return raw, (rng.random(n) < truth).astype(int)


def test_distinct_raw_scores_keep_distinct_probabilities():
    rng = np.random.default_rng(3)
    raw_v, y_v = _world(rng, 3000)  # about 400 positives, as on a small CRM
    raw_t, y_t = _world(rng, 20_000)
    cal = fit_calibrator(raw_v, y_v)
    p = cal(raw_t)
    # plain isotonic regression puts these on a few dozen values
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw_v, y_v)
    assert len(np.unique(iso.predict(raw_t))) < 0.05 * len(np.unique(raw_t))
    assert len(np.unique(p)) >= 0.95 * len(np.unique(raw_t))
    order = np.argsort(raw_t)
    assert (np.diff(p[order]) >= 0).all()
    assert (np.diff(p[order])[np.diff(raw_t[order]) > 0] > 0).all()  # strictly increasing
    ours, theirs = score_metrics(y_t, p)["ece"], score_metrics(y_t, iso.predict(raw_t))["ece"]
    assert ours <= theirs + 0.01, (ours, theirs)


def test_never_exactly_zero_or_one():
    rng = np.random.default_rng(4)
    raw_v, y_v = _world(rng, 2000)
    p = fit_calibrator(raw_v, y_v)(np.array([-50.0, -10.0, 0.0, 10.0, 50.0]))
    assert ((p > 0) & (p < 1)).all()
    assert (np.diff(p) > 0).all()


def test_the_map_survives_the_bundle_format():
    rng = np.random.default_rng(5)
    raw_v, y_v = _world(rng, 2000)
    cal = fit_calibrator(raw_v, y_v)
    again = Calibrator.from_json(cal.to_json())
    grid = np.linspace(-8, 4, 500)
    assert again(grid) == pytest.approx(cal(grid), abs=0)
