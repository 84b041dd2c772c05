"""Labels and censoring on a hand-built CRM whose answers were worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from core.settings import TrainConfig
from core.warehouse import Warehouse
from features.labels import calendar_examples, cap_per_lead, creation_examples, dropout_examples
from training.examples import time_split
from training.pipeline import NotEnoughData, check_enough, class_counts
from training.specs import CONVERSION

T = pd.Timestamp
UNTIL = T("2025-07-01")


def _crm() -> dict[str, pd.DataFrame]:
    leads = pd.DataFrame([
        # id, created, won, lost
        ("L1", "2025-01-01", "2025-02-01", None),   # won after 31 days
        ("L2", "2025-01-01", "2025-06-01", None),   # won after 151 days: past every horizon
        ("L3", "2025-01-01", None, "2025-01-20"),   # lost after 19 days
        ("L4", "2025-05-01", None, None),           # open; its horizon runs past UNTIL
        ("L5", "2025-01-01", "2025-01-08", None),   # won exactly at the 7-day snapshot
    ], columns=["lead_id", "created_at", "converted_at", "closed_lost_at"])
    leads["owner_rep_id"] = "R1"
    leads["source"] = "web"
    acts = pd.DataFrame([
        ("A1", "L1", "2025-01-02", "call", "outbound"),
        ("A2", "L1", "2025-01-03", "email", "inbound"),
        ("A3", "L1", "2025-01-05", "proposal", "outbound"),
        ("A4", "L2", "2025-01-02", "call", "outbound"),
        ("A5", "L2", "2025-01-20", "call", "outbound"),
        ("A6", "L2", "2025-02-01", "email", "outbound"),
        ("A7", "L2", "2025-02-05", "call", "outbound"),
        ("A8", "L2", "2025-02-07", "call", "outbound"),
        ("A9", "L3", "2025-01-10", "call", "outbound"),
        ("A10", "L4", "2025-06-25", "call", "outbound"),
    ], columns=["activity_id", "lead_id", "occurred_at", "type", "direction"])
    reps = pd.DataFrame({"rep_id": ["R1"], "team": ["east"]})
    return {"reps": reps, "leads": leads, "activities": acts}


@pytest.fixture(scope="module")
def con(tmp_path_factory, crm_loader):
    rt = crm_loader(tmp_path_factory.mktemp("hand"), _crm())
    with Warehouse(rt.warehouse_path, read_only=True) as wh:
        yield wh.con


def _labels(frame: pd.DataFrame) -> dict[tuple[str, int], int]:
    return {(r.lead_id, r.detail): r.label for r in frame.itertuples()}


def test_calendar_snapshots_labels_and_censoring(con):
    """Snapshot dates count back every 14 days from UNTIL - 90 days (2025-04-02) to the first
    creation; every lead open on a date is an example, whatever its age."""
    ex = calendar_examples(con, TrainConfig(), UNTIL)
    dates = sorted(ex.frame["as_of"].unique())
    assert [str(pd.Timestamp(d).date()) for d in dates] == [
        "2025-01-08", "2025-01-22", "2025-02-05", "2025-02-19", "2025-03-05", "2025-03-19",
        "2025-04-02"]
    got = {(r.lead_id, str(r.as_of.date())): r.label for r in ex.frame.itertuples()}
    assert got == {
        # L1: won on 2025-02-01, within 90 days of both dates it was open on
        ("L1", "2025-01-08"): 1, ("L1", "2025-01-22"): 1,
        # L2: won on 2025-06-01: only the last three dates' horizons reach it
        ("L2", "2025-01-08"): 0, ("L2", "2025-01-22"): 0, ("L2", "2025-02-05"): 0,
        ("L2", "2025-02-19"): 0, ("L2", "2025-03-05"): 1, ("L2", "2025-03-19"): 1,
        ("L2", "2025-04-02"): 1,
        # L3: lost on 2025-01-20: a negative while open
        ("L3", "2025-01-08"): 0,
        # L5: won exactly on the snapshot date: not known yet, so still open, and a positive
        ("L5", "2025-01-08"): 1,
    }
    # L4 was created after the last date whose horizon is observed: no example at all
    assert "L4" not in set(ex.frame["lead_id"])
    assert (ex.frame["horizon_end"] <= UNTIL).all()
    row = ex.frame[(ex.frame.lead_id == "L1") & (ex.frame.as_of == T("2025-01-22"))].iloc[0]
    assert row.detail == 21  # the lead's age in days


def test_long_open_leads_are_capped_evenly():
    frame = pd.DataFrame({"lead_id": ["A"] * 10 + ["B"] * 3,
                          "as_of": list(pd.date_range("2025-01-01", periods=10, freq="14D"))
                          + list(pd.date_range("2025-01-01", periods=3, freq="14D"))})
    kept = cap_per_lead(frame, 4)
    assert len(kept[kept.lead_id == "A"]) == 4 and len(kept[kept.lead_id == "B"]) == 3
    a = kept[kept.lead_id == "A"]["as_of"].sort_values()
    assert a.iloc[0] == T("2025-01-01") and a.diff().dropna().dt.days.min() >= 28


def test_until_hides_later_outcomes(con):
    ex = calendar_examples(con, TrainConfig(), T("2025-04-15"))
    # the last date whose 90-day horizon ends by 2025-04-15 is 2025-01-15
    assert ex.frame["as_of"].max() == T("2025-01-15")
    assert (ex.frame["horizon_end"] <= T("2025-04-15")).all()
    labels = {(r.lead_id, str(r.as_of.date())): r.label for r in ex.frame.itertuples()}
    assert labels[("L1", "2025-01-15")] == 1 and labels[("L2", "2025-01-15")] == 0


def test_creation_examples_for_flat_exports(con):
    ex = creation_examples(con, TrainConfig(), UNTIL)
    assert _labels(ex.frame) == {("L1", 0): 1, ("L2", 0): 0, ("L3", 0): 0, ("L5", 0): 1}
    assert ex.excluded == {"horizon runs past the data": 1}  # L4


def test_dropout_labels(con):
    ex = dropout_examples(con, TrainConfig(), UNTIL)
    assert _labels(ex.frame) == {
        ("L1", 1): 0,  # next touch 3 days later
        ("L1", 2): 1,  # no touch for 14 days while the lead stayed open (won on day 27 after)
        ("L2", 1): 1,  # next touch 18 days later
        ("L2", 2): 0, ("L2", 3): 0, ("L2", 4): 0,  # touch 5 is past dropout_touches
    }
    # L3 was lost inside the window before any touch; L4's window runs past the data
    assert ex.excluded == {"lead resolved inside the window": 1, "window runs past the data": 1}
    first = ex.frame[(ex.frame.lead_id == "L1") & (ex.frame.detail == 1)].iloc[0]
    assert first.as_of == T("2025-01-02 00:00:01")  # just after the touch


def test_time_split_keeps_leads_apart(mid_crm, tmp_path, crm_loader):
    rt = crm_loader(tmp_path, {"reps": mid_crm.reps, "leads": mid_crm.leads.head(6000),
                             "activities": mid_crm.activities[
                                 mid_crm.activities.lead_id.isin(mid_crm.leads.lead_id.head(6000))]})
    with Warehouse(rt.warehouse_path, read_only=True) as wh:
        ex = creation_examples(wh.con, TrainConfig(), pd.Timestamp("2026-07-01"))
    split = time_split(ex.frame, (0.6, 0.2, 0.2), pd.Timestamp("2026-07-01"))
    names = split.assign(ex.frame)
    leads = {s: set(ex.frame.loc[names == s, "lead_id"]) for s in ("train", "validation", "test")}
    assert not leads["train"] & leads["validation"]
    assert not leads["train"] & leads["test"] and not leads["validation"] & leads["test"]
    created = ex.frame.groupby(names)["created_at"]
    assert created.max()["train"] < created.min()["validation"]
    assert created.max()["validation"] < created.min()["test"]
    share = pd.Series({s: len(v) for s, v in leads.items()}) / ex.frame.lead_id.nunique()
    assert share["train"] == pytest.approx(0.6, abs=0.01)


def test_refuses_too_little_data(con):
    ex = calendar_examples(con, TrainConfig(), UNTIL)
    data = ex.frame.assign(split="train")
    with pytest.raises(NotEnoughData) as err:
        check_enough(CONVERSION, class_counts(data), 40, 10)
    msg = str(err.value)
    assert "train: 6 positives and 5 negatives (need at least 40 of each)" in msg
    assert "validation: 0 positives and 0 negatives (need at least 10 of each)" in msg
