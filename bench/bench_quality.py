"""Model quality on CRMs we did not tune to: for each world of `leadlens/simulator/worlds.py`,
train and promote the conversion model as a user would, score every lead open at the cutoff, and
compare with the truth (each open lead's probability of converting within the horizon).

Printed per world: the model's AUC against the truth's own AUC (the oracle) and against a
logistic regression trained on the same snapshots, PR AUC, ECE on the open book, and the share of
distinct scores. Outcomes at the cutoff are not observed, so AUC and ECE are computed against the
true probabilities (the AUC expected over the outcomes they imply); PR AUC averages 20 draws of
outcomes. Figures go to bench/results.jsonl.

Run: `python bench/bench_quality.py [--worlds a,b] [--draws 200] [--verbose]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record, timed

from core.settings import IngestConfig, Runtime, Settings
from core.timestamps import record_cutoff
from core.warehouse import Warehouse
from features.engagement import batch_features, select_pairs
from ingest.load import ingest_frames
from leadlens.simulator.worlds import WORLDS, build_world
from training.fit import LogisticBaseline
from training.pipeline import SPECS, model_inputs, train_models
from training.promote import promote
from training.replay import replay_frames

TARGETS = {"below_oracle": 0.03, "below_logistic": 0.005, "ece": 0.03, "distinct": 0.95}


def soft_auc(p_true: np.ndarray, score: np.ndarray) -> float:
    """The ROC AUC expected when each lead converts with probability `p_true` (ties count
    half): sum over pairs of p_i (1 - p_j) [s_i > s_j] over sum of p_i (1 - p_j), i != j."""
    order = np.argsort(score, kind="stable")
    s, p = score[order], p_true[order]
    # group ties: within a group, pairs count half
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    neg_below = 0.0
    num = 0.0
    for a, c in zip(start, counts, strict=True):
        grp_p = p[a:a + c]
        grp_neg = (1 - grp_p).sum()
        num += grp_p.sum() * neg_below + 0.5 * (grp_p.sum() * grp_neg - (grp_p * (1 - grp_p)).sum())
        neg_below += grp_neg
    den = p.sum() * (1 - p).sum() - (p * (1 - p)).sum()
    return float(num / den) if den > 0 else float("nan")


def soft_ece(p_true: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error against the true probabilities (equal-count bins)."""
    order = np.argsort(score, kind="stable")
    parts = np.array_split(order, bins)
    return float(sum(len(b) * abs(p_true[b].mean() - score[b].mean()) for b in parts if len(b))
                 / len(score))


def pr_auc(p_true: np.ndarray, score: np.ndarray, draws: int = 20, seed: int = 0) -> float:
    """Average precision over `draws` outcome draws from the true probabilities."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(draws):
        y = rng.random(len(p_true)) < p_true
        if 0 < y.sum() < len(y):
            vals.append(average_precision_score(y, score))
    return float(np.mean(vals)) if vals else float("nan")


def run_world(name: str, draws: int, say=print, verbose: bool = False) -> dict[str, object]:
    """Build the world, train and promote as a user would, judge the open book."""
    crm = build_world(WORLDS[name], draws=draws)
    with tempfile.TemporaryDirectory(prefix=f"quality-{name}-") as tmp:
        home = Path(tmp)
        settings = Settings()
        with Warehouse(home / "warehouse.duckdb") as wh:
            ingest_frames(wh, IngestConfig(), home / "q",
                          {"reps": crm.reps, "leads": crm.leads, "activities": crm.activities})
            record_cutoff(wh.con, crm.cutoff)
        runtime = Runtime(settings, home, None)
        with timed() as t:
            trained = train_models(runtime, kinds=("conversion",),
                                   say=say if verbose else lambda _m: None)
        result = trained.results["conversion"]
        decision = promote(runtime, "conversion")
        with Warehouse(home / "warehouse.duckdb", read_only=True) as wh:
            attrs = list(wh.attribute_types())
            pairs = select_pairs(wh.con, crm.cutoff, "open")
            book = batch_features(wh.con, pairs, settings.engagement, attrs)
            frames = replay_frames(wh.con, settings, crm.cutoff, attrs)
            features, categorical = model_inputs(SPECS["conversion"], settings, wh.con)
        sets = frames.sets("until")
        logistic = LogisticBaseline(features, categorical).fit(sets.refit, sets.valid)
    book = book.merge(crm.truth, on="lead_id", how="inner")
    p = book["p_true"].to_numpy()
    ours = result.bundle.predict(book)
    theirs = logistic.predict(book)
    raw = result.bundle.raw_score(result.bundle.matrix(book))
    out = {
        "world": name, "open_leads": len(book), "median_age_days":
            float(book["lead_age_days"].median()),
        "served": result.bundle.meta.get("settings", {}).get("model", "lightgbm"),
        "promoted": bool(decision.promoted),
        "oracle_auc": soft_auc(p, p), "auc": soft_auc(p, ours),
        "logistic_auc": soft_auc(p, theirs), "pr_auc": pr_auc(p, ours),
        "logistic_pr_auc": pr_auc(p, theirs), "ece": soft_ece(p, ours),
        "distinct": float(len(np.unique(ours)) / max(1, len(np.unique(raw)))),
        "replay_auc": float(result.metrics["lightgbm"]["roc_auc"]),
        "train_seconds": round(t["seconds"], 1),
    }
    out["meets"] = bool(out["auc"] >= out["oracle_auc"] - TARGETS["below_oracle"]
                        and out["auc"] >= out["logistic_auc"] - TARGETS["below_logistic"]
                        and out["ece"] <= TARGETS["ece"]
                        and out["distinct"] >= TARGETS["distinct"])
    say(f"{name:15s} open {out['open_leads']:5d} (median age {out['median_age_days']:.0f} d) "
        f"AUC {out['auc']:.3f} oracle {out['oracle_auc']:.3f} logistic {out['logistic_auc']:.3f}"
        f" PR {out['pr_auc']:.3f} ECE {out['ece']:.3f} distinct {out['distinct']:.0%} "
        f"served {out['served']}, promoted {out['promoted']}, {out['train_seconds']} s")
    return out


def main() -> None:
    """Run every world (or those asked for), print a table, record the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", default=",".join(WORLDS))
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--verbose", action="store_true", help="print training's progress")
    args = ap.parse_args()
    rows = [run_world(w, args.draws, verbose=args.verbose) for w in args.worlds.split(",")]
    print(format_table(rows))
    record("quality", {"worlds": rows, "targets": TARGETS})


def format_table(rows: list[dict[str, object]]) -> str:
    """The README's table: one row per world."""
    lines = ["| world | open leads (median age) | AUC | oracle | logistic | PR AUC (logistic) "
             "| ECE | distinct | served | meets targets |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['world']} | {r['open_leads']:,} ({r['median_age_days']:.0f} d) | "
            f"{r['auc']:.3f} | {r['oracle_auc']:.3f} | {r['logistic_auc']:.3f} | "
            f"{r['pr_auc']:.3f} ({r['logistic_pr_auc']:.3f}) | {r['ece']:.3f} | "
            f"{r['distinct']:.0%} | {r['served']} | {'yes' if r['meets'] else 'no'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
