"""SIGTERM during `leadlens train` ends the MLflow runs as KILLED and moves no alias."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from core.settings import SimulateConfig
from leadlens.simulator.crm import simulate_crm


def _statuses(db) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return [r[0] for r in con.execute("SELECT status FROM runs")]
    except sqlite3.Error:
        return []


def test_sigterm_marks_runs_killed(tmp_path, crm_loader):
    crm = simulate_crm(SimulateConfig(leads=12_000, reps=20, months=12, seed=3))
    runtime = crm_loader(tmp_path / "home", crm)
    env = {**os.environ, "LEADLENS_HOME": str(runtime.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "leadlens", "train"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = runtime.home / "mlflow.db"
    deadline = time.time() + 120
    while time.time() < deadline and "RUNNING" not in _statuses(db):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert "RUNNING" in _statuses(db)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "marked KILLED" in err
    statuses = _statuses(db)
    assert statuses and set(statuses) == {"KILLED"}, statuses
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM registered_model_aliases").fetchone()[0] == 0
