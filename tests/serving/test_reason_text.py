"""Every reason reads as words a manager uses: each feature of the catalog (and an export
attribute of each kind) has a phrase, no internal name or placeholder leaks, numbers are
written for people."""

from __future__ import annotations

import re

import pytest

from core.reason_text import KNOWN, family_of, phrase
from core.settings import EngagementConfig
from features.catalog import engagement_features

CATALOG = [f.name for f in engagement_features(EngagementConfig())]
ATTRIBUTES = {"company_size": 120.0, "industry": "retail", "do_not_email": True,
              "annual_revenue": 1234567.891, "region": None}
VALUES = {"typical": 3.0, "zero": 0.0, "fraction": 0.4, "missing": None, "large": 400.0}
LEAKS = re.compile(r"[{}_]|as_of|\bNone\b|\bnan\b|\bNaN\b|\d\.\d{2,}")


def _row(fill: float | None) -> dict[str, object]:
    row: dict[str, object] = {name: fill for name in CATALOG}
    row["source"] = "web"
    row["has_responded"] = None if fill is None else float(fill > 0)
    row["meeting_held"] = None if fill is None else float(fill > 0)
    return {**row, **ATTRIBUTES}


def test_every_feature_of_the_catalog_has_a_phrase_of_its_own():
    families = {family_of(name) for name in CATALOG}
    assert families <= KNOWN, families - KNOWN
    assert len(families) < len(CATALOG) - 30  # the 40 window counts are 10 reasons


@pytest.mark.parametrize("fill", list(VALUES))
def test_no_placeholder_or_internal_name_leaks_and_numbers_are_for_people(fill):
    row = _row(VALUES[fill])
    for family in sorted({family_of(name) for name in [*CATALOG, *ATTRIBUTES]}):
        text = phrase(family, row)
        assert text and (text[0].isupper() or text[0].isdigit()), (family, text)
        assert not LEAKS.search(text), (family, text)


def test_phrases_a_manager_recognises():
    row = _row(0.0)
    row.update({"meeting_held": 1.0, "days_since_last_touch": 45.0,
                "days_since_first_touch": 50.0, "proposals_sent": 1.0,
                "proposal_amount_max": 12000.0, "rep_past_conversion_rate": 0.62,
                "lead_age_days": 274.0, "emails_in_7d": 2.0, "emails_in_30d": 3.0,
                "emails_in_90d": 5.0, "emails_in_all": 5.0, "outbound_touches": 4.0,
                "touches_before_first_response": 4.0})
    said = {family_of(n): phrase(family_of(n), row) for n in [*CATALOG, *ATTRIBUTES]}
    assert said["meeting_held"] == "Meeting held"
    assert said["touch_timing"] == "No touch for 45 days (first 50 days ago)"
    assert said["proposals"] == "Proposal of $12,000 sent"
    assert said["rep_past_conversion_rate"] == "Owner converts 62% of leads"
    assert said["lead_age_days"] == "Lead is 9 months old"
    assert said["emails_in"] == "2 emails from the lead in the last 7 days (5 in all)"
    assert said["calls_out"] == "No calls made yet"
    assert said["responses"] == "No response after 4 touches"  # what is missing
    assert said["touches_before_first_response"] == "No response after 4 touches"
    assert said["company_size"] == "Company size: 120"
    assert said["industry"] == "Industry: retail"
    assert said["do_not_email"] == "Do not email: yes"
    assert said["annual_revenue"] == "Annual revenue: 1,234,568"
    assert said["region"] == "Region not given"


def test_durations_read_in_days_months_and_years():
    row = _row(0.0)
    for days, words in ((0.3, "Lead created today"), (1.0, "Lead is 1 day old"),
                        (59.0, "Lead is 59 days old"), (400.0, "Lead is 13 months old"),
                        (1100.0, "Lead is 3 years old")):
        row["lead_age_days"] = days
        assert phrase("lead_age_days", row) == words


def test_the_windows_of_one_count_are_one_reason_in_the_served_answer(client, auth):
    """Over the service: a lead's reasons carry `text`, and no two reasons come from one
    family (the four windows of a count are merged)."""
    ids = [f"L{i:06d}" for i in range(2, 40)]
    body = {"leads": [{"lead_id": i} for i in ids], "explain": 8}
    rows = client.post("/score", json=body, headers=auth).json()["results"]
    for row in rows:
        fams = [family_of(r["feature"]) for r in row["reasons"]]
        assert len(fams) == len(set(fams)), fams
        for r in row["reasons"]:
            assert not LEAKS.search(r["text"]), r
            members = r.get("features", [r["feature"]])
            assert all(family_of(m) == family_of(r["feature"]) for m in members)
    merged = [r for row in rows for r in row["reasons"] if len(r.get("features", [])) > 1]
    assert merged, "no lead had a merged reason"


def test_the_line_for_a_lead_at_risk():
    from core.reason_text import at_risk_text

    assert at_risk_text(0.34, 0.61, 4, 12.2) == (
        "Likely to convert (34.0%), but the rep is likely to stop (risk 61.0%): 4 touches, "
        "none in 12 days")
    assert at_risk_text(0.995, 0.7, 1, 0.2).endswith("(risk 70.0%): 1 touch")
    assert "> 99%" in at_risk_text(0.995, 0.7, 1, 0.2)
