"""A logistic regression kept in the bundle format: additive SHAP values, a plain-JSON round
trip, unseen categories and missing values handled, a broken file refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.linear_model import LinearModel
from core.model_bundle import ModelBundle, load_bundle
from training.fit import fit_calibrator, fit_linear, vocabularies


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    size = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n))
    channel = rng.choice(["web", "event", "referral"], n)
    logit = -1 + 1.2 * x + 0.8 * (channel == "referral") + 0.3 * np.log1p(np.nan_to_num(size))
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x": x, "size": size, "channel": channel, "label": label})


def test_fit_scores_contributions_and_round_trip(tmp_path):
    train, test = _frame(4000, 1), _frame(2000, 2)
    features = ["x", "size", "channel"]
    cats = vocabularies(train, ["channel"])
    model = fit_linear(train, features, cats)
    bundle = ModelBundle("conversion", model, tuple(features), cats,
                         fit_calibrator(model.predict(np.zeros((1, 3)), raw_score=True),
                                        np.array([1])), {})
    x = bundle.matrix(test)
    raw = bundle.raw_score(x)
    assert roc_auc_score(test["label"], raw) > 0.75
    contrib = bundle.contributions(x)
    assert contrib.shape == (len(test), 4)
    assert np.allclose(contrib.sum(axis=1), raw, atol=1e-9)
    # contributions are centred on the training rows: a typical lead scores the base value
    assert np.allclose(bundle.contributions(bundle.matrix(train))[:, :-1].mean(axis=0), 0,
                       atol=1e-9)
    again = load_bundle(bundle.save(tmp_path / "b"))
    assert isinstance(again.booster, LinearModel)
    assert np.array_equal(again.raw_score(x), raw)
    unseen = test.head(3).assign(channel=["nowhere", None, "web"], size=[np.nan, 5.0, 1e12])
    assert np.isfinite(bundle.raw_score(bundle.matrix(unseen))).all()


def test_a_broken_linear_file_is_refused(tmp_path):
    train = _frame(500, 3)
    cats = vocabularies(train, ["channel"])
    model = fit_linear(train, ["x", "channel"], cats)
    path = tmp_path / "model.txt"
    model.save_model(str(path))
    linear = tmp_path / "linear.json"
    text = linear.read_text()
    linear.write_text(text.replace('"scale": ', '"scale": -'))
    with pytest.raises(ValueError, match="not a LeadLens linear model"):
        LinearModel.load(linear)
    linear.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not a LeadLens linear model"):
        LinearModel.load(linear)
