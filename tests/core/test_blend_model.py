"""The blend of a LightGBM booster and a logistic regression: scores and SHAP values are the
weighted sums of its parts' (rows still add up to the raw score), it survives a save and load,
a broken blend file is refused, and `choose` prefers the simpler candidate within the margin."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.blend_model import BLEND_FILE, BlendModel
from core.model_bundle import ModelBundle, load_bundle
from tests.core.test_linear_model import _frame
from training.fit import choose, fit_calibrator, fit_linear, vocabularies


def _blend(train):
    features = ["x", "size", "channel"]
    cats = vocabularies(train, ["channel"])
    bundle = ModelBundle("conversion", fit_linear(train, features, cats), tuple(features), cats,
                         fit_calibrator(np.array([0.0, 1.0]), np.array([0, 1])), {})
    x = bundle.matrix(train)
    tree = lgb.train({"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 1},
                     lgb.Dataset(x, train["label"].to_numpy(), feature_name=features,
                                 categorical_feature=["channel"]), num_boost_round=30)
    linear = bundle.booster
    assert not isinstance(linear, lgb.Booster | BlendModel)
    return ModelBundle("conversion", BlendModel(tree, linear, 0.5), tuple(features), cats,
                       bundle.calibrator, {}), tree, linear


def test_blend_scores_contributions_and_round_trip(tmp_path):
    train, test = _frame(3000, 4), _frame(1000, 5)
    bundle, tree, linear = _blend(train)
    x = bundle.matrix(test)
    raw = bundle.raw_score(x)
    assert np.allclose(raw, 0.5 * tree.predict(x, raw_score=True)
                       + 0.5 * linear.predict(x, raw_score=True), atol=1e-12)
    contrib = bundle.contributions(x)
    assert contrib.shape == (len(test), 4)
    assert np.allclose(contrib.sum(axis=1), raw, atol=1e-9)
    again = load_bundle(bundle.save(tmp_path / "b"))
    assert isinstance(again.booster, BlendModel) and again.booster.weight == 0.5
    assert np.array_equal(again.raw_score(x), raw)
    imp = again.booster.feature_importance("gain")
    assert imp.shape == (3,) and np.isclose(imp.sum(), 1.0)


@pytest.mark.parametrize("content", ['{"weight": 1.5}', '{"w": 0.5}', "not json"])
def test_a_broken_blend_file_is_refused(tmp_path, content):
    bundle, _, _ = _blend(_frame(800, 6))
    folder = bundle.save(tmp_path / "b")
    (folder / BLEND_FILE).write_text(content)
    with pytest.raises(ValueError, match="blend"):
        load_bundle(folder)


def test_choose_prefers_the_simpler_candidate_within_margin_and_noise():
    rng = np.random.default_rng(0)
    n = 4000
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    simple = signal + rng.normal(0, 1.0, n)
    better = signal + rng.normal(0, 0.8, n)  # better ranked
    tiny = simple + rng.normal(0, 0.05, n)  # a different scorer, no better
    raws = {"logistic regression": simple, "blend": tiny, "lightgbm": better}
    assert choose(y, raws, 0.005, 0.8) == "lightgbm"
    assert choose(y, {**raws, "lightgbm": tiny}, 0.005, 0.8) == "logistic regression"
    assert choose(y, {**raws, "blend": better, "lightgbm": better + 1e-9}, 0.005,
                  0.8) == "blend"
    # on 150 rows a noisy copy of the regression beats it by 0.010 by luck: within the noise,
    # so the simplest model serves; the margin alone would have taken the lucky one
    rng = np.random.default_rng(3)
    signal = rng.normal(size=150)
    y_few = (rng.random(150) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    simple = signal + rng.normal(0, 1.0, 150)
    lucky = simple + rng.normal(0, 0.3, 150)
    few = {"logistic regression": simple, "lightgbm": lucky}
    assert roc_auc_score(y_few, lucky) - roc_auc_score(y_few, simple) > 0.005
    assert choose(y_few, few, 0.005, 0.8) == "logistic regression"
    assert choose(y_few, few, 0.005, 0.0) == "lightgbm"
    assert choose(y, {"lightgbm": better}, 0.005, 0.8) == "lightgbm"
