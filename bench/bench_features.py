"""Feature speed: engagement features for 1M (lead, as_of) pairs over a simulated CRM with
about 10M activities, in the DuckDB warehouse, against a straightforward pandas implementation
of the same features (`bench/pandas_peer.py`) in the same run; the two outputs must match.

Targets on the 2-core machine: at most 30 s and 6 GiB peak memory, and at least 5x faster than
the pandas peer. Each side runs in its own process so its peak memory is its own.

Usage: python bench/bench_features.py [--leads 2000000] [--pairs 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import peak_rss_gib, record, timed  # noqa: E402

from core.settings import EngagementConfig, SimulateConfig  # noqa: E402


def prepare(root: Path, leads: int, pairs: int) -> dict[str, int]:
    from tqdm import tqdm

    from core.warehouse import Warehouse
    from leadlens.simulator.crm import simulate_crm

    with tqdm(desc=f"simulate {leads:,} leads", unit="step", file=sys.stderr) as bar:
        crm = simulate_crm(SimulateConfig(leads=leads, reps=max(40, leads // 500), seed=7),
                           progress=lambda _s: bar.update(1))
    print(f"loading {len(crm.activities):,} activities into DuckDB", file=sys.stderr)
    with Warehouse(root / "w.duckdb") as wh:
        wh.upsert("reps", crm.reps)
        wh.upsert("leads", crm.leads.drop(columns=["contact_email"]),
                  {"industry": "text", "company_size": "numeric", "country": "text"})
        wh.upsert("activities", crm.activities)
    rng = np.random.default_rng(1)
    pick = crm.leads.sample(pairs, random_state=2)[["lead_id", "created_at"]]
    offset = pd.to_timedelta(rng.uniform(0, 240, len(pick)), unit="D")
    pd.DataFrame({"lead_id": pick["lead_id"].to_numpy(),
                  "as_of": (pick["created_at"] + offset).dt.floor("s").to_numpy()}
                 ).to_parquet(root / "pairs.parquet")
    return {"leads": leads, "activities": len(crm.activities), "pairs": pairs}


def run_side(root: Path, side: str) -> None:
    """One side, in this (child) process: compute, save, print seconds and peak memory."""
    import duckdb

    pairs = pd.read_parquet(root / "pairs.parquet")
    cfg = EngagementConfig()
    if side == "ours":
        from features.engagement import batch_features

        con = duckdb.connect(str(root / "w.duckdb"), read_only=True)
        with timed() as t:
            out = batch_features(con, pairs, cfg)
    else:
        from pandas_peer import pandas_features

        con = duckdb.connect(str(root / "w.duckdb"), read_only=True)
        leads = con.execute("SELECT * FROM leads").df()
        acts = con.execute("SELECT * FROM activities").df()
        con.close()
        with timed() as t:
            out = pandas_features(leads, acts, pairs, cfg)
    out.to_parquet(root / f"{side}.parquet")
    print(json.dumps({"seconds": t["seconds"], "peak_rss_gib": peak_rss_gib()}))


def _child(root: Path, side: str) -> dict[str, float]:
    print(f"running {side}", file=sys.stderr)
    done = subprocess.run([sys.executable, __file__, "--side", side, "--root", str(root)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_output(root: Path) -> bool:
    a, b = pd.read_parquet(root / "ours.parquet"), pd.read_parquet(root / "peer.parquet")
    for col in a.columns:
        x, y = a[col], b[col]
        if x.dtype.kind == "f":
            if not np.allclose(x.fillna(-1e18), y.astype("float64").fillna(-1e18),
                               rtol=1e-9, atol=1e-9):
                print(f"mismatch in {col}", file=sys.stderr)
                return False
        elif not (x.astype(str) == y.astype(str)).all():
            print(f"mismatch in {col}", file=sys.stderr)
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=2_000_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args.root, args.side)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = prepare(root, args.leads, args.pairs)
        ours = _child(root, "ours")
        peer = _child(root, "peer")
        print(f"features for {size['pairs']:,} pairs over {size['leads']:,} leads and "
              f"{size['activities']:,} activities")
        record("features", {
            **size,
            "leadlens_duckdb_seconds": round(ours["seconds"], 1),
            "leadlens_peak_rss_gib": round(ours["peak_rss_gib"], 2),
            "peer_pandas_seconds": round(peer["seconds"], 1),
            "peer_peak_rss_gib": round(peer["peak_rss_gib"], 2),
            "speedup_vs_pandas": round(peer["seconds"] / ours["seconds"], 1),
            "outputs_match": same_output(root),
            "targets": "<= 30 s, <= 6 GiB, >= 5x pandas",
        })


if __name__ == "__main__":
    main()
