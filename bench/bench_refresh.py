"""`leadlens refresh` over a year, and the time of one refresh on a large CRM.

Part 1 (drift): the drifting world (`leadlens simulate --world drifting --deltas monthly`)
through its 12 monthly deltas, twice from the same start: once never retraining
(`--no-retrain`), once with the default policy (retrain on a drift or performance alarm, or
every `retrain.every_days`; the promotion gates decide), with the service up on the retraining
home and a client asking it for a lead ten times a second throughout. Printed per month: the
alarms of each arm, and the ECE of the scores each arm recorded that month on the leads then
open, judged at the end on whether they converted within the horizon: the calibration a manager
saw, with and without retraining. The world goes on `AFTER_DAYS` after its last delta
(`simulate --after-days`, `truth/after.csv`, never given to LeadLens) so that the last months
can be judged too.

Part 2 (scale): a 100k-lead CRM (the demo simulator) ingested up to a day before its end, its
models trained and promoted, then one refresh loading the last day as a delta (topped up to
1,000 lead rows, 1% of the leads, with unchanged rows sent again, as CRMs export every touched
row): seconds per step and in all.

Usage: python bench/bench_refresh.py [--part drift|scale|all] [--leads 10000] [--big 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from _common import free_port, leadlens, record, wait_ok

KEY = "bench-key-" + "k" * 24
AFTER_DAYS = 92
"""Days the drifting world goes on after its last delta, to judge the last refreshes' scores."""


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    # 2: a promotion refused; 3: a refresh that raised an alarm
    return leadlens(home, *args, ok=(0, 2, 3))


def _start_home(home: Path, export: Path) -> None:
    cutoff = (export / "cutoff.txt").read_text().strip()
    _cli(home, "ingest", "--leads", str(export / "leads.csv"), "--activities",
         str(export / "activities.csv"), "--reps", str(export / "reps.csv"), "--as-of", cutoff)
    _cli(home, "train")
    _cli(home, "promote")


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    from core.calibration_metrics import expected_calibration_error

    return expected_calibration_error(y, p)


def _recorded_ece(home: Path, final: Path, crm: Path, horizon_days: int) -> dict[str, float]:
    """Per refresh recorded in the home's history: ECE of its scores against conversion within
    the horizon, judged on the final data and what became of the open leads after the world's
    cutoff (`truth/after.csv`), for refreshes whose horizon ends inside what is known."""
    import duckdb

    from core.warehouse_snapshots import current_warehouse

    with duckdb.connect(str(current_warehouse(final)), read_only=True) as con:
        won = con.execute("SELECT lead_id, converted_at FROM leads WHERE converted_at IS NOT "
                          "NULL").df().set_index("lead_id")["converted_at"]
        end = pd.Timestamp(con.execute("SELECT max(cutoff) FROM export_cutoffs").fetchall()[0][0])
    after_path = crm / "truth" / "after.csv"
    if after_path.exists():
        after = pd.read_csv(after_path, parse_dates=["converted_at"])
        later = after.dropna(subset=["converted_at"]).set_index("lead_id")["converted_at"]
        won = pd.concat([won, later.dt.tz_localize(None) if later.dt.tz else later])
        end = end + pd.Timedelta(days=AFTER_DAYS)
    out = {}
    for path in sorted((home / "history").glob("scores-*.parquet")):
        rows = pd.read_parquet(path)
        as_of = pd.Timestamp(rows["as_of"].iloc[0])
        if as_of + pd.Timedelta(days=horizon_days) > end:
            continue
        at = rows["lead_id"].map(won)
        y = ((at >= as_of) & (at < as_of + pd.Timedelta(days=horizon_days))).to_numpy(float)
        out[f"{as_of:%Y-%m}"] = round(_ece(y, rows["score"].to_numpy(float)), 4)
    return out


def _refusals(log: str, name: str) -> list[str]:
    """The reasons (not the notes) a refresh's promotion of `name` printed when it refused."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{name}: v") and "NOT promoted" in line:
            block = []
            for follow in lines[i + 1:]:
                if not follow.startswith("  "):
                    break
                block.append(follow.strip())
            return [b[2:] for b in block if b.startswith("- ") and not b.startswith("- note")]
    return []


def _ask(base: str, lead: str, stop: threading.Event, out: list) -> None:
    """Ask the service for one lead ten times a second until `stop`: (status, ms) each."""
    import httpx

    with httpx.Client(timeout=10) as c:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                status = c.post(f"{base}/score", json={"leads": [{"lead_id": lead}],
                                                       "explain": 3},
                                headers={"Authorization": f"Bearer {KEY}"}).status_code
            except httpx.HTTPError:
                status = 0
            out.append((status, (time.perf_counter() - t) * 1000))
            time.sleep(0.1)


def drift_part(leads: int, root: Path) -> dict[str, object]:
    crm = root / "crm"
    _cli(root, "simulate", "--world", "drifting", "--deltas", "monthly", "--leads", str(leads),
         "--after-days", str(AFTER_DAYS), "--out", str(crm))
    homes = {arm: root / arm for arm in ("no_retrain", "retrain")}
    print("training the starting models", file=sys.stderr)
    _start_home(homes["no_retrain"], crm / "initial")
    import shutil

    shutil.copytree(homes["no_retrain"], homes["retrain"])  # the same start for both arms
    port = free_port()
    env = {**os.environ, "LEADLENS_HOME": str(homes["retrain"]), "LEADLENS_API_KEYS": KEY,
           "BENTOML_HOME": str(homes["retrain"] / "bentoml")}
    server = subprocess.Popen([sys.executable, "-m", "leadlens", "serve", "--port", str(port)],
                              env=env, stdout=(root / "serve.log").open("w"),
                              stderr=subprocess.STDOUT)
    months: list[dict[str, object]] = []
    try:
        wait_ok(f"http://127.0.0.1:{port}/readyz", server)
        lead = pd.read_csv(crm / "initial" / "leads.csv", dtype=str)["lead_id"].iloc[-1]
        stop, answers = threading.Event(), list[tuple[int, float]]()
        load = threading.Thread(target=_ask, args=(f"http://127.0.0.1:{port}", lead, stop,
                                                    answers))
        load.start()
        for m in range(1, 13):
            delta = crm / "deltas" / f"{m:02d}"
            now = (delta / "cutoff.txt").read_text().strip()
            row: dict[str, object] = {"month": m}
            for arm, home in homes.items():
                shutil.copytree(delta, home / "drop" / f"{m:02d}")
                t = time.perf_counter()
                done = _cli(home, "refresh", "--now", now,
                            *(["--no-retrain"] if arm == "no_retrain" else []))
                row[f"{arm}_seconds"] = round(time.perf_counter() - t, 1)
                row[f"{arm}_alarms"] = [line.split(":")[0].strip() for line in
                                        done.stdout.splitlines() if line.startswith("  ")]
                if arm == "retrain":
                    row["retrain_promoted"] = next((line.split("promoted: ")[1] for line in
                                                    done.stdout.splitlines()
                                                    if "promoted: " in line), "")
                    row["conversion_refused"] = _refusals(done.stderr, "leadlens-conversion")
            print(f"month {m:2d}: {row}", file=sys.stderr)
            months.append(row)
        stop.set()
        load.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    horizon = 90
    ece = {arm: _recorded_ece(home, homes["retrain"], crm, horizon) for arm, home in homes.items()}
    return {"drift_world_leads": leads, "months": months,
            "recorded_ece_no_retrain": ece["no_retrain"], "recorded_ece_retrain": ece["retrain"],
            "service_during_refreshes": {
                "requests": len(answers), "failed": sum(a[0] != 200 for a in answers),
                "p50_ms": round(float(np.percentile([a[1] for a in answers], 50)), 2),
                "p99_ms": round(float(np.percentile([a[1] for a in answers], 99)), 2)}}


def scale_part(leads: int, root: Path) -> dict[str, object]:
    from core.settings import SimulateConfig
    from leadlens.simulator.crm import simulate_crm
    from leadlens.simulator.deltas import known_at

    print(f"simulating {leads:,} leads", file=sys.stderr)
    crm = simulate_crm(SimulateConfig(leads=leads, reps=80, months=18, seed=5))
    lead_rows = crm.leads.drop(columns=["contact_email"], errors="ignore")
    ts = pd.to_datetime(crm.activities["occurred_at"])
    end = max(ts.max(), pd.to_datetime(lead_rows["created_at"]).max()) + pd.Timedelta(seconds=1)
    cut = end - pd.Timedelta(days=1)
    typed = lead_rows.assign(**{c: pd.to_datetime(lead_rows[c]) for c in (
        "created_at", "converted_at", "closed_lost_at")})
    first = root / "initial"
    first.mkdir(parents=True)
    known_at(typed, cut).to_csv(first / "leads.csv", index=False)
    crm.activities[ts < cut].to_csv(first / "activities.csv", index=False)
    crm.reps.to_csv(first / "reps.csv", index=False)
    (first / "cutoff.txt").write_text(cut.isoformat())
    home = root / "home"
    t = time.perf_counter()
    _start_home(home, first)
    setup = time.perf_counter() - t
    outcome = typed["converted_at"].fillna(typed["closed_lost_at"])
    changed = typed[(typed["created_at"] >= cut) | ((outcome >= cut) & (outcome < end))]
    resent = typed[~typed["lead_id"].isin(changed["lead_id"]) & (typed["created_at"] < cut)]
    pad = max(0, leads // 100 - len(changed))
    delta_leads = pd.concat([known_at(changed, end), known_at(resent.sample(
        pad, random_state=0), cut)]) if pad else known_at(changed, end)
    delta = home / "drop" / "day"
    delta.mkdir(parents=True)
    delta_leads.to_csv(delta / "leads.csv", index=False)
    day_acts = crm.activities[ts >= cut]
    day_acts.to_csv(delta / "activities.csv", index=False)
    (delta / "cutoff.txt").write_text(end.isoformat())
    t = time.perf_counter()
    done = _cli(home, "refresh", "--no-retrain", "--now", end.isoformat())
    refresh = time.perf_counter() - t
    t = time.perf_counter()
    _cli(home, "refresh", "--retrain", "--now", end.isoformat())
    with_retrain = time.perf_counter() - t
    print(done.stdout, file=sys.stderr)
    return {"scale_leads": leads, "scale_delta_lead_rows": len(delta_leads),
            "scale_delta_new_or_changed_leads": len(changed),
            "scale_delta_activities": len(day_acts),
            "scale_setup_ingest_train_promote_seconds": round(setup, 1),
            "scale_refresh_seconds": round(refresh, 1),
            "scale_refresh_with_retraining_seconds": round(with_retrain, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("drift", "scale", "all"), default="all")
    ap.add_argument("--leads", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    args = ap.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="leadlens-bench-refresh-") as tmp:
        if args.part in ("drift", "all"):
            figures.update(drift_part(args.leads, Path(tmp) / "drift"))
        if args.part in ("scale", "all"):
            figures.update(scale_part(args.big, Path(tmp) / "scale"))
    record("refresh", figures)


if __name__ == "__main__":
    main()
