"""Flat exports with defaults alone: training settings follow the mapping, new leads are scored
at their creation, won-only outcomes, and exports without any date (one value, or spread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from core.export_profile import PROFILE_FILE
from core.settings import EngagementConfig, load_runtime
from core.warehouse import Warehouse
from core.warehouse_snapshots import current_warehouse
from features.engagement import batch_features
from leadlens.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEADLENS_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, status: int = 0) -> str:
        out = runner.invoke(main, list(args), catch_exceptions=False)
        assert out.exit_code == status, out.output
        return out.output

    return invoke


def _export(n: int, seed: int = 3) -> pd.DataFrame:
    """A made-up one-row-per-lead funnel: industry and size drive conversion."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["tech", "retail", "health", "finance"], n)
    employees = rng.lognormal(4, 1.2, n).round()
    logit = -1.6 + 1.3 * (industry == "tech") - 0.6 * (industry == "retail") \
        + 0.35 * (np.log(employees) - 4)
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 365, n)),
                                                           unit="D")
    return pd.DataFrame({"Lead Number": [f"L{i}" for i in range(n)],
                         "Created": created.strftime("%Y-%m-%d %H:%M"),
                         "Status": np.where(won, "Converted", "Not converted"),
                         "Industry": industry, "Employees": employees.astype(int),
                         "Channel": rng.choice(["web", "event"], n)})


MAPPING = {"lead_id": {"column": "Lead Number"}, "created_at": {"column": "Created"},
           "outcome": {"column": "Status", "won": ["Converted"], "known_after_days": 3},
           "source": {"column": "Channel"}}


def _write(tmp_path: Path, frame: pd.DataFrame, mapping: dict, name: str) -> tuple[Path, Path]:
    data, spec = tmp_path / f"{name}.csv", tmp_path / f"{name}.yaml"
    frame.to_csv(data, index=False)
    spec.write_text(yaml.safe_dump(mapping))
    return data, spec


def test_training_follows_the_mapping_and_new_leads_are_scored_at_creation(run, tmp_path):
    data, spec = _write(tmp_path, _export(3000), MAPPING, "funnel")
    run("ingest", "--source", str(spec), "--leads", str(data))
    assert (tmp_path / "home" / PROFILE_FILE).is_file()
    runtime = load_runtime()
    assert runtime.settings.train.conversion_examples == "creation"
    assert runtime.settings.train.horizon_days == 4  # outcomes dated 3 days after creation
    assert runtime.settings.engagement.open_lead_expiry_days is None  # losses are recorded
    out = run("train", "--model", "conversion")
    assert "setting train.conversion_examples: creation" in out
    assert "setting train.horizon_days: 4 (outcomes are dated 3 days after creation" in out
    line = next(x for x in out.splitlines() if x.startswith("  leadlens-conversion v1"))
    assert float(line.split("test AUC ")[1].split(" ")[0]) > 0.65
    # a config that sets the horizon wins over the mapping
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  horizon_days: 10\n")
    assert load_runtime(config).settings.train.horizon_days == 10
    run("promote", "--model", "conversion")

    new = _export(40, seed=9)
    new_path = tmp_path / "new leads.csv"
    new.drop(columns=["Status"]).to_csv(new_path, index=False)
    out = run("score", "--source", str(spec), "--input", str(new_path), "--out",
              str(tmp_path / "scored.csv"))
    assert "40 leads scored (40 at their creation" in out
    scored = pd.read_csv(tmp_path / "scored.csv", parse_dates=["as_of"])
    assert (scored["as_of"] == pd.to_datetime(new["Created"])).all()
    out = run("score", "--source", str(spec), "--input", str(new_path), "--out",
              str(tmp_path / "later.csv"), "--as-of", "2025-06-01")
    assert "40 leads scored (as of 2025-06-01 00:00:00)" in out


def test_won_dates_without_lost_dates(run, tmp_path):
    frame = _export(1500)
    frame["Won On"] = np.where(frame["Status"] == "Converted",
                               (pd.to_datetime(frame["Created"]) + pd.Timedelta(days=20))
                               .dt.strftime("%Y-%m-%d"), "")
    mapping = {"lead_id": {"column": "Lead Number"}, "created_at": {"column": "Created"},
               "converted_at": {"column": "Won On"}, "source": {"column": "Channel"},
               "exclude": {"other": ["Status"]}}
    data, spec = _write(tmp_path, frame, mapping, "won-only")
    run("ingest", "--source", str(spec), "--leads", str(data))
    out = run("summary")
    assert "losses are not recorded" in out and "of resolved leads" not in out
    engagement = load_runtime().settings.engagement
    assert engagement.open_lead_expiry_days == 90  # the label's horizon
    assert "setting engagement.open_lead_expiry_days: 90" in run("train", "--model",
                                                                  "lead_quality")
    # the source's track record counts the leads whose 90-day horizon has passed, won or not;
    # without the expiry it would count the wins alone
    pairs = pd.DataFrame({"lead_id": ["L1400"], "as_of": [pd.Timestamp("2025-01-01")]})
    with Warehouse(current_warehouse(tmp_path / "home"), read_only=True) as wh:
        rate = batch_features(wh.con, pairs, engagement, [])[
            "source_past_conversion_rate"].iloc[0]
        wins_only = batch_features(wh.con, pairs, EngagementConfig(), [])[
            "source_past_conversion_rate"].iloc[0]
    truth = (frame["Status"] == "Converted").mean()
    assert 0.5 * truth < rate < 1.5 * truth and rate < 0.9
    assert wins_only > 0.95


def test_exports_without_dates_one_value_or_spread(run, tmp_path):
    frame = _export(600).drop(columns=["Created"])
    mapping = {**MAPPING, "created_at": {"value": "2023-06-30"}}
    data, spec = _write(tmp_path, frame, mapping, "snapshot")
    out = run("ingest", "--source", str(spec), "--leads", str(data))
    assert "every lead dated 2023-06-30 00:00:00 (a snapshot export)" in out
    out = run("train", "--model", "conversion", status=1)
    assert "all 600 leads were created at 2023-06-30 00:00:00" in out
    assert "cannot be split by time; `created_at.spread` dates rows in file order" in out
    # with a later cutoff every horizon is observed: the time split itself refuses
    run("ingest", "--source", str(spec), "--leads", str(data), "--as-of", "2023-08-01")
    out = run("train", "--model", "conversion", status=1)
    assert "cannot be cut into train, validation and test periods" in out

    mapping = {**MAPPING, "created_at": {"spread": {"start": "2023-01-01",
                                                    "end": "2023-12-31"}}}
    data, spec = _write(tmp_path, frame, mapping, "spread")
    out = run("ingest", "--source", str(spec), "--leads", str(data))
    assert "600 rows spread evenly from 2023-01-01 00:00:00 to 2023-12-31 00:00:00" in out
    with Warehouse(current_warehouse(tmp_path / "home"), read_only=True) as wh:
        created = wh.con.execute(
            "SELECT created_at FROM leads ORDER BY CAST(substr(lead_id, 2) AS INT)").df()
    gaps = created["created_at"].diff().dropna()
    assert created["created_at"].iloc[0] == pd.Timestamp("2023-01-01")
    assert created["created_at"].iloc[-1] == pd.Timestamp("2023-12-31")
    assert (gaps - gaps.iloc[0]).abs().max() < pd.Timedelta(seconds=1)


def test_promote_refuses_a_column_filled_after_the_fact_unless_forced(run, tmp_path):
    frame = _export(3000, seed=5)
    rng = np.random.default_rng(1)
    won = frame["Status"] == "Converted"
    # filled by sales after contact: mostly for the leads that went on to convert
    graded = np.where(won, rng.random(len(frame)) < 0.9, rng.random(len(frame)) < 0.15)
    frame["Lead Quality"] = np.where(graded, rng.choice(["High", "Medium", "Low"], len(frame)),
                                     "")
    data, spec = _write(tmp_path, frame, MAPPING, "graded")
    run("ingest", "--source", str(spec), "--leads", str(data))
    out = run("train", "--model", "conversion")
    assert "POSSIBLE LEAKAGE: lead_quality empty for" in out
    out = run("promote", "--model", "conversion", status=2)
    assert "possible leakage: lead_quality empty for" in out
    assert "probably filled after the fact" in out and "leave it out (`exclude.leaky`" in out
    out = run("promote", "--model", "conversion", "--force", "--reason", "checked: set at entry")
    assert "v1 is now @champion" in out
