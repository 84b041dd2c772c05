"""Simulator speed: 100k leads (target: under 60 s on this machine), then ~1M activities.

No peer exists for the simulator; the figure is compared against the target.
Usage: python bench/bench_simulate.py [--leads 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_gib, record, timed
from tqdm import tqdm

from core.settings import SimulateConfig
from leadlens.simulator.crm import simulate_crm, write_crm


def run(leads: int) -> dict[str, object]:
    cfg = SimulateConfig(leads=leads, reps=max(40, leads // 500), months=18, seed=7)
    with tqdm(desc=f"simulate {leads:,} leads", unit="step", file=sys.stderr) as bar, \
            timed() as sim:
        crm = simulate_crm(cfg, progress=lambda _s: bar.update(1))
    with tempfile.TemporaryDirectory() as tmp, timed() as wr:
        write_crm(crm, Path(tmp))
    return {
        "leads": leads,
        "activities": len(crm.activities),
        "simulate_seconds": round(sim["seconds"], 2),
        "write_csv_seconds": round(wr["seconds"], 2),
        "total_seconds": round(sim["seconds"] + wr["seconds"], 2),
        "target_seconds": 60,
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, nargs="*", default=[100_000, 200_000])
    args = parser.parse_args()
    for n in args.leads:
        print(f"simulate + write CSV, {n:,} leads")
        record("simulate", run(n))


if __name__ == "__main__":
    main()
