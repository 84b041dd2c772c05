"""Labels and censoring on a hand-built CRM whose answers were worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from core.settings import TrainConfig
from core.warehouse import Warehouse
from features.labels import conversion_examples, dropout_examples
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


def test_conversion_labels_snapshots_and_censoring(con):
    ex = conversion_examples(con, TrainConfig(), UNTIL)
    assert _labels(ex.frame) == {
        # L1: open at ages 0-30 and won within 90 days of each; resolved before age 60
        ("L1", 0): 1, ("L1", 7): 1, ("L1", 14): 1, ("L1", 30): 1,
        # L2: won 151 days after creation, after every snapshot's 90-day horizon
        ("L2", 0): 0, ("L2", 7): 0, ("L2", 14): 0, ("L2", 30): 0, ("L2", 60): 0,
        # L3: lost at day 19: negatives while open, no snapshot after
        ("L3", 0): 0, ("L3", 7): 0, ("L3", 14): 0,
        # L5: an outcome exactly at as_of is not known yet, so the lead is still open
        ("L5", 0): 1, ("L5", 7): 1,
    }
    # L4's horizons all run past UNTIL: censored, not negative
    assert ex.excluded == {"horizon runs past the data": 5}
    row = ex.frame[(ex.frame.lead_id == "L2") & (ex.frame.detail == 60)].iloc[0]
    assert row.as_of == T("2025-03-02") and row.horizon_end == T("2025-05-31")


def test_until_hides_later_outcomes(con):
    ex = conversion_examples(con, TrainConfig(), T("2025-04-15"))
    # L1 age 0 needs its horizon (to 2025-04-01) observed: kept; age 30 (to 2025-05-02) not
    labels = _labels(ex.frame)
    assert labels[("L1", 0)] == 1 and ("L1", 30) not in labels
    assert (ex.frame["as_of"] < T("2025-04-15")).all()
    assert (ex.frame["horizon_end"] <= T("2025-04-15")).all()


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
        ex = conversion_examples(wh.con, TrainConfig(), pd.Timestamp("2026-07-01"))
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
    ex = conversion_examples(con, TrainConfig(), UNTIL)
    data = ex.frame.assign(split="train")
    with pytest.raises(NotEnoughData) as err:
        check_enough(CONVERSION, class_counts(data), 40, 10)
    msg = str(err.value)
    assert "train: 6 positives and 8 negatives (need at least 40 of each)" in msg
    assert "validation: 0 positives and 0 negatives (need at least 10 of each)" in msg
