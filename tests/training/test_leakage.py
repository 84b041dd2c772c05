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
    assert audit.loc["closing_call_minutes", "blocking"]  # an export column
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
    assert not audit.loc["a", "blocking"]  # a strong legitimate signal can dominate too
    assert audit.loc["b", "flagged"] and "AUC 0.950" in audit.loc["b", "reason"]
    assert audit.loc["b", "blocking"]
    assert not audit.loc["c", "flagged"]
    # a feature LeadLens derives from the activity log is point-in-time by construction: a
    # strong one is a note, not a reason to refuse the model
    derived = leakage_audit({"a": 0.7, "b": 0.95, "c": 0.6}, shares, 0.9, 0.5,
                            attributes={"c"}).set_index("feature")
    assert derived.loc["b", "flagged"] and not derived.loc["b", "blocking"]


def test_an_attribute_empty_for_one_outcome_is_flagged_as_filled_after_the_fact():
    import pandas as pd

    from training.leakage import missing_by_outcome

    y = np.array([1] * 40 + [0] * 160)
    quality = np.where(y == 1, "High", None).astype(object)
    quality[:4] = None  # a few converted leads without it
    quality[100:110] = "Low"  # and a few others with it
    rows = pd.DataFrame({"label": y, "lead_quality": quality,
                         "region": np.where(np.arange(200) % 7 == 0, None, "north")})
    missing = missing_by_outcome(rows.iloc[:120], rows.iloc[120:], ["lead_quality", "region"])
    assert missing["lead_quality"] == (0.1, 160 / 160 - 10 / 160)
    audit = leakage_audit({"lead_quality": 0.8, "region": 0.5}, {}, 0.9, 0.5,
                          missing=missing, missing_gap=0.5).set_index("feature")
    assert audit.loc["lead_quality", "blocking"]
    assert ("empty for 10% of converted and 94% of other leads: probably filled after the fact"
            in audit.loc["lead_quality", "reason"])
    assert not audit.loc["region", "flagged"]


def test_share_rule_skips_small_models():
    shares = {"a": 0.6, "b": 0.4}
    audit = leakage_audit({"a": 0.6, "b": 0.55}, shares, 0.9, 0.5, share_min_features=10)
    assert not audit["flagged"].any()
