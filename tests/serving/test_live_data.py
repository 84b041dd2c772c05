"""New data while serving: `leadlens ingest` publishes a warehouse snapshot and the running
service (two workers, over real HTTP) picks it up without a failed request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import duckdb
import httpx
import pandas as pd

from core.warehouse_snapshots import current_warehouse
from tests.serving.test_http import KEY, _start, _stop, _wait_ready

POLL_SECONDS = 2.0
RPS = 30
SECONDS = 60


def _delta(crm, path, as_of: pd.Timestamp, n: int = 20) -> list[str]:
    """`n` new open leads (copies of open leads' rows under new ids, created a day before the
    served as_of, so it does not move), written as a contract leads file."""
    leads = crm.leads.drop(columns=["contact_email"], errors="ignore")
    open_rows = leads[leads["converted_at"].isna() & leads["closed_lost_at"].isna()].head(n)
    new = open_rows.assign(lead_id=[f"DELTA{i:04d}" for i in range(len(open_rows))],
                           created_at=(as_of - pd.Timedelta(days=1)).isoformat())
    new.to_csv(path, index=False)
    return new["lead_id"].tolist()


def _steady_load(base: str, body: dict, stop_at: float, out: list) -> None:
    """POST at RPS until `stop_at` (paced, one keep-alive connection); each answer's status,
    or the exception's name."""
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=10) as c:
        t0, i = time.monotonic(), 0
        while time.monotonic() < stop_at:
            wait = t0 + i / RPS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                out.append(c.post(f"{base}/score", json=body, headers=auth).status_code)
            except httpx.HTTPError as err:
                out.append(type(err).__name__)
            i += 1


def test_ingest_while_serving_fails_no_request_and_new_leads_are_answered(served_home,
                                                                          tmp_path):
    runtime, _, crm = served_home
    home = tmp_path / "live-home"
    shutil.copytree(runtime.home, home, ignore=shutil.ignore_patterns(
        "bentoml", "serve-*.log", "compiled", "model-cache"))
    config = tmp_path / "live.yaml"
    config.write_text(f"serve:\n  poll_seconds: {POLL_SECONDS}\n")
    env = {"LEADLENS_CONFIG": str(config)}
    proc, base = _start(home, env)
    statuses: list = []
    try:
        _wait_ready(base)
        auth = {"Authorization": f"Bearer {KEY}"}
        before = httpx.get(f"{base}/model", headers=auth).json()
        assert before["warehouse_snapshot"] == "legacy"  # the copied home predates snapshots
        as_of = pd.Timestamp(before["as_of"])
        new_ids = _delta(crm, tmp_path / "delta.csv", as_of)
        probe = {"leads": [{"lead_id": new_ids[0]}], "explain": 3}
        assert httpx.post(f"{base}/score", json=probe, headers=auth).status_code == 404

        open_id = crm.leads.loc[crm.leads["converted_at"].isna()
                                & crm.leads["closed_lost_at"].isna(), "lead_id"].iloc[-1]
        load = threading.Thread(target=_steady_load, args=(
            base, {"leads": [{"lead_id": open_id}], "explain": 3},
            time.monotonic() + SECONDS, statuses))
        load.start()
        time.sleep(10)
        done = subprocess.run(
            [sys.executable, "-m", "leadlens", "ingest", "--leads", str(tmp_path / "delta.csv")],
            env={**os.environ, "LEADLENS_HOME": str(home), **env}, capture_output=True,
            text=True, timeout=300)
        ended = time.monotonic()
        assert done.returncode == 0, done.stderr[-2000:]
        # every worker answers the new leads: 20 answers in a row, each on a new connection
        streak, answered = 0, None
        while streak < 20:
            assert time.monotonic() - ended < 60, "the new leads were never answered"
            ok = httpx.post(f"{base}/score", json=probe, headers=auth).status_code == 200
            streak = streak + 1 if ok else 0
            if ok and answered is None:
                answered = time.monotonic() - ended
            if not ok:
                answered = None
            time.sleep(0.05)
        load.join()
        after = httpx.get(f"{base}/model", headers=auth).json()
    finally:
        log = _stop(proc)
    failed = [s for s in statuses if s != 200]
    print(f"{len(statuses)} requests during the ingest, {len(failed)} failed; new leads "
          f"answered {answered:.2f} s after the ingest ended (poll every {POLL_SECONDS} s)")
    assert len(statuses) >= RPS * SECONDS * 0.9 and not failed, failed[:10]
    # within a poll, plus the new snapshot's checks and scored-leads table (built before it
    # is published: about a second here)
    assert answered is not None and answered <= POLL_SECONDS + 3.0
    assert after["warehouse_snapshot"] == "000001" and after["as_of"] == before["as_of"]
    assert "now serving snapshot 000001" in log


WRITE_KEY = "write-key-" + "w" * 24


def test_pushed_rows_are_validated_queued_and_merged_while_serving(served_home, tmp_path):
    runtime, _, crm = served_home
    home = tmp_path / "push-home"
    shutil.copytree(runtime.home, home, ignore=shutil.ignore_patterns(
        "bentoml", "serve-*.log", "compiled", "model-cache"))
    config = tmp_path / "push.yaml"
    config.write_text("serve:\n  poll_seconds: 1.0\n")
    proc, base = _start(home, {"LEADLENS_CONFIG": str(config), "LEADLENS_WRITE_KEYS": WRITE_KEY})
    write = {"Authorization": f"Bearer {WRITE_KEY}"}
    read = {"Authorization": f"Bearer {KEY}"}
    try:
        _wait_ready(base)
        as_of = pd.Timestamp(httpx.get(f"{base}/model", headers=read).json()["as_of"])
        when = (as_of - pd.Timedelta(days=2)).isoformat()
        rows = [{"lead_id": f"PUSH{i}", "created_at": when, "source": "web",
                 "owner_rep_id": crm.reps["rep_id"].iloc[0], "contact_email": "a@b.example"}
                for i in range(3)]
        rows.append({"lead_id": "PUSH-BAD", "source": "web"})  # no created_at
        body = {"rows": rows}
        assert httpx.post(f"{base}/ingest/leads", json=body).status_code == 401
        assert httpx.post(f"{base}/ingest/leads", json=body, headers=read).status_code == 403
        assert httpx.post(f"{base}/score", json={"leads": [{"lead_id": "L000002"}]},
                          headers=write).status_code == 401  # a write key cannot read
        bad = httpx.post(f"{base}/ingest/leads", content=b"{not json", headers={
            **write, "Content-Type": "application/json"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]

        leads = httpx.post(f"{base}/ingest/leads", json=body, headers=write)
        assert leads.status_code == 202, leads.text
        out = leads.json()
        assert (out["received"], out["accepted"], out["quarantined"]) == (4, 3, 1)
        assert out["errors"] == [{"row": 3, "column": "created_at", "rule": "missing_value",
                                  "message": "column 'created_at' is required"}]
        assert out["dropped_personal_columns"] == ["contact_email"]
        assert (home / "quarantine" / out["quarantine_file"]).exists()
        acts = httpx.post(f"{base}/ingest/activities", headers=write, json={"rows": [
            {"activity_id": "PUSH-A1", "lead_id": "PUSH0", "occurred_at": when, "type": "call",
             "direction": "outbound", "rep_id": rows[0]["owner_rep_id"]}]})
        assert acts.status_code == 202 and acts.json()["accepted"] == 1, acts.text
        queued = list((home / "drop").glob("push-*/leads.csv"))
        assert all("a@b.example" not in p.read_text() for p in queued)

        deadline, streak = time.monotonic() + 30, 0
        probe = {"leads": [{"lead_id": "PUSH0"}], "explain": 3}
        while streak < 20:  # both workers answer the pushed lead
            assert time.monotonic() < deadline, "the pushed lead was never answered"
            ok = httpx.post(f"{base}/score", json=probe, headers=read).status_code == 200
            streak = streak + 1 if ok else 0
            time.sleep(0.05)
        info = httpx.get(f"{base}/model", headers=read).json()
    finally:
        log = _stop(proc)
    assert info["warehouse_snapshot"] != "legacy"
    assert not list((home / "drop").glob("push-*"))  # every batch merged
    assert len(list((home / "drop" / "loaded").iterdir())) == 2
    with duckdb.connect(str(current_warehouse(home)), read_only=True) as con:
        leads = {r[0] for r in con.execute(
            "SELECT lead_id FROM leads WHERE lead_id LIKE 'PUSH%'").fetchall()}
        acts = con.execute("SELECT lead_id FROM activities WHERE activity_id = 'PUSH-A1'"
                           ).fetchall()
    assert leads == {"PUSH0", "PUSH1", "PUSH2"} and acts == [("PUSH0",)]
    assert "warehouse poll: now serving snapshot" in log
