"""The leakage audit flags a column filled in after the outcome."""

from __future__ import annotations

import mlflow
import numpy as np
from mlflow import MlflowClient

from core.settings import SimulateConfig
from leadlens.simulator.crm import simulate_crm
from training.leakage import leakage_audit, shap_shares
from training.pipeline import train_models


def test_a_post_outcome_column_is_flagged(tmp_path, crm_loader):
    crm = simulate_crm(SimulateConfig(leads=10_000, reps=20, months=12, seed=21))
    rng = np.random.default_rng(0)
    won = crm.leads["converted_at"].notna().to_numpy()
    # like a call's duration: recorded by the CRM once the deal is done
    crm.leads["closing_call_minutes"] = np.where(won, 25.0, 4.0) + rng.normal(0, 2, len(won))
    runtime = crm_loader(tmp_path / "home", crm)
    report = train_models(runtime, kinds=("conversion",), say=lambda _m: None)
    r = report.results["conversion"]
    audit = r.audit.set_index("feature")
    assert audit.loc["closing_call_minutes", "flagged"]
    assert audit.loc["closing_call_minutes", "single_feature_auc"] > 0.9
    assert "alone reaches AUC" in audit.loc["closing_call_minutes", "reason"]
    # honest features are not flagged
    assert not audit.loc["outbound_touches", "flagged"]
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    v = MlflowClient().get_model_version("leadlens-conversion", str(r.version))
    assert "closing_call_minutes" in v.tags["leakage_flags"]
    card = open(mlflow.artifacts.download_artifacts(run_id=r.run_id, artifact_path="model_card.md")).read()
    assert "**Possible leakage:** `closing_call_minutes`" in card


def test_shap_share_rule():
    contrib = np.array([[3.0, 0.5, 0.5, -1.0], [-3.0, 0.5, -0.5, -1.0]])
    shares = shap_shares(contrib, ["a", "b", "c"])
    assert shares == {"a": 0.75, "b": 0.125, "c": 0.125}
    audit = leakage_audit({"a": 0.7, "b": 0.95, "c": 0.6}, shares, 0.9, 0.5).set_index("feature")
    assert audit.loc["a", "flagged"] and "75% of total |SHAP|" in audit.loc["a", "reason"]
    assert audit.loc["b", "flagged"] and "AUC 0.950" in audit.loc["b", "reason"]
    assert not audit.loc["c", "flagged"]


def test_share_rule_skips_small_models():
    shares = {"a": 0.6, "b": 0.4}
    audit = leakage_audit({"a": 0.6, "b": 0.55}, shares, 0.9, 0.5, share_min_features=10)
    assert not audit["flagged"].any()
