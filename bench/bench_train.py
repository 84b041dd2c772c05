"""Training speed: 200k simulated leads end to end (examples, features, fit, evaluate, log,
register; all three models) against the 120 s target, with a peer in the same run: scikit-learn's
HistGradientBoostingClassifier fitted on the same conversion training rows as our LightGBM fit.

Usage: python bench/bench_train.py [--leads 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_gib, record, timed
from tqdm import tqdm

from core.settings import IngestConfig, Runtime, Settings, SimulateConfig
from core.warehouse import Warehouse
from ingest.load import ingest_frames
from leadlens.simulator.crm import simulate_crm


def _peer_fit(runtime: Runtime, until) -> dict[str, float]:
    """Ours vs scikit-learn on the same conversion rows: fit time and validation AUC."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from training.dataset import build_dataset
    from training.examples import time_split
    from training.fit import fit_lightgbm, vocabularies
    from training.sources import examples_for

    s = runtime.settings
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        attrs = wh.attribute_types()
        ex = examples_for("conversion", wh.con, s, until)
        data = build_dataset(wh.con, ex, time_split(ex.frame, s.train.split_fractions, until),
                             s.engagement, list(attrs))
    from core.model_bundle import encode
    from features.engagement import feature_columns

    feats = feature_columns(s.engagement, list(attrs))
    cats = ["source", *[a for a, k in attrs.items() if k != "numeric"]]
    train, valid = data[data.split == "train"], data[data.split == "validation"]
    with timed() as ours:
        bundle = fit_lightgbm("conversion", train, valid, feats, cats, s.train.lightgbm)
    vocab = vocabularies(train, cats)
    x_tr, x_va = encode(train, feats, vocab), encode(valid, feats, vocab)
    mask = np.array([f in cats for f in feats])
    peer = HistGradientBoostingClassifier(
        learning_rate=s.train.lightgbm.learning_rate, max_leaf_nodes=s.train.lightgbm.num_leaves,
        min_samples_leaf=s.train.lightgbm.min_data_in_leaf, max_iter=s.train.lightgbm.max_rounds,
        early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=s.train.lightgbm.early_stopping_rounds, categorical_features=mask,
        random_state=0)
    with timed() as theirs:
        peer.fit(x_tr, train["label"].to_numpy())
    return {
        "fit_rows": len(train),
        "lightgbm_fit_seconds": round(ours["seconds"], 2),
        "lightgbm_valid_auc": round(roc_auc_score(valid["label"], bundle.predict(valid)), 4),
        "peer_sklearn_hgb_fit_seconds": round(theirs["seconds"], 2),
        "peer_sklearn_hgb_valid_auc": round(
            roc_auc_score(valid["label"], peer.predict_proba(x_va)[:, 1]), 4),
    }


def run(leads: int) -> dict[str, object]:
    from training.pipeline import train_models

    cfg = SimulateConfig(leads=leads, reps=max(40, leads // 500), months=18, seed=7)
    with tqdm(desc=f"simulate {leads:,} leads", unit="step", file=sys.stderr) as bar:
        crm = simulate_crm(cfg, progress=lambda _s: bar.update(1))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with Warehouse(home / "warehouse.duckdb") as wh:
            ingest_frames(wh, IngestConfig(), home / "q",
                          {"reps": crm.reps, "leads": crm.leads, "activities": crm.activities})
        runtime = Runtime(Settings(), home, None)
        stages: list[tuple[float, str]] = []

        def say(msg: str) -> None:
            stages.append((time.perf_counter(), msg))
            print(f"  {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr)

        with timed() as total:
            report = train_models(runtime, say=say)
        figures: dict[str, object] = {
            "leads": leads,
            "activities": len(crm.activities),
            "examples": {k: int(r.counts["examples"].sum()) for k, r in report.results.items()},
            "train_seconds_end_to_end": round(total["seconds"], 2),
            "target_seconds": 120,
            "test_auc": {k: round(r.metrics["lightgbm"]["roc_auc"], 4)
                         for k, r in report.results.items()},
            "peak_rss_gib": round(peak_rss_gib(), 2),
        }
        figures.update(_peer_fit(runtime, report.until))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=200_000)
    args = parser.parse_args()
    print(f"train all models end to end, {args.leads:,} leads")
    record("train", run(args.leads))


if __name__ == "__main__":
    main()
