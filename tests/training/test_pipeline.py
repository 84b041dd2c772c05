"""The training pipeline on a mid-size simulated CRM: quality against the simulator's truth, and
what lands in a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from core.model_bundle import synthetic_rows
from core.registry import load_version


def test_conversion_quality_against_oracle_and_baselines(trained, mid_crm):
    _, report = trained
    r = report.results["conversion"]
    truth = mid_crm.lead_truth.set_index("lead_id")["propensity"]
    test = r.test
    oracle_auc = roc_auc_score(test["label"], test["lead_id"].map(truth))
    m = r.metrics
    print(f"conversion test AUC {m['lightgbm']['roc_auc']:.4f}, oracle {oracle_auc:.4f}, "
          f"logistic {m['logistic']['roc_auc']:.4f}, rule {m['rule']['roc_auc']:.4f}, "
          f"ECE {m['lightgbm']['ece']:.4f}")
    assert m["lightgbm"]["roc_auc"] >= oracle_auc - 0.02
    assert m["lightgbm"]["roc_auc"] > m["logistic"]["roc_auc"]
    assert m["lightgbm"]["roc_auc"] > m["rule"]["roc_auc"]
    assert m["lightgbm"]["ece"] <= 0.03
    # calibrated: mean score close to the observed rate on the later leads
    assert abs(m["lightgbm"]["mean_score"] - m["lightgbm"]["positive_rate"]) < 0.02


def _dropout_oracle(test: pd.DataFrame, crm, window_days: float = 14.0) -> np.ndarray:
    """The simulator's own chance that the rep goes quiet after this touch (it peeks at the
    reply the touch gets, which no model can see at as_of)."""
    reps = crm.rep_truth.set_index("rep_id")
    owner = crm.leads.set_index("lead_id")["owner_rep_id"]
    rep = test["lead_id"].map(owner)
    stop = rep.map(reps["quiet_probability"]).to_numpy()
    dis = rep.map(reps["discipline"]).to_numpy()
    acts = crm.activities
    inbound = acts[acts.direction == "inbound"][["lead_id", "occurred_at"]]
    touch_at = test["as_of"] - pd.Timedelta(seconds=1)
    merged = test[["lead_id"]].assign(t=touch_at.to_numpy(), i=np.arange(len(test))).merge(
        inbound, on="lead_id", how="left")
    replied = merged[(merged.occurred_at > merged.t)
                     & (merged.occurred_at <= merged.t + pd.Timedelta(days=2))]["i"].unique()
    engaged = (test["has_responded"].to_numpy() > 0) | (test["meeting_held"].to_numpy() > 0)
    engaged[replied] = True
    proposed = test["proposals_sent"].to_numpy() > 0
    q = stop * np.where(proposed, 0.15, np.where(engaged, 0.25, 1.0))
    long_gap = 0.03 + 0.97 * np.exp(-(window_days - 0.3) / (1.0 + 5.0 * (1.0 - dis)))
    return q + (1 - q) * long_gap


def test_dropout_quality(trained, mid_crm):
    _, report = trained
    r = report.results["dropout"]
    m = r.metrics
    oracle_auc = roc_auc_score(r.test["label"], _dropout_oracle(r.test, mid_crm))
    print(f"dropout test AUC {m['lightgbm']['roc_auc']:.4f}, oracle {oracle_auc:.4f}, "
          f"logistic {m['logistic']['roc_auc']:.4f}, rule {m['rule']['roc_auc']:.4f}")
    assert m["lightgbm"]["roc_auc"] >= m["rule"]["roc_auc"] + 0.05
    assert m["lightgbm"]["roc_auc"] >= oracle_auc - 0.1
    assert m["lightgbm"]["ece"] <= 0.03


def test_judging_models_are_rep_blind(trained):
    _, report = trained
    bundle = report.results["lead_quality"].bundle
    assert set(bundle.features) == {"source", "industry", "company_size", "country"}
    cdf = bundle.meta["conversion_day_cdf"]
    assert len(cdf) == 91 and cdf[-1] == 1.0 and bool((np.diff(cdf) >= 0).all())
    blind = set(report.results["dropout_expected"].bundle.features)
    assert not blind & {"rep_past_conversion_rate", "rep_past_followup_depth",
                        "rep_past_resolved_leads", "mean_gap_days", "days_since_last_touch"}
    assert {"outbound_touches", "has_responded", "source"} <= blind


def _runs(runtime):
    client = MlflowClient()
    exp = client.get_experiment_by_name("leadlens")
    return client, client.search_runs([exp.experiment_id])


def test_mlflow_parent_and_nested_runs(trained):
    runtime, report = trained
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    client, runs = _runs(runtime)
    parent = client.get_run(report.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.horizon_days"] == "90"
    assert parent.data.params["train.lightgbm.num_leaves"] == "15"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["leadlens.model"] for r in children) == [
        "conversion", "dropout", "dropout_expected", "lead_quality"]
    conv = next(r for r in children if r.data.tags["leadlens.model"] == "conversion")
    for key in ("test_lightgbm_roc_auc", "test_logistic_roc_auc", "test_rule_roc_auc",
                "test_lightgbm_ece", "test_lightgbm_brier", "test_lightgbm_lift_top10",
                "test_lightgbm_capture_top20", "train_positives"):
        assert key in conv.data.metrics, key
    contexts = sorted(i.tags[0].value for i in conv.inputs.dataset_inputs
                      if i.tags and i.tags[0].key == "mlflow.data.context")
    assert contexts == ["test", "train", "validation"]
    digests = {i.dataset.digest for i in conv.inputs.dataset_inputs}
    assert len(digests) == 3 and all(len(d) == 16 for d in digests)
    files = {f.path for f in client.list_artifacts(conv.info.run_id)} | {
        f.path for d in ("plots", "evaluation") for f in client.list_artifacts(conv.info.run_id, d)}
    assert {"model_card.md", "plots/roc_pr.png", "plots/calibration.png",
            "plots/shap_summary.png", "plots/feature_importance.png",
            "evaluation/leakage_audit.csv", "evaluation/group_auc_team.csv"} <= files


def test_model_card_and_no_personal_data(trained, mid_crm):
    runtime, report = trained
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    run_id = report.results["conversion"].run_id
    card = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model_card.md"))
    text = card.read_text()
    for section in ("## Data window", "## Replay (the test)", "## Candidates (validation replay)",
                    "AUC minus the logistic baseline's (90% paired bootstrap)", "### Calibration",
                    "### ROC AUC per lead age", "logistic_roc_auc",
                    "### ROC AUC per source", "### ROC AUC per team", "## Leakage audit",
                    "**Intended use.**", "| lightgbm | logistic | rule |"):
        assert section in text, section
    # nothing personal anywhere in the run's or the model's files
    emails = set(mid_crm.leads["contact_email"].head(200))
    root = Path(runtime.mlflow_artifacts)
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".csv", ".json", ".txt", ".yaml", ""):
            content = path.read_text(errors="ignore")
            assert "@example.com" not in content, path
            assert not any(e in content for e in emails)
    assert not list(root.rglob("*.pkl")) and not list(root.rglob("*.pickle"))


def test_registered_pyfunc_returns_calibrated_probabilities(trained):
    runtime, report = trained
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    r = report.results["conversion"]
    model = mlflow.pyfunc.load_model(f"models:/leadlens-conversion/{r.version}")
    sig = model.metadata.get_input_schema()
    types = {c.name: c.type.name for c in sig.inputs}
    assert types["outbound_touches"] == "double" and types["source"] == "string"
    sample = r.test.head(50)
    via_pyfunc = model.predict(sample[list(r.bundle.features)])["probability"].to_numpy()
    assert np.allclose(via_pyfunc, r.bundle.predict(sample), atol=1e-12)
    assert ((via_pyfunc >= 0) & (via_pyfunc <= 1)).all()
    # the registry copy is the trained bundle: same scores through the shared loader
    bundle = load_version("leadlens-conversion", r.version)
    assert np.allclose(bundle.predict(sample), via_pyfunc, atol=1e-12)
    # the logged input example is synthetic, not a lead
    example_dir = Path(mlflow.artifacts.download_artifacts(
        f"models:/leadlens-conversion/{r.version}"))
    example = json.loads((example_dir / "input_example.json").read_text())
    assert "lead_id" not in json.dumps(example)
    assert synthetic_rows(r.bundle).shape[1] == len(r.bundle.features)


def test_version_tags_carry_window_and_metrics(trained):
    runtime, report = trained
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    r = report.results["dropout"]
    v = MlflowClient().get_model_version("leadlens-dropout", str(r.version))
    assert v.tags["kind"] == "dropout"
    assert float(v.tags["test_roc_auc"]) == round(r.metrics["lightgbm"]["roc_auc"], 6)
    assert pd.Timestamp(v.tags["test_from"]) > pd.Timestamp(v.tags["valid_from"])
