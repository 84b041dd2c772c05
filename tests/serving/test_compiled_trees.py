"""Compiled trees (treelite + tl2cgen, built with the machine's gcc): the same raw scores as
LightGBM to 1e-9, built once per model and cached, refused when damaged, and not used (with a
log line) without a C compiler."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np

from core.blend_model import BlendModel
from core.model_bundle import ModelBundle
from serving import compiled_trees
from serving.compiled_trees import compiled_raw_score
from tests.core.test_blend_model import _blend
from tests.core.test_linear_model import _frame


def _bundles():
    train = _frame(3000, 11)
    blend, tree, _linear = _blend(train)
    plain = ModelBundle("conversion", tree, blend.features, blend.categories,
                        blend.calibrator, {})
    return train, blend, plain


def test_compiled_scores_equal_lightgbm_for_trees_and_blends(tmp_path):
    train, blend, plain = _bundles()
    x = np.ascontiguousarray(plain.matrix(train))
    x[::9, 1] = np.nan  # missing values take LightGBM's default direction in both
    for bundle in (plain, blend):
        raw = compiled_raw_score(bundle, tmp_path)
        assert raw is not None
        native = bundle.raw_score(x, num_threads=1)
        assert np.max(np.abs(raw(x) - native)) <= 1e-9
    assert len(list(tmp_path.glob("*.so"))) == 1  # the blend's trees are the same model


def test_built_once_per_model_then_read_from_the_cache(tmp_path, monkeypatch):
    _train, _blend_bundle, plain = _bundles()
    assert compiled_raw_score(plain, tmp_path) is not None
    built = []
    monkeypatch.setattr(compiled_trees, "_build", lambda *a: built.append(a))
    assert compiled_raw_score(plain, tmp_path) is not None and built == []


def test_a_damaged_library_is_refused_and_removed(tmp_path, caplog):
    _train, _blend_bundle, plain = _bundles()
    assert compiled_raw_score(plain, tmp_path) is not None
    lib = next(tmp_path.glob("*.so"))
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "leadlens.serving"):
        assert compiled_raw_score(plain, tmp_path) is None
    assert "differs from the digest recorded" in caplog.text and not lib.exists()
    assert compiled_raw_score(plain, tmp_path) is not None  # rebuilt at the next use


def test_without_a_c_compiler_native_lightgbm_scores_and_a_line_says_why(tmp_path, monkeypatch,
                                                                        caplog):
    _train, _blend_bundle, plain = _bundles()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    with caplog.at_level(logging.INFO, "leadlens.serving"):
        assert compiled_raw_score(plain, tmp_path) is None
    assert "no C compiler" in caplog.text
    assert isinstance(plain.booster, lgb.Booster)


def test_the_scored_leads_table_with_compiled_trees_equals_the_native_one(served_home,
                                                                         monkeypatch):
    """`serve.engine: compiled`: the service's scorers use the compiled library, and the
    scored-leads table (built on 1 or every core) holds the native table's scores and reasons."""
    from dataclasses import replace

    from serving.lead_table import build_lead_table
    from serving.state import ServingState

    runtime, _report, _crm = served_home
    monkeypatch.setenv("BENTOML_HOME", str(runtime.home / "bentoml"))
    tables, engines = {}, {}
    for engine, threads in (("native", 1), ("compiled", 0)):
        serve = runtime.settings.serve.model_copy(update={"engine": engine,
                                                          "table_threads": threads})
        state = ServingState(replace(runtime, settings=runtime.settings.model_copy(
            update={"serve": serve})))
        served = state.load()
        try:
            engines[engine] = {k: s.engine is not None for k, s in served.scorers.items()}
            has_trees = {k: isinstance(s.bundle.booster, (lgb.Booster, BlendModel))
                         for k, s in served.scorers.items()}
            tables[engine] = build_lead_table(served.source, served.scorers, served.as_of)
        finally:
            state.close()
    # a model without trees (a logistic regression won) scores natively with either engine
    assert has_trees["conversion"]
    assert engines == {"native": {"conversion": False, "dropout": False},
                       "compiled": has_trees}
    native, compiled = tables["native"], tables["compiled"]
    assert len(native.frame) > 100
    assert list(native.frame["lead_id"]) == list(compiled.frame["lead_id"])
    for column in ("score", "dropout_risk"):
        assert np.max(np.abs(native.frame[column].to_numpy(dtype=float)
                             - compiled.frame[column].to_numpy(dtype=float))) <= 1e-9
    for kind in ("conversion", "dropout"):
        assert np.allclose(native.inputs[kind][2], compiled.inputs[kind][2], atol=1e-12)
    assert len(list((runtime.home / "compiled").glob("*.so"))) >= sum(has_trees.values())
