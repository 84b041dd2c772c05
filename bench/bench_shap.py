"""Explanations in bulk: TreeSHAP for an open book of 100k leads, LightGBM's own `pred_contrib`
(exact TreeSHAP in C++) against the `shap` package's TreeExplainer (`tree_path_dependent`), in
the same run; leads/s of each on all cores and on one, and the largest difference between them.

The served conversion model of a demo home (built here, or `--home`) explains its open leads'
design matrix, repeated to `--rows`. Target (issue 18): >= 5k leads/s on 2 cores.

Usage: python bench/bench_shap.py [--home DIR] [--rows 100000] [--peer-rows 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgbm as lgb
import numpy as np
from _common import bench_home, champion_trees_and_open_rows, record


def _rate(fn: Callable[[], object], rows: int) -> float:
    t = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--peer-rows", type=int, default=5_000)
    args = ap.parse_args()

    import shap

    runtime = bench_home(args.home, args.leads, "leadlens-bench-shap-")
    trees, x = champion_trees_and_open_rows(runtime, args.rows)
    assert isinstance(trees, lgb.Booster), "the served model has no trees"
    cores = os.cpu_count() or 1
    print(f"TreeSHAP for {len(x):,} rows, {trees.num_trees()} trees", file=sys.stderr)
    ours_all = _rate(lambda: trees.predict(x, pred_contrib=True, num_threads=cores), len(x))
    ours_one = _rate(lambda: trees.predict(x, pred_contrib=True, num_threads=1), len(x))
    sample = x[: args.peer_rows]
    explainer = shap.TreeExplainer(trees, feature_perturbation="tree_path_dependent")
    peer = _rate(lambda: explainer.shap_values(sample), len(sample))
    theirs = np.asarray(explainer.shap_values(sample))
    ours = trees.predict(sample, pred_contrib=True, num_threads=cores)[:, :-1]
    record("shap", {"rows": len(x), "trees": trees.num_trees(), "cores": cores,
                    "lightgbm_pred_contrib_leads_per_s_all_cores": int(ours_all),
                    "lightgbm_pred_contrib_leads_per_s_one_core": int(ours_one),
                    "peer_shap_tree_explainer_leads_per_s": int(peer),
                    "max_abs_difference_log_odds": float(np.max(np.abs(ours - theirs)))})


if __name__ == "__main__":
    main()
