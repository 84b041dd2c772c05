"""The simulator's realism targets, measured on its own output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import SimulateConfig
from leadlens.simulator.crm import simulate_crm


@pytest.fixture(scope="module")
def crm():
    return simulate_crm(SimulateConfig(leads=20_000, reps=40, months=18, seed=11))


@pytest.fixture(scope="module")
def outbound(crm) -> pd.DataFrame:
    a = crm.activities
    return a[a["direction"] == "outbound"]


def test_same_seed_same_crm_other_seed_other_crm():
    cfg = SimulateConfig(leads=500, reps=5, months=6, seed=3)
    a, b = simulate_crm(cfg), simulate_crm(cfg)
    pd.testing.assert_frame_equal(a.activities, b.activities)
    pd.testing.assert_frame_equal(a.leads, b.leads)
    c = simulate_crm(cfg.model_copy(update={"seed": 4}))
    assert not a.leads["source"].equals(c.leads["source"])


def test_most_conversions_need_about_five_followups(crm, outbound):
    won = crm.leads.dropna(subset=["converted_at"])[["lead_id", "converted_at"]]
    touches = outbound.merge(won, on="lead_id")
    touches = touches[touches["occurred_at"] < touches["converted_at"]]
    per_won = touches.groupby("lead_id").size()
    assert 4 <= per_won.median() <= 8
    assert (per_won >= 5).mean() >= 0.5


def test_many_reps_give_up_after_one_or_two_touches(crm, outbound):
    responded = set(crm.activities.loc[crm.activities["direction"] == "inbound", "lead_id"])
    per_lead = outbound.groupby("lead_id").size()
    silent = per_lead[~per_lead.index.isin(responded)]
    assert (silent <= 2).mean() >= 0.5
    assert (silent >= 5).mean() <= 0.2


def test_a_few_reps_bring_most_of_the_sales_and_two_thirds_make_quota(crm):
    won = crm.leads.dropna(subset=["converted_at"])
    revenue = won.groupby("owner_rep_id")["deal_amount"].sum().reindex(
        crm.reps["rep_id"], fill_value=0.0).sort_values(ascending=False)
    top_fifth = revenue.iloc[: len(revenue) // 5].sum() / revenue.sum()
    assert top_fifth >= 0.40
    # quota attainment over the last six months (after the pipeline's ramp-up)
    late = won[won["converted_at"] >= pd.Timestamp("2026-01-01")]
    late_revenue = late.groupby("owner_rep_id")["deal_amount"].sum().reindex(
        crm.reps["rep_id"], fill_value=0.0)
    quota = crm.reps.set_index("rep_id")["monthly_quota"].reindex(late_revenue.index)
    made_quota = (late_revenue / 6 >= quota).mean()
    assert 0.55 <= made_quota <= 0.8


def test_conversion_depends_on_lead_fit_rep_skill_and_discipline(crm, outbound):
    leads = crm.leads.merge(crm.lead_truth, on="lead_id")
    leads["won"] = leads["converted_at"].notna()
    by_fit = leads.groupby(pd.qcut(leads["fit_logit"], 4), observed=True)["won"].mean()
    assert by_fit.is_monotonic_increasing
    assert by_fit.iloc[-1] > 2 * by_fit.iloc[0]

    reps = crm.rep_truth.set_index("rep_id")
    rate = leads.groupby("owner_rep_id")["won"].mean()
    depth = outbound.groupby("rep_id").size() / leads.groupby("owner_rep_id").size()
    assert np.corrcoef(reps["skill"], rate.reindex(reps.index))[0, 1] > 0.5
    assert np.corrcoef(reps["discipline"], depth.reindex(reps.index))[0, 1] > 0.5


def test_leads_respond_hold_meetings_get_proposals_and_go_dormant(crm, outbound):
    acts = crm.activities
    assert {"held", "no_show"} <= set(acts.loc[acts["type"] == "meeting", "outcome"])
    assert (acts["direction"] == "inbound").mean() > 0.05
    proposals = acts[acts["type"] == "proposal"]
    assert len(proposals) > 0 and (proposals["amount"] > 0).all()
    gaps = outbound.sort_values(["lead_id", "occurred_at"]).groupby("lead_id")["occurred_at"].diff()
    reengaged = outbound[gaps > pd.Timedelta(days=30)]["lead_id"].nunique()
    assert reengaged / crm.leads["lead_id"].nunique() > 0.01


def test_activities_stay_within_each_leads_life(crm):
    a = crm.activities.merge(crm.leads, on="lead_id")
    assert (a["occurred_at"] >= a["created_at"]).all()
    end = a[["converted_at", "closed_lost_at"]].min(axis=1)
    assert not (a["occurred_at"] > end).any()
    assert crm.activities["activity_id"].is_unique and crm.leads["lead_id"].is_unique


def test_won_deals_carry_their_proposal_amount(crm):
    won = crm.leads.dropna(subset=["converted_at"])
    assert (won["deal_amount"] > 0).all()
    assert crm.leads.loc[crm.leads["converted_at"].isna(), "deal_amount"].isna().all()
    assert not (crm.leads["converted_at"].notna() & crm.leads["closed_lost_at"].notna()).any()
