"""The five rep metrics on a small hand-built CRM whose answers were worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from core.periods import date_range, last_full_quarter, parse_period
from core.settings import EngagementConfig, IngestConfig
from core.warehouse import Warehouse
from ingest.load import ingest_frames
from reps.metrics import format_rep_metrics, rep_metrics

REPS = pd.DataFrame({"rep_id": ["R1", "R2"], "team": ["east", "west"],
                     "monthly_quota": [1000, 2000]})
LEADS = pd.DataFrame(
    [
        ("N1", "2025-01-03", "R1", "2025-01-25", None, 3000),
        ("N2", "2025-01-05", "R1", None, "2025-01-28", None),
        ("N3", "2024-11-01", "R2", None, None, None),
        ("N4", "2025-01-10", "R2", None, None, None),
        ("N5", "2025-02-02", "R1", None, None, None),
    ],
    columns=["lead_id", "created_at", "owner_rep_id", "converted_at", "closed_lost_at",
             "deal_amount"],
)
ACTS = pd.DataFrame(
    [
        ("a1", "N1", "R1", "2025-01-04", "call", "outbound", "no_answer", None),
        ("a2", "N1", "R1", "2025-01-06", "call", "outbound", "voicemail", None),
        ("a3", "N1", None, "2025-01-07", "email", "inbound", "replied", None),
        ("a4", "N1", "R1", "2025-01-08", "meeting", "outbound", "held", None),
        ("a5", "N1", "R1", "2025-01-12", "proposal", "outbound", "sent", 3000),
        ("a6", "N1", "R1", "2025-01-15", "call", "outbound", "connected", None),
        ("b1", "N2", None, "2025-01-06", "call", "outbound", "no_answer", None),
        ("b2", "N2", "R1", "2025-01-25", "call", "outbound", "no_answer", None),
        ("b3", "N2", "R1", "2025-01-26", "proposal", "outbound", "sent", 1000),
        ("c1", "N3", "R2", "2024-11-02", "call", "outbound", "connected", None),
        ("c2", "N3", None, "2024-11-03", "email", "inbound", "replied", None),
        ("c3", "N3", "R2", "2025-01-05", "call", "outbound", "connected", None),
        ("d1", "N4", "R1", "2025-01-20", "email", "outbound", "sent", None),
        ("d2", "N4", "R2", "2025-01-21", "call", "outbound", "no_answer", None),
        ("e1", "N5", "R1", "2025-02-03", "call", "outbound", "no_answer", None),
    ],
    columns=["activity_id", "lead_id", "rep_id", "occurred_at", "type", "direction", "outcome",
             "amount"],
)


@pytest.fixture
def con(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), tmp_path / "q",
                      {"reps": REPS, "leads": LEADS, "activities": ACTS})
        yield wh.con


def _by_rep(con, period) -> dict[str, dict]:
    frame = rep_metrics(con, period, EngagementConfig())
    return {r["rep_id"]: r for r in frame.to_dict("records")}


def test_january_by_hand(con):
    m = _by_rep(con, parse_period("2025-01"))
    r1, r2 = m["R1"], m["R2"]
    # 1. new leads identified
    assert (r1["new_leads"], r2["new_leads"]) == (2, 1)
    # 2. calls to new leads (b1 has no rep_id: credited to the owner) and follow-up depth
    assert (r1["calls_to_new_leads"], r2["calls_to_new_leads"]) == (4, 1)
    assert r1["new_leads_first_touched"] == 2 and r1["depth_judged_leads"] == 2
    assert r1["followup_depth_median"] == 3  # N1: 5 touches in a row; N2: quiet 19 days after 1
    assert r1["reached_fifth_followup_share"] == 0.5
    # N4's two touches end on Jan 21; the data ends 13 days later, so whether R2 went quiet
    # is unknown: N4 is not judged
    assert r2["new_leads_first_touched"] == 1 and r2["depth_judged_leads"] == 0
    assert pd.isna(r2["followup_depth_median"]) and pd.isna(r2["reached_fifth_followup_share"])
    # 3. calls to previous leads: c3 after 63 silent days
    assert (r1["calls_to_previous_leads"], r2["calls_to_previous_leads"]) == (0, 1)
    # 4. follow-ups to engaged leads: a4, a5, a6 after N1's reply; c3 after N3's reply
    assert (r1["followups_to_engaged_leads"], r2["followups_to_engaged_leads"]) == (3, 1)
    # 5. proposals: count, total, mean
    assert (r1["proposals"], r1["proposal_total"], r1["proposal_mean"]) == (2, 4000, 2000)
    assert r2["proposals"] == 0 and pd.isna(r2["proposal_mean"])
    # outcomes
    assert (r1["conversions"], r1["resolved_leads"], r1["conversion_rate"]) == (1, 2, 0.5)
    assert r1["won_revenue"] == 3000 and r1["quota_attainment"] == 3.0
    assert r2["quota_attainment"] == 0 and pd.isna(r2["conversion_rate"])
    assert r1["median_days_to_first_touch"] == 1 and r2["median_days_to_first_touch"] == 10
    assert r1["team"] == "east" and r1["period"] == "2025-01"


def test_quarter_and_range_and_team(con):
    q = _by_rep(con, parse_period("2025-Q1"))
    assert q["R1"]["new_leads"] == 3 and q["R1"]["calls_to_new_leads"] == 5
    assert q["R1"]["quota_attainment"] == pytest.approx(3000 / (1000 * 3))
    r = _by_rep(con, date_range("2025-01-01", "2025-01-05"))
    assert r["R1"]["calls_to_new_leads"] == 1 and r["R2"]["calls_to_previous_leads"] == 1
    west = rep_metrics(con, parse_period("2025-01"), EngagementConfig(), team="west")
    assert list(west["rep_id"]) == ["R2"]
    assert "R1" in format_rep_metrics(rep_metrics(con, parse_period("2025-01"),
                                                  EngagementConfig()))


def test_thresholds_come_from_the_config(con):
    loose = EngagementConfig(quiet_days=30, dormant_days=90)
    m = {r["rep_id"]: r for r in rep_metrics(con, parse_period("2025-01"), loose).to_dict("records")}
    # N2 keeps all 3 touches in its streak but was declined two days after the last: closed
    # before a fifth follow-up was due, so only N1 (5) is judged
    assert m["R1"]["depth_judged_leads"] == 1 and m["R1"]["followup_depth_median"] == 5
    assert m["R2"]["calls_to_previous_leads"] == 0


@pytest.mark.parametrize("bad", ["2025-13x", "Q1", "last month"])
def test_bad_period_says_what_works(bad):
    with pytest.raises(ValueError, match="2025-Q1"):
        parse_period(bad)


def test_last_full_quarter():
    assert last_full_quarter(pd.Timestamp("2026-06-30 23:59:59.999999")).label == "2026-Q2"
    assert last_full_quarter(pd.Timestamp("2026-06-15")).label == "2026-Q1"


def test_a_rep_whose_leads_all_close_fast_is_not_judged_on_depth(tmp_path):
    """R3's leads get two calls each and are declined within days: none was abandoned. R4
    stops after two calls on leads that stay open: those are the leads behind a depth flag."""
    from reps.metrics import lead_depths

    reps = pd.DataFrame({"rep_id": ["R3", "R4"], "team": ["t", "t"], "monthly_quota": [1, 1]})
    leads, acts = [], []
    for i in range(6):
        day = pd.Timestamp("2025-03-01") + pd.Timedelta(days=i)
        for rep in ("R3", "R4"):
            lid = f"{rep}-{i}"
            closed = str((day + pd.Timedelta(days=4)).date()) if rep == "R3" else None
            leads.append((lid, str(day.date()), rep, None, closed, None))
            acts += [(f"{lid}-{k}", lid, rep, str((day + pd.Timedelta(days=k + 1)).date()),
                      "call", "outbound", "no_answer", None) for k in range(2)]
    acts.append(("late", "R4-0", "R4", "2025-05-30", "email", "outbound", "sent", None))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), tmp_path / "q", {
            "reps": reps, "leads": pd.DataFrame(leads, columns=LEADS.columns),
            "activities": pd.DataFrame(acts, columns=ACTS.columns)})
        march = parse_period("2025-03")
        m = {r["rep_id"]: r for r in rep_metrics(wh.con, march, EngagementConfig())
             .to_dict("records")}
        depths = lead_depths(wh.con, march, EngagementConfig())
    assert m["R3"]["new_leads_first_touched"] == 6 and m["R3"]["depth_judged_leads"] == 0
    assert pd.isna(m["R3"]["reached_fifth_followup_share"])
    assert m["R4"]["depth_judged_leads"] == 6 and m["R4"]["reached_fifth_followup_share"] == 0
    short = depths[depths["judged"]]
    assert set(short["rep_id"]) == {"R4"} and (short["depth"] == 2).all() and len(short) == 6


def test_a_warehouse_from_before_reps_role_still_reports_and_gains_the_column(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        ingest_frames(wh, IngestConfig(), tmp_path / "q",
                      {"reps": REPS, "leads": LEADS, "activities": ACTS})
        wh.con.execute("ALTER TABLE reps DROP COLUMN role")  # as an earlier release made it
    with Warehouse(path, read_only=True) as wh:
        frame = rep_metrics(wh.con, parse_period("2025-01"), EngagementConfig())
        assert frame["role"].isna().all() and len(frame) == 2
    with Warehouse(path) as wh:  # opened for writing: the contract's new column is added
        assert "role" in wh.columns("reps")
