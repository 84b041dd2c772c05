"""The drifting world as an initial export and monthly deltas: the layout, point-in-time rows,
upserting back to the world, and drift only in the months it documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from core.settings import IngestConfig
from core.timestamps import record_cutoff
from core.warehouse import Warehouse
from ingest.load import ingest_files
from leadlens.cli import main
from leadlens.simulator.worlds import (
    BASE_DRIFT_MONTHS,
    CALM_MONTHS,
    DELTA_MONTHS,
    DRIFT_MONTHS,
    MIX_DRIFT_MONTHS,
    WORLDS,
    WorldCRM,
    build_world,
    world,
)

LEADS = 1500
TIMES = {"leads": ("created_at", "converted_at", "closed_lost_at"),
         "activities": ("occurred_at",)}
KEYS = {"leads": "lead_id", "activities": "activity_id"}


def _read(path: Path, table: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={KEYS[table]: str})
    for col in TIMES[table]:
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.tz_localize(None)
    return frame


def _exports(out: Path) -> list[tuple[Path, pd.Timestamp, dict[str, pd.DataFrame]]]:
    """(folder, cutoff, frames) for the initial export, then each delta in order."""
    folders = [out / "initial"] + [out / "deltas" / f"{m:02d}" for m in range(1, 13)]
    return [(f, pd.Timestamp((f / "cutoff.txt").read_text().strip()),
             {t: _read(f / f"{t}.csv", t) for t in KEYS}) for f in folders]


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, WorldCRM]:
    out = tmp_path_factory.mktemp("drifting") / "out"
    result = CliRunner().invoke(main, ["simulate", "--world", "drifting", "--leads", str(LEADS),
                                       "--deltas", "monthly", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output, build_world(world("drifting", leads=LEADS))


@pytest.fixture(scope="module")
def by_month(simulated: tuple[Path, str, WorldCRM]) -> pd.DataFrame:
    """Per delta month, measured from the files as a monitor would: the new leads and the paid
    channel's share of them, and the conversions in the month over the leads open at its
    start."""
    out, _, _ = simulated
    exports = _exports(out)
    state = exports[0][2]["leads"]
    rows = []
    for m, (_, cutoff, frames) in enumerate(exports[1:], start=1):
        start = exports[m - 1][1]
        open_at_start = int((state["converted_at"].isna() & state["closed_lost_at"].isna()).sum())
        leads = frames["leads"]
        new = leads[leads["created_at"] >= start]
        won = int(((leads["converted_at"] >= start) & (leads["converted_at"] < cutoff)).sum())
        rows.append((m, len(new), float((new["source"] == "paid").mean()), won, open_at_start))
        state = pd.concat([state, leads]).drop_duplicates("lead_id", keep="last")
    table = pd.DataFrame(rows, columns=["month", "new", "paid_share", "won", "open"])
    return table.set_index("month").assign(conversion=lambda t: t["won"] / t["open"])


def test_the_drift_months_are_exposed_and_cover_the_year():
    drifting = WORLDS["drifting"]
    assert drifting.drift_months == DRIFT_MONTHS == tuple(range(5, 13))
    assert CALM_MONTHS == (1, 2, 3, 4) and not set(CALM_MONTHS) & set(DRIFT_MONTHS)
    assert set(CALM_MONTHS) | set(DRIFT_MONTHS) == set(range(1, DELTA_MONTHS + 1))
    assert set(BASE_DRIFT_MONTHS) < set(MIX_DRIFT_MONTHS) == set(DRIFT_MONTHS)
    assert all(w.drift_months == () for w in WORLDS.values() if w is not drifting)


def test_the_folder_layout_and_the_summary_lines(simulated):
    out, output, crm = simulated
    assert sorted(p.name for p in out.iterdir()) == ["deltas", "initial", "truth"]
    assert sorted(p.name for p in (out / "initial").iterdir()) == [
        "activities.csv", "cutoff.txt", "leads.csv", "reps.csv"]
    assert sorted(p.name for p in (out / "deltas").iterdir()) == [f"{m:02d}" for m in
                                                                   range(1, 13)]
    for m in range(1, 13):
        assert sorted(p.name for p in (out / "deltas" / f"{m:02d}").iterdir()) == [
            "activities.csv", "cutoff.txt", "leads.csv"]
        assert f"deltas/{m:02d} (cutoff " in output
    assert "new leads" in output and "changed" in output
    cutoffs = [c for _, c, _ in _exports(out)]
    assert cutoffs[-1] == crm.cutoff == pd.Timestamp((out / "truth" / "cutoff.txt").read_text()
                                                     .strip())
    assert cutoffs == [crm.cutoff - pd.DateOffset(months=12 - k) for k in range(13)]
    assert pd.read_csv(out / "initial" / "reps.csv").equals(crm.reps)
    assert len(pd.read_csv(out / "truth" / "open_leads.csv")) == len(crm.truth)


def test_every_row_is_known_at_its_cutoff(simulated):
    out, _, _ = simulated
    exports = _exports(out)
    previous = pd.Timestamp.min
    for folder, cutoff, frames in exports:
        leads, acts = frames["leads"], frames["activities"]
        assert len(leads) and len(acts), folder
        assert (leads["created_at"] < cutoff).all(), folder
        for col in ("converted_at", "closed_lost_at"):
            assert (leads[col].isna() | (leads[col] < cutoff)).all(), (folder, col)
        assert (leads["deal_amount"].notna() == leads["converted_at"].notna()).all(), folder
        assert acts["occurred_at"].between(previous, cutoff, inclusive="left").all(), folder
        # a delta's leads are new in its month or had their outcome set in it
        outcome = leads["converted_at"].fillna(leads["closed_lost_at"])
        assert ((leads["created_at"] >= previous) | (outcome >= previous)).all(), folder
        previous = cutoff


def test_initial_then_deltas_upserted_give_the_world_at_its_cutoff(simulated):
    out, _, crm = simulated
    exports = _exports(out)
    state = {t: exports[0][2][t] for t in KEYS}
    for _, _, frames in exports[1:]:
        assert frames["activities"]["lead_id"].isin(
            pd.concat([state["leads"], frames["leads"]])["lead_id"]).all()
        state = {t: pd.concat([state[t], frames[t]]).drop_duplicates(KEYS[t], keep="last")
                 for t in KEYS}
    for t, key in KEYS.items():
        want = getattr(crm, t)
        got = state[t][list(want.columns)]
        pd.testing.assert_frame_equal(_sorted(got, key), _sorted(want, key), check_dtype=False)


def test_the_deltas_ingest_in_order_with_their_cutoffs(simulated, tmp_path):
    out, _, crm = simulated
    with Warehouse(tmp_path / "w.duckdb") as wh:
        for folder, cutoff, _ in _exports(out):
            reps = folder / "reps.csv"
            summary = ingest_files(wh, IngestConfig(), tmp_path / "q",
                                   leads=folder / "leads.csv",
                                   activities=folder / "activities.csv",
                                   reps=reps if reps.exists() else None)
            assert not summary.quarantine_files, (folder, summary.quarantine_files)
            record_cutoff(wh.con, cutoff)
        won = wh.con.execute("SELECT count(*), count(converted_at) FROM leads").fetchone()
    assert won == (len(crm.leads), crm.leads["converted_at"].notna().sum())


def test_the_source_mix_drifts_from_month_5(by_month):
    share = by_month["paid_share"]
    calm, drift = share.loc[list(CALM_MONTHS)], share.loc[list(MIX_DRIFT_MONTHS)]
    assert calm.max() == 0 and drift.min() > 0.2
    pooled = np.average(drift, weights=by_month.loc[list(MIX_DRIFT_MONTHS), "new"])
    assert abs(pooled - 0.4) < 0.08


def test_the_conversion_rate_falls_from_month_8(by_month):
    def rate(months: tuple[int, ...]) -> float:
        t = by_month.loc[list(months)]
        return float(t["won"].sum() / t["open"].sum())

    mix_only = tuple(m for m in MIX_DRIFT_MONTHS if m not in BASE_DRIFT_MONTHS)
    calm, mixed, fallen = rate(CALM_MONTHS), rate(mix_only), rate(BASE_DRIFT_MONTHS)
    assert fallen < 0.7 * calm and fallen < 0.7 * mixed, (calm, mixed, fallen)


def test_deltas_need_a_world_and_a_year_of_history(tmp_path):
    runner = CliRunner()
    alone = runner.invoke(main, ["simulate", "--deltas", "monthly", "--out", str(tmp_path / "a")])
    assert alone.exit_code == 2 and "give --world too" in alone.output
    weekly = runner.invoke(main, ["simulate", "--world", "drifting", "--deltas", "weekly",
                                  "--out", str(tmp_path / "b")])
    assert weekly.exit_code == 2
    short = runner.invoke(main, ["simulate", "--world", "small", "--leads", "100", "--months",
                                 "10", "--deltas", "monthly", "--out", str(tmp_path / "c")])
    assert short.exit_code == 2 and "more than 12 months" in short.output
    assert not (tmp_path / "c").exists()
