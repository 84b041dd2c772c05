"""Explanations in bulk: TreeSHAP for an open book of 100k leads, LightGBM's own `pred_contrib`
(exact TreeSHAP in C++) against the `shap` package's TreeExplainer (`tree_path_dependent`), in
the same run; leads/s of each on all cores and on one, and the largest difference between them.

The served conversion model of a demo home (built here, or `--home`) explains its open leads'
design matrix, repeated to `--rows`. Target (issue 18): >= 5k leads/s on 2 cores. Then the
scored-leads table itself (`serving.lead_table.build_lead_table`: features, both models' scores
and TreeSHAP values) is built for the home's open book with each `serve.engine`, timed, and its
scores compared between the engines.

Usage: python bench/bench_shap.py [--home DIR] [--rows 100000] [--peer-rows 5000]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import bench_trees, record, tree_bench_parser


def _rate(fn: Callable[[], object], rows: int) -> float:
    t = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - t)


def _table_builds(runtime) -> dict[str, object]:  # runtime: core.settings.Runtime
    """Build the scored-leads table with each engine (as the service does after a load)."""
    from dataclasses import replace

    from serving.lead_table import build_lead_table
    from serving.state import ServingState

    os.environ.setdefault("BENTOML_HOME", str(runtime.home / "bentoml"))
    figures: dict[str, object] = {}
    scores = {}
    for engine in ("native", "compiled"):
        serve = runtime.settings.serve.model_copy(update={"engine": engine})
        state = ServingState(replace(runtime, settings=runtime.settings.model_copy(
            update={"serve": serve})))
        served = state.load()
        print(f"scored-leads table, engine {engine}", file=sys.stderr)
        t = time.perf_counter()
        table = build_lead_table(served.source, served.scorers, served.as_of)
        seconds = time.perf_counter() - t
        state.close()
        scores[engine] = table.frame["score"].to_numpy(dtype=float)
        figures[f"table_{engine}_seconds"] = round(seconds, 3)
        figures[f"table_{engine}_open_leads_per_s"] = int(len(table.frame) / seconds)
        figures["table_open_leads"] = len(table.frame)
        figures["table_models"] = len(served.scorers)
    figures["table_engines_max_abs_score_difference"] = float(
        np.max(np.abs(scores["native"] - scores["compiled"])))
    return figures


def main() -> None:
    ap = tree_bench_parser(__doc__, 100_000)
    ap.add_argument("--peer-rows", type=int, default=5_000)
    args = ap.parse_args()

    import shap

    runtime, trees, x = bench_trees(args, "leadlens-bench-shap-")
    cores = os.cpu_count() or 1
    print(f"TreeSHAP for {len(x):,} rows, {trees.num_trees()} trees", file=sys.stderr)
    ours_all = _rate(lambda: trees.predict(x, pred_contrib=True, num_threads=cores), len(x))
    ours_one = _rate(lambda: trees.predict(x, pred_contrib=True, num_threads=1), len(x))
    sample = x[: args.peer_rows]
    explainer = shap.TreeExplainer(trees, feature_perturbation="tree_path_dependent")
    peer = _rate(lambda: explainer.shap_values(sample), len(sample))
    theirs = np.asarray(explainer.shap_values(sample))
    ours = trees.predict(sample, pred_contrib=True, num_threads=cores)[:, :-1]
    table = _table_builds(runtime)
    record("shap", {**table, "rows": len(x), "trees": trees.num_trees(), "cores": cores,
                    "lightgbm_pred_contrib_leads_per_s_all_cores": int(ours_all),
                    "lightgbm_pred_contrib_leads_per_s_one_core": int(ours_one),
                    "peer_shap_tree_explainer_leads_per_s": int(peer),
                    "max_abs_difference_log_odds": float(np.max(np.abs(ours - theirs)))})


if __name__ == "__main__":
    main()
