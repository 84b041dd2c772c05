"""Point-in-time engagement features on a hand-built CRM whose answers were worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import EngagementConfig, IngestConfig
from core.warehouse import Warehouse
from features.catalog import engagement_features, format_data_dictionary
from features.engagement import batch_features, select_pairs
from features.online import OutcomeHistory, online_features
from ingest.load import ingest_frames

CFG = EngagementConfig()
AS_OF = pd.Timestamp("2025-03-01")

LEADS = pd.DataFrame(
    [
        # lead, created, owner, source, converted, lost
        ("X", "2025-01-01", "R1", "web", "2025-03-10", None),  # converts after as_of
        ("Y", "2025-01-01", "R2", "event", None, None),
        ("La", "2024-12-01", "R1", "web", "2025-02-01", None),
        ("Lb", "2024-12-01", "R1", "referral", None, "2025-02-15"),
        ("Lc", "2024-12-01", "R1", "web", "2025-03-01", None),  # resolved exactly at as_of
        ("Ld", "2024-12-01", "R2", "web", None, "2025-01-15"),
    ],
    columns=["lead_id", "created_at", "owner_rep_id", "source", "converted_at", "closed_lost_at"],
)
ACTS = pd.DataFrame(
    [
        ("X1", "X", "2025-01-02", "call", "outbound", "no_answer", None),
        ("X2", "X", "2025-01-05", "email", "outbound", "sent", None),
        ("X3", "X", "2025-01-06", "email", "inbound", "replied", None),
        ("X4", "X", "2025-01-10", "meeting", "outbound", "held", None),
        ("X5", "X", "2025-01-12", "call", "outbound", "connected", None),
        ("X6", "X", "2025-02-20", "call", "outbound", "voicemail", None),
        ("X7", "X", "2025-03-01", "proposal", "outbound", "sent", 5000),  # exactly at as_of
        ("X8", "X", "2025-03-02", "call", "outbound", "no_answer", None),  # after as_of
        ("Y1", "Y", "2025-01-29T23:59:59", "email", "outbound", "sent", None),
        ("Y2", "Y", "2025-01-30T00:00:00", "email", "outbound", "sent", None),
        ("Y3", "Y", "2025-02-21T23:59:59", "call", "outbound", "no_answer", None),
        ("Y4", "Y", "2025-02-22T00:00:00", "call", "outbound", "no_answer", None),
        ("Y5", "Y", "2025-02-25", "proposal", "outbound", "sent", 1200),
        ("Y6", "Y", "2025-02-26", "proposal", "outbound", "sent", 800),
        ("A1", "La", "2024-12-02", "call", "outbound", "no_answer", None),
        ("A2", "La", "2024-12-05", "call", "outbound", "connected", None),
        ("A3", "La", "2025-02-02", "call", "outbound", "connected", None),  # after La won
    ],
    columns=["activity_id", "lead_id", "occurred_at", "type", "direction", "outcome", "amount"],
)


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as w:
        ingest_frames(w, IngestConfig(), tmp_path / "q", {"leads": LEADS, "activities": ACTS})
        yield w


def _both(wh, lead_id: str, as_of=AS_OF) -> list[dict]:
    batch = batch_features(wh.con, pd.DataFrame({"lead_id": [lead_id], "as_of": [as_of]}), CFG)
    lead = wh.read("leads").set_index("lead_id").loc[lead_id].to_dict()
    acts = wh.read("activities")
    online = online_features(lead, acts[acts["lead_id"] == lead_id], as_of,
                             OutcomeHistory.from_warehouse(wh.con, CFG.open_lead_expiry_days), CFG)
    return [batch.iloc[0].to_dict(), online]


def test_only_activities_strictly_before_as_of_count(wh):
    for f in _both(wh, "X"):
        assert f["outbound_touches"] == 5  # X7 at as_of and X8 after it are ignored
        assert f["proposals_sent"] == 0 and np.isnan(f["proposal_amount_max"])
        assert f["calls_out_all"] == 3
        assert f["inbound_responses"] == 1 and f["has_responded"] == 1
        assert f["touches_before_first_response"] == 2
        assert f["meeting_held"] == 1 and f["followups_after_meeting"] == 2
        assert f["reengagements"] == 1  # X6 after 39 silent days
        assert f["days_since_first_touch"] == pytest.approx(58)
        assert f["days_since_last_touch"] == pytest.approx(9)
        # X5, a connected call, is the last response (X3, the reply, came six days earlier)
        assert f["days_since_last_response"] == pytest.approx(48)
        assert f["days_since_last_activity"] == pytest.approx(9)
        assert f["longest_gap_days"] == pytest.approx(39)
        assert f["mean_gap_days"] == pytest.approx(49 / 4)
        assert f["lead_age_days"] == pytest.approx(59)
        assert f["source"] == "web"


def test_the_same_lead_a_moment_later_sees_the_proposal(wh):
    later = AS_OF + pd.Timedelta(microseconds=1)
    for f in _both(wh, "X", later):
        assert f["proposals_sent"] == 1 and f["proposal_amount_max"] == 5000


def test_window_edges(wh):
    for f in _both(wh, "Y"):
        assert f["calls_out_7d"] == 1  # exactly 7 days before is in, one second more is out
        assert f["calls_out_30d"] == 2
        assert f["emails_out_30d"] == 1  # exactly 30 days before is in
        assert f["emails_out_90d"] == 2
        assert f["proposals_out_7d"] == 2
        assert f["proposal_amount_max"] == 1200 and f["proposal_amount_total"] == 2000
        assert f["has_responded"] == 0 and f["touches_before_first_response"] == 6


def test_outcomes_after_as_of_are_invisible_and_rates_use_only_earlier_resolutions(wh):
    # R1 before 2025-03-01: La won (2025-02-01), Lb lost (2025-02-15); Lc resolves exactly at
    # as_of and X after it: neither counts. Overall: La, Lb, Ld -> 1 won of 3.
    prior = 1 / 3
    for f in _both(wh, "X"):
        assert "rep_past_resolved_leads" not in f  # a count that grows with the calendar
        assert f["rep_past_conversion_rate"] == pytest.approx((1 + 10 * prior) / (2 + 10))
        assert f["rep_past_followup_depth"] == pytest.approx((2 + 0) / 2)  # A3 came after La won
        assert f["source_past_conversion_rate"] == pytest.approx((1 + 10 * prior) / (2 + 10))
        assert "converted_at" not in f and "closed_lost_at" not in f and "deal_amount" not in f
    early = pd.Timestamp("2025-01-10")
    for f in _both(wh, "X", early):  # nothing had resolved yet (Ld is lost on 2025-01-15)
        assert np.isnan(f["rep_past_conversion_rate"])
        assert np.isnan(f["rep_past_followup_depth"])


def test_track_records_use_a_rolling_window(wh):
    """Only leads resolved in the `history_days` before as_of count: La (won 28 days before
    2025-03-01) drops out of a 20-day window, Lb (lost 14 days before) stays; overall only Lb."""
    short = CFG.model_copy(update={"history_days": 20})
    batch = batch_features(wh.con, pd.DataFrame({"lead_id": ["X"], "as_of": [AS_OF]}), short)
    lead = wh.read("leads").set_index("lead_id").loc["X"].to_dict()
    acts = wh.read("activities")
    online = online_features(lead, acts[acts["lead_id"] == "X"], AS_OF,
                             OutcomeHistory.from_warehouse(wh.con, short.open_lead_expiry_days),
                             short)
    for f in (batch.iloc[0].to_dict(), online):
        prior = 0.0  # Lb lost: nothing won in the window
        assert f["rep_past_conversion_rate"] == pytest.approx((0 + 10 * prior) / (1 + 10))
        assert f["rep_past_followup_depth"] == pytest.approx(0.0)
        # web's La and Ld both resolved before the window: the source falls back on the prior
        assert f["source_past_conversion_rate"] == pytest.approx(prior)


def test_a_connected_call_is_a_response(wh):
    """La's only activities before 2025-01-01 are calls; the second one connected."""
    for f in _both(wh, "La", pd.Timestamp("2025-01-01")):
        assert f["inbound_responses"] == 0 and f["has_responded"] == 1
        assert f["touches_before_first_response"] == 2
        assert f["days_since_last_response"] == pytest.approx(27)


def test_select_pairs_open_and_all(wh):
    open_ = select_pairs(wh.con, AS_OF, "open")
    # an outcome at as_of is not known yet (strictly before, as everywhere): Lc is still open
    assert set(open_["lead_id"]) == {"X", "Y", "Lc"}
    every = select_pairs(wh.con, AS_OF, "all")
    assert set(every["lead_id"]) == {"X", "Y", "La", "Lb", "Lc", "Ld"}
    assert (every["as_of"] == AS_OF).all()


def test_declared_feature_list_does_not_depend_on_the_data(wh):
    names = [f.name for f in engagement_features(CFG)]
    assert len(names) == len(set(names))
    out = batch_features(wh.con, pd.DataFrame({"lead_id": ["Y"], "as_of": [AS_OF]}), CFG)
    assert list(out.columns) == ["lead_id", "as_of", *names]
    table = format_data_dictionary(CFG)
    for n in names:
        assert f"`{n}`" in table


def test_unknown_lead_is_named(wh):
    with pytest.raises(ValueError, match="'nope' is not in the warehouse"):
        batch_features(wh.con, pd.DataFrame({"lead_id": ["nope"], "as_of": [AS_OF]}), CFG)
