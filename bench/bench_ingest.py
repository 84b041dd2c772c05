"""Ingest speed: LeadLens's validated ingest against a peer that loads the same CSV files into
DuckDB with `read_csv_auto` and no validation at all (the cost of checking every row).

Usage: python bench/bench_ingest.py [--leads 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
from _common import peak_rss_gib, record, timed

from core.settings import IngestConfig, SimulateConfig
from core.warehouse import Warehouse
from ingest.load import ingest_files
from leadlens.simulator.crm import simulate_crm, write_crm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"simulating {args.leads:,} leads", file=sys.stderr)
        paths = write_crm(simulate_crm(SimulateConfig(leads=args.leads, reps=200)), root / "crm")
        rows = sum(1 for _ in paths["activities"].open()) - 1
        with Warehouse(root / "ll.duckdb") as wh, timed() as ours:
            ingest_files(wh, IngestConfig(), root / "q", leads=paths["leads"],
                         activities=paths["activities"], reps=paths["reps"],
                         progress=lambda m: print(m, file=sys.stderr))
        with timed() as peer:
            con = duckdb.connect(str(root / "peer.duckdb"))
            for name in ("reps", "leads", "activities"):
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv_auto(?)",  # noqa: S608 (fixed table names; path bound)
                            [str(paths[name])])
            con.close()
    print(f"ingest {args.leads:,} leads + {rows:,} activities")
    record("ingest", {
        "leads": args.leads,
        "activities": rows,
        "leadlens_seconds": round(ours["seconds"], 2),
        "peer_duckdb_read_csv_auto_no_validation_seconds": round(peer["seconds"], 2),
        "rows_per_second": round((args.leads + rows) / ours["seconds"]),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    })


if __name__ == "__main__":
    main()
