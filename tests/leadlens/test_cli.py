"""The CLI end to end on a small simulated CRM, in a temporary LEADLENS_HOME."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from leadlens.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEADLENS_CONFIG", raising=False)
    # MLflow exports the URI it was last pointed at; each test has its own store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in the current folder
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_help_lists_every_command_and_each_has_help(run):
    out = run("--help")
    assert out.exit_code == 0
    for cmd in ("simulate", "ingest", "summary", "features", "reps", "train", "promote", "models"):
        assert cmd in out.output
        sub = run(cmd, "--help")
        assert sub.exit_code == 0 and "Usage:" in sub.output


def test_simulate_ingest_summary(run, tmp_path):
    crm = tmp_path / "crm"
    out = run("simulate", "--out", str(crm), "--leads", "2000", "--reps", "8", "--months", "6")
    assert out.exit_code == 0, out.output
    assert {p.name for p in crm.iterdir()} == {"leads.csv", "activities.csv", "reps.csv", "truth"}
    out = run("ingest", "--leads", str(crm / "leads.csv"),
              "--activities", str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    assert out.exit_code == 0, out.output
    assert "leads       read     2,000  loaded     2,000" in out.output
    assert "dropped as personal data (by name, ingest.personal_data_columns): contact_email" \
        in out.output
    assert (tmp_path / "home" / "warehouse" / "CURRENT").is_file()  # a published snapshot
    out = run("summary")
    assert out.exit_code == 0
    assert "2,000 leads" in out.output and "conversion rate" in out.output

    feats = tmp_path / "features.parquet"
    out = run("features", "--as-of", "2025-05-01T00:00:00+02:00", "--leads", "all",
              "--out", str(feats))
    assert out.exit_code == 0, out.output
    frame = pd.read_parquet(feats)
    assert (frame["as_of"] == pd.Timestamp("2025-04-30 22:00:00")).all()
    assert (frame["lead_age_days"] >= 0).all() and len(frame) > 500
    assert {"industry", "company_size", "country"} <= set(frame.columns)
    assert "contact_email" not in frame.columns

    out = run("features", "--list")
    assert "`outbound_touches`" in out.output and "`company_size`" in out.output

    out = run("reps", "--metrics-only", "--period", "2025-Q2", "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) == 8 and {"new_leads", "calls_to_new_leads", "calls_to_previous_leads",
                               "followups_to_engaged_leads", "proposals"} <= set(rows[0])
    assert sum(r["new_leads"] for r in rows) > 0
    out = run("reps", "--metrics-only", "--top", "2")
    assert out.exit_code == 0 and "top and bottom 2" in out.output
    out = run("reps", "--period", "soon")
    assert out.exit_code != 0 and "2025-Q1" in out.output


def test_ingest_failure_exits_non_zero_with_the_reason(run, tmp_path):
    bad = tmp_path / "leads.csv"
    bad.write_text("lead_id,owner_rep_id\nL1,R1\n")
    out = run("ingest", "--leads", str(bad))
    assert out.exit_code != 0
    assert "required column(s) missing: created_at" in out.output


def test_bad_config_names_the_key(run, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("simulate:\n  lead: 5\n")
    out = run("--config", str(cfg), "simulate", "--out", str(tmp_path / "x"))
    assert out.exit_code != 0
    assert "simulate.lead" in out.output


def test_summary_without_warehouse_says_what_to_do(run):
    out = run("summary")
    assert out.exit_code != 0 and "leadlens ingest" in out.output


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "leadlens"
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "simulate" in done.stdout


def test_train_promote_models(run, tmp_path):
    crm = tmp_path / "crm"
    # the command flow, on a CRM whose replay the model wins (with seed 7 the replayed LightGBM
    # loses to logistic regression by a credible margin and the gate refuses it; the gate
    # itself is tested in tests/training/test_promote.py)
    run("simulate", "--out", str(crm), "--leads", "8000", "--reps", "16", "--months", "12",
        "--seed", "4")
    run("ingest", "--leads", str(crm / "leads.csv"), "--activities",
        str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    out = run("train", "--model", "conversion", "--until", "2025-12-01T00:00:00Z")
    assert out.exit_code == 0, out.output
    assert "leadlens-conversion v1: test AUC" in out.output
    assert "(until 2025-12-01 00:00:00)" in out.output
    out = run("promote", "--model", "conversion")
    assert out.exit_code == 0 and "v1 is now @champion" in out.output
    out = run("models")
    assert "v1 @champion: AUC" in out.output
    assert "leadlens-dropout (dropout): no versions" in out.output
    # scoring says how much of what it scored lies outside the training range
    out = run("score", "--open", "--out", str(tmp_path / "scored.csv"))
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("outside the training range"))
    assert "of leads on lead_age_days" in line and "of leads on days_since_last_touch" in line
    # percentiles in the open book: every open lead scored, so they span (0, 100]
    import pandas as pd

    scored = pd.read_csv(tmp_path / "scored.csv")
    assert scored["percentile"].max() == 100.0 and scored["percentile"].min() < 1
    # the compiled-trees engine gives the same scores (and caches its library in the home)
    out = run("score", "--open", "--engine", "compiled", "--out", str(tmp_path / "fast.csv"))
    assert out.exit_code == 0, out.output
    fast = pd.read_csv(tmp_path / "fast.csv")
    assert (fast["lead_id"] == scored["lead_id"]).all()
    assert np.abs(fast["score"] - scored["score"]).max() <= 1e-6  # both rounded to 6 places
    assert list((tmp_path / "home" / "compiled").glob("*.so"))
    best = scored.sort_values("score").iloc[-1]["lead_id"]
    # the next steps of an open lead, and its reasons, in plain words
    out = run("next-steps", best, "--format", "json")
    assert out.exit_code == 0, out.output
    import json

    plan = json.loads(out.output)
    assert {"call", "email", "meeting"} <= {s["action"] for s in plan["steps"]}
    assert [s["points"] for s in plan["steps"]] == sorted((s["points"] for s in plan["steps"]),
                                                        reverse=True)
    assert "not a promise" in plan["caveat"]
    out = run("next-steps", best)
    assert "next steps, as the model sees them" in out.output and "another call" in out.output
    out = run("explain", best, "--top", "5")
    assert out.exit_code == 0 and "_" not in out.output.split("\n", 1)[1], out.output
    # the replay repeated at earlier data ends: one row each, 30 days apart
    out = run("backtest", "--origins", "2", "--every", "30", "--until", "2025-12-01T00:00:00Z")
    assert out.exit_code == 0, out.output
    rows = [x for x in out.output.splitlines() if x.startswith("| 2025-")]
    assert [r.split("|")[1].strip() for r in rows] == ["2025-12-01", "2025-11-01"]
    assert all(0.5 < float(r.split("|")[6]) <= 1 for r in rows)  # the model's replay AUC
    # walk forward: oldest origin first; the first step's frozen model is the retrained one
    out = run("backtest", "--origins", "2", "--every", "30d", "--retrain",
              "--until", "2025-12-01T00:00:00Z")
    assert out.exit_code == 0, out.output
    steps = [[c.strip() for c in x.split("|")[1:-1]] for x in out.output.splitlines()
             if x.startswith("| 1 |") or x.startswith("| 2 |")]
    assert [s[0] for s in steps] == ["1", "2"] and steps[0][1] < steps[1][1]
    assert steps[0][4:6] == steps[0][6:8]  # at the first origin both are the same model
    assert all(0.5 < float(s[4]) <= 1 and 0.5 < float(s[6]) <= 1 for s in steps)
    assert "never retrained" in out.output
    assert run("backtest", "--every", "monthly").exit_code == 2


def test_train_refuses_too_little_data(run, tmp_path):
    crm = tmp_path / "crm"
    run("simulate", "--out", str(crm), "--leads", "300", "--reps", "4", "--months", "6")
    run("ingest", "--leads", str(crm / "leads.csv"), "--activities",
        str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    out = run("train", "--model", "conversion")
    assert out.exit_code == 1
    assert "not enough data to train the conversion model" in out.output
    assert "need at least" in out.output and "positives and" in out.output
    # promote says the real cause of each missing model, as training recorded it
    out = run("promote")
    assert out.exit_code == 0, out.output
    assert ("conversion: no versions to promote; skipped (not enough data to train the "
            "conversion model") in out.output
    assert "dropout: no versions to promote; skipped (not trained yet" in out.output


def test_rep_report_formats(run, tmp_path):
    crm = tmp_path / "crm"
    run("simulate", "--out", str(crm), "--leads", "8000", "--reps", "16", "--months", "12")
    run("ingest", "--leads", str(crm / "leads.csv"), "--activities",
        str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    out = run("reps")
    assert out.exit_code == 1 and "run `leadlens train`" in out.output
    assert run("reps", "--metrics-only").exit_code == 0  # no models needed
    # without a dropout-expected model: the conversion side, and what is missing and why
    run("train", "--model", "lead_quality")
    out = run("reps", "--from", "2025-04-01", "--to", "2025-09-30")
    assert out.exit_code == 0, out.output
    assert ("dropouts not judged: no leadlens-dropout-expected model (not trained yet"
            in out.output)
    assert "Flagged reps:" in out.output and "O/E" in out.output
    run("train", "--model", "dropout_expected")
    out = run("reps", "--from", "2025-04-01", "--to", "2025-09-30", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output[out.output.index("{"):])
    assert "not a basis for employment decisions" in data["note"]
    assert data["not_judged"] == []
    assert len(data["reps"]) == 16
    rep = data["reps"][0]
    for key in ("rep_id", "team", "period", "metrics", "conversions", "expected_conversions",
                "oe_ratio", "oe_interval", "status", "flags", "quota_attainment", "peers"):
        assert key in rep, key
    assert set(rep["metrics"]) == {"new_leads", "calls_to_new_leads", "calls_to_previous_leads",
                                   "followups_to_engaged_leads", "proposals"}
    assert rep["status"] in ("flagged", "ok", "insufficient_data")
    assert rep["oe_interval"][0] <= rep["oe_ratio"] <= rep["oe_interval"][1]
    page = tmp_path / "reps.html"
    out = run("reps", "--from", "2025-04-01", "--to", "2025-09-30", "--format", "html",
              "--out", str(page))
    assert out.exit_code == 0, out.output
    text = page.read_text()
    assert "<svg" in text and "employment decisions" in text  # the dashboard's chart, inline
    # self-contained: nothing fetched from anywhere (the SVG namespace URI is a name, not a fetch)
    assert not re.search(r"(src|href|url)\s*[=(]\s*['\"]?https?:", text)
    out = run("reps", "--from", "2025-04-01", "--to", "2025-09-30", "--flagged-only")
    assert "Flagged reps:" in out.output
    # who was compared with whom: 16 reps in teams too small to set their own typical rep
    assert "Compared with: every rep (16 reps)" in out.output
    # the models learned a 90-day horizon: a config that says 60 days is refused, not mixed in
    other = tmp_path / "horizon60.yaml"
    other.write_text("train:\n  horizon_days: 60\n")
    out = run("--config", str(other), "reps", "--from", "2025-04-01", "--to", "2025-09-30")
    assert out.exit_code == 1
    assert "train.horizon_days is 60 in the config but 90 in the model" in out.output
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_ingest_while_a_reader_holds_the_warehouse_publishes_a_new_snapshot(run, tmp_path):
    """A reader (as `leadlens serve` is) keeps its snapshot open and unchanged while an ingest
    loads a delta into a new snapshot and publishes it; the delta merges by id."""
    from core.warehouse_snapshots import current_warehouse, snapshot_id

    crm = tmp_path / "crm"
    run("simulate", "--out", str(crm), "--leads", "300", "--reps", "4", "--months", "3")
    args = ("ingest", "--leads", str(crm / "leads.csv"), "--activities",
            str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    assert run(*args).exit_code == 0
    home = tmp_path / "home"
    held = current_warehouse(home)
    assert snapshot_id(held) == "000001" and not (home / "warehouse.duckdb").exists()
    holder = subprocess.Popen([sys.executable, "-c",
                               "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], "
                               "read_only=True); print('held', flush=True); sys.stdin.readline(); "
                               "print(c.execute('SELECT count(*) FROM leads').fetchone()[0])",
                               str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        leads = pd.read_csv(crm / "leads.csv", dtype=str)
        delta = leads.head(5).assign(lead_id=lambda f: "NEW" + f["lead_id"])
        delta.to_csv(tmp_path / "delta.csv", index=False)
        out = run("ingest", "--leads", str(tmp_path / "delta.csv"))
        assert out.exit_code == 0, out.output
        assert "loaded         5 (5 new, 0 updated)" in out.output
        assert snapshot_id(current_warehouse(home)) == "000002"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "300"  # its snapshot did not change
    finally:
        holder.kill()
    assert "305 leads" in run("summary").output


@pytest.mark.slow
def test_train_goes_on_past_a_model_without_enough_data(run, tmp_path):
    """A model with too few positives is skipped with its reason; the others are trained and
    registered, and the command succeeds while the conversion model trains."""
    from core.settings import load_runtime
    from training.pipeline import train_models

    crm = tmp_path / "crm"
    run("simulate", "--out", str(crm), "--leads", "3000", "--reps", "8", "--months", "12")
    run("ingest", "--leads", str(crm / "leads.csv"), "--activities",
        str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    first = train_models(load_runtime(), kinds=("conversion", "lead_quality"),
                         say=lambda _m: None)

    def fewest_judged(kind: str) -> int:  # the smaller class of its validation or test split
        c = first.results[kind].counts
        judged = c[c["split"] != "train"]
        return int(min(judged["positives"].min(), judged["negatives"].min()))

    low, high = fewest_judged("lead_quality"), fewest_judged("conversion")
    assert low < high  # lead quality is judged on one example per lead: fewer positives
    config = tmp_path / "strict.yaml"
    config.write_text(f"train:\n  min_per_class_eval: {(low + high + 1) // 2}\n")
    out = run("--config", str(config), "train", "--model", "lead_quality",
              "--model", "conversion")
    assert out.exit_code == 0, out.output
    assert "leadlens-conversion v2: test AUC" in out.output
    assert "lead_quality: not trained (not enough data to train the lead_quality model" \
        in out.output
    config.write_text(f"train:\n  min_per_class_eval: {high + 1}\n")
    out = run("--config", str(config), "train", "--model", "conversion")
    assert out.exit_code == 1 and "not enough data to train the conversion model" in out.output
