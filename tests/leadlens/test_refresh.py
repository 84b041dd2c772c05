"""`leadlens refresh` over a year of monthly deltas from a drifting CRM, with the service up:
the history grows every month, the drift alarm fires in the months the simulator drifts and in
no calm month, the service answers throughout and shows the history and the alarms; a second
run at the same time is refused; retraining runs through the promotion gates."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from leadlens.simulator.worlds import CALM_MONTHS, DELTA_MONTHS, DRIFT_MONTHS
from tests.serving.test_http import KEY, _start, _stop, _wait_ready

AUTH = {"Authorization": f"Bearer {KEY}"}


def _cli(home: Path, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leadlens", *args], capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "LEADLENS_HOME": str(home), **(env or {})})


@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    """A home with the drifting world's initial export ingested and its models promoted, and
    the twelve monthly deltas beside it."""
    root = tmp_path_factory.mktemp("drifting")
    home, crm = root / "home", root / "crm"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    done = _cli(home, "simulate", "--world", "drifting", "--deltas", "monthly", "--leads", "2000",
                "--out", str(crm))
    assert done.returncode == 0, done.stderr[-2000:]
    first = crm / "initial"
    cutoff = (first / "cutoff.txt").read_text().strip()
    done = _cli(home, "ingest", "--leads", str(first / "leads.csv"), "--activities",
                str(first / "activities.csv"), "--reps", str(first / "reps.csv"),
                "--as-of", cutoff)
    assert done.returncode == 0, done.stderr[-2000:]
    done = _cli(home, "train")
    assert done.returncode == 0, done.stderr[-3000:]
    done = _cli(home, "promote")  # exit 2: some model did not pass its gates
    assert "leadlens-conversion: v1 is now @champion" in done.stdout, done.stdout
    return home, crm


def _load(base: str, lead_id: str, stop: threading.Event, out: list) -> None:
    with httpx.Client(timeout=10) as c:
        while not stop.is_set():
            try:
                out.append(c.post(f"{base}/score", json={"leads": [{"lead_id": lead_id}],
                                                          "explain": 3}, headers=AUTH).status_code)
            except httpx.HTTPError as err:
                out.append(type(err).__name__)
            time.sleep(0.1)


def test_a_year_of_refreshes_with_the_service_up(drifting, tmp_path):
    home, crm = drifting
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  poll_seconds: 1.0\n")
    env = {"LEADLENS_CONFIG": str(config)}
    lead_id = pd.read_csv(crm / "initial" / "leads.csv", dtype=str)["lead_id"].iloc[-1]
    proc, base = _start(home, env)
    statuses: list = []
    stop = threading.Event()
    months: dict[int, dict] = {}
    try:
        _wait_ready(base)
        load = threading.Thread(target=_load, args=(base, lead_id, stop, statuses))
        load.start()
        for m in range(1, DELTA_MONTHS + 1):
            delta = crm / "deltas" / f"{m:02d}"
            shutil.copytree(delta, home / "drop" / f"{m:02d}")
            done = _cli(home, "refresh", "--no-retrain", "--now",
                        (delta / "cutoff.txt").read_text().strip(), env=env)
            assert done.returncode in (0, 3), done.stdout + done.stderr[-2000:]
            months[m] = {"status": done.returncode, "out": done.stdout,
                         "history_files": len(list((home / "history").glob("*.parquet")))}
            assert (home / "drop" / "loaded").is_dir() and not (home / "drop" / f"{m:02d}").exists()
        # the same refresh again: nothing new to load, the same as_of's records replaced
        again = _cli(home, "refresh", "--no-retrain", "--now", "2026-07-01", env=env)
        assert "loaded deltas: none" in again.stdout
        assert len(list((home / "history").glob("*.parquet"))) == DELTA_MONTHS
        time.sleep(3)  # a poll or two: both workers serve the last snapshot
        info = httpx.get(f"{base}/model", headers=AUTH).json()
        story = httpx.get(f"{base}/leads/{lead_id}/history", headers=AUTH)
        unknown = httpx.get(f"{base}/leads/NO-SUCH-LEAD/history", headers=AUTH)
        metrics = httpx.get(f"{base}/metrics", headers=AUTH).text
        page = httpx.get(f"{base}/ui/api/lead", params={"id": lead_id}, headers=AUTH).json()
        stop.set()
        load.join()
    finally:
        stop.set()
        _stop(proc)

    assert [months[m]["history_files"] for m in months] == list(range(1, DELTA_MONTHS + 1))
    drifted = {m for m, r in months.items() if "feature_drift" in r["out"]}
    assert drifted == set(DRIFT_MONTHS) and not drifted & set(CALM_MONTHS), drifted
    for r in months.values():  # exit status 3 exactly when an alarm fired
        assert (r["status"] == 3) == ("alarms: 0" not in r["out"])

    failed = [s for s in statuses if s != 200]
    assert len(statuses) > 100 and not failed, failed[:10]
    assert info["warehouse_snapshot"] == f"{DELTA_MONTHS + 1:06d}"
    assert info["as_of"].startswith("2026-07-01")
    assert any(a["check"] == "feature_drift" for a in info["monitoring"]["alarms"])
    assert 'leadlens_monitor_alarm{check="feature_drift"} 1' in metrics
    assert 'leadlens_feature_psi{feature="source"}' in metrics

    assert unknown.status_code == 404
    assert story.status_code == 200, story.text
    body = story.json()
    assert 2 <= len(body["history"]) <= DELTA_MONTHS  # recorded while it was open
    assert body["trend"] in ("Improving", "Steady", "Declining")
    move = body["last_move"]
    assert move is not None and move["reasons"] and all("label" in r for r in move["reasons"])
    assert abs(move["change_points"] - (body["history"][-1]["score"]
                                        - body["history"][-2]["score"]) * 100) < 1e-6
    assert "<svg" in page["history_svg"] and page["history"]["trend"] == body["trend"]


def test_one_refresh_at_a_time_and_retraining_goes_through_the_gates(drifting):
    home, _crm = drifting
    with (home / "refresh.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = _cli(home, "refresh", "--no-retrain")
        fcntl.flock(held, fcntl.LOCK_UN)
    assert busy.returncode == 75 and "another refresh is running" in busy.stderr
    done = _cli(home, "refresh", "--retrain", "--now", "2026-07-01")
    assert done.returncode in (0, 3), done.stdout + done.stderr[-3000:]
    assert "retrained (asked for (--retrain)); promoted:" in done.stdout
    assert "leadlens-conversion: v2" in done.stderr  # the gates judged the new version
