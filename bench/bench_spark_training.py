"""Training from Spark: how large a sample the fit needs, against training on every example.

A simulated CRM (`leadlens simulate`, the demo or a `--world`) is written as contract files.
The conversion model is trained
- on the warehouse with every example (`leadlens ingest` + `leadlens train`: the peer), and
- from Spark `local[2]` (`leadlens train --engine spark`) with `spark.train_sample_rows` at
  several sizes: the fit on a stratified sample of whole leads, the replay judged on Spark on
  every lead open at the replay origin (the same book for every run).
Printed per run: the snapshots fitted on, replay AUC, AUC minus the logistic baseline's with its
90% interval, ECE, wall time and the peak resident memory of the process tree (Python driver,
JVM and workers; sampled every 0.2 s). The memory the fit needs per sampled example is derived
from the two largest samples: the Python driver's own peak (where the fit runs) grows with the
sample; the JVM's is what `spark.driver_memory` lets it take.

Usage: python bench/bench_spark_training.py [--leads 30000] [--world NAME]
                                            [--samples 10000 30000 100000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import leadlens, record, with_peak_memories


def _run(home: Path, *args: str) -> dict[str, float]:
    """`leadlens ARGS` in a process of its own: wall time and peak tree memory."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "leadlens", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**{k: v for k, v in os.environ.items()
                                     if k != "MLFLOW_TRACKING_URI"},  # `_judged` sets it
                                  "LEADLENS_HOME": str(home)})
    output, (tree, own) = with_peak_memories(child)
    if child.returncode != 0:
        raise RuntimeError(f"leadlens {' '.join(args)} failed:\n{output[-3000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_gib": round(tree, 2),
            "python_peak_gib": round(own, 2)}


def _judged(home: Path) -> dict[str, object]:
    """The conversion model's replay figures, from the home's MLflow store."""
    import mlflow

    from core.names import CONVERSION, registered_name
    from core.registry import configure, load_version, model_versions

    configure(f"sqlite:///{home / 'mlflow.db'}")
    name = registered_name(CONVERSION)
    versions = model_versions(name)  # newest first
    if not versions or versions[0].run_id is None:
        raise RuntimeError(f"no registered {name} in {home}")
    m = mlflow.MlflowClient().get_run(versions[0].run_id).data.metrics
    noise = load_version(name, versions[0].version).meta["test_noise"]
    return {"replay_fit_snapshots": int(m["train_examples"]), "book": int(m["test_examples"]),
            "positives": int(m["test_positives"]),
            "auc": round(m["test_lightgbm_roc_auc"], 4),
            "logistic_auc": round(m["test_logistic_roc_auc"], 4),
            "auc_vs_logistic": f"{noise['auc_vs_logistic']:+.4f} "
                               f"({noise['auc_vs_logistic_low']:+.4f} to "
                               f"{noise['auc_vs_logistic_high']:+.4f})",
            "ece": round(m["test_lightgbm_ece"], 4)}


def main() -> None:
    """Make or reuse the CRM, train the peer and each sample size, print and record."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leads", type=int, default=30_000)
    ap.add_argument("--world", default=None)
    ap.add_argument("--samples", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-spark-training-"))
    data = work / "crm"
    if not (data / "leads.csv").exists():
        print(f"simulating {args.leads:,} leads", file=sys.stderr)
        leadlens(work / "sim-home", "simulate", "--out", str(data), "--leads", str(args.leads),
                 *(["--world", args.world] if args.world else []))
    files = [f"--{t}" for t in ("leads", "activities", "reps")]
    peer = work / "home-duckdb"
    print("the peer: every example, on the warehouse", file=sys.stderr)
    ingest = ["ingest", *[a for f in files for a in (f, str(data / f"{f[2:]}.csv"))]]
    cutoff = data / "cutoff.txt"
    if cutoff.exists():
        ingest += ["--as-of", cutoff.read_text().strip()]
    ingested = _run(peer, *ingest)
    rows = [{"engine": "duckdb", "sample_rows": "all", **_run(peer, "train", "--model",
                                                              "conversion"), **_judged(peer)}]
    rows[0]["ingest_seconds"] = ingested["seconds"]
    print(json.dumps(rows[0]), file=sys.stderr)
    for n in sorted(args.samples):
        home = work / f"home-spark-{n}"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "leadlens.yaml"
        config.write_text(f"spark:\n  master: local[2]\n  shuffle_partitions: 8\n"
                          f"  driver_memory: 6g\n  train_sample_rows: {n}\n")
        print(f"Spark, spark.train_sample_rows {n:,}", file=sys.stderr)
        run = _run(home, "--config", str(config), "train", "--engine", "spark", "--data",
                   str(data), "--model", "conversion")
        rows.append({"engine": "spark local[2]", "sample_rows": n, **run, **_judged(home)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    spark_rows = [r for r in rows if r["engine"] != "duckdb"]
    figures: dict[str, object] = {"leads": args.leads, "world": args.world or "demo",
                                  "runs": rows}
    if len(spark_rows) >= 2:
        a, b = spark_rows[-2], spark_rows[-1]
        extra = int(b["sample_rows"]) - int(a["sample_rows"])  # examples brought over
        if extra > 0:
            per_row = (float(b["python_peak_gib"]) - float(a["python_peak_gib"])
                       ) / extra * 1024**3
            figures["python_driver_bytes_per_sampled_example"] = round(per_row)
            figures["python_driver_gib_per_million_sampled"] = round(per_row * 1e6 / 1024**3, 2)
    record("spark_training", figures)


if __name__ == "__main__":
    main()
