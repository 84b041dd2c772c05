"""Rep judgement is arithmetic on frames: checked here without a model, warehouse or server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.settings import RepsConfig
from reps.judgement import (
    benjamini_hochberg,
    garwood_interval,
    judge,
    shrink_ratio,
    shrink_share,
)


def test_garwood_interval_matches_the_exact_poisson_limits():
    low, high = garwood_interval(np.array([4.0, 0.0]), np.array([11.2, 5.0]), 0.90)
    # exact limits for 4 events: P(X >= 4 | 1.970) = 0.05 and P(X <= 4 | 9.154) = 0.05
    assert stats.poisson.sf(3, low[0] * 11.2) == pytest.approx(0.05, abs=1e-9)
    assert stats.poisson.cdf(4, high[0] * 11.2) == pytest.approx(0.05, abs=1e-9)
    assert low[1] == 0.0 and stats.poisson.cdf(0, high[1] * 5.0) == pytest.approx(0.05)


def test_benjamini_hochberg_by_hand():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    # q = 0.05, m = 8: thresholds 0.00625, 0.0125, 0.01875, 0.025, ...: the first two pass
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 7
    # q = 0.10: thresholds 0.0125, 0.025, ..., 0.0875, 0.1: the 7th (0.074 <= 0.0875) is the
    # last to pass, so everything ranked before it passes too (0.039 > 0.0375 included)
    assert benjamini_hochberg(p, 0.10).tolist() == [True] * 7 + [False] * 2


def test_shrinkage_pulls_small_samples_harder():
    groups = np.array(["a"] * 4)
    o = np.array([0.0, 0.0, 10.0, 10.0])
    e = np.array([2.0, 20.0, 10.0, 10.0])
    shrunk = shrink_ratio(o, e, groups, fallback=5.0)
    assert 0 < shrunk[1] < shrunk[0] < shrunk[2]  # 0 of 2 expected says less than 0 of 20
    k, n = np.array([0.0, 0.0, 30.0]), np.array([2.0, 50.0, 100.0])
    s = shrink_share(k, n, np.array(["a"] * 3))
    assert s[1] < s[0] < s[2]


def _reps(**overrides) -> pd.DataFrame:
    n = 20
    base = {
        "rep_id": [f"R{i:02d}" for i in range(n)],
        "team": ["east"] * 10 + ["west"] * 10,
        "leads": [60] * n,
        "conversions": [11] * n,
        "expected_conversions": [11.2] * n,
        "touches_judged": [100] * n,
        "dropouts": [30] * n,
        "expected_dropouts": [30.0] * n,
        "depth_judged_leads": [50] * n,
        "reached_fifth": [15] * n,
    }
    frame = pd.DataFrame(base)
    for col, changes in overrides.items():
        for i, v in changes.items():
            frame.loc[i, col] = v
    return frame


def test_judge_flags_with_reasons_and_leaves_the_rest_alone():
    out = judge(_reps(conversions={3: 1}, dropouts={5: 60},
                      reached_fifth={7: 2, 9: 1}, leads={9: 4}, expected_conversions={9: 0.8},
                      touches_judged={9: 5}, expected_dropouts={9: 1.5},
                      depth_judged_leads={9: 4}),
                RepsConfig())
    by_rep = out.set_index("rep_id")
    assert by_rep.loc["R03", "status"] == "flagged"
    flag = by_rep.loc["R03", "flags"][0]
    assert flag["metric"] == "conversions" and flag["value"] == 1 and flag["expected"] == 11.2
    assert flag["reason"].startswith("converted 1 of 60 leads; leads like these convert 11.2 "
                                     "on average; ratio 0.09 (90% interval 0.00 to 0.42)")
    assert [f["metric"] for f in by_rep.loc["R05", "flags"]] == ["dropouts"]
    assert "went quiet after 60 of 100 touches" in by_rep.loc["R05", "flags"][0]["reason"]
    depth = by_rep.loc["R07", "flags"][0]
    assert depth["metric"] == "followup_depth"
    assert depth["reason"] == ("took 2 of 50 new leads still open to the fifth follow-up (4%); "
                               "the other reps: 30%")
    # team east holds 9 reps with enough data (R09 has too little): fewer than the 10 that
    # set a team's own typical rep, so everyone is compared with every rep
    assert by_rep.loc["R03", "compared_with"] == "every rep"
    # too little data: never flagged, however bad it looks
    assert by_rep.loc["R09", "status"] == "insufficient_data"
    assert by_rep.loc["R09", "flags"] == []
    others = by_rep.drop(index=["R03", "R05", "R07", "R09"])
    assert (others["status"] == "ok").all()


def test_chance_shortfalls_are_not_flagged():
    # 40 average reps, outcomes drawn from what their leads deserve: a few look bad by chance
    rng = np.random.default_rng(3)
    frame = _reps()
    frame = pd.concat([frame, frame.assign(rep_id=frame.rep_id + "b")], ignore_index=True)
    frame["conversions"] = rng.poisson(11.2, len(frame))
    frame["dropouts"] = rng.poisson(30, len(frame))
    out = judge(frame, RepsConfig())
    assert (out["status"] == "ok").all(), out.loc[out.status != "ok", ["rep_id", "flags"]]
    assert out["p_conversions_below"].min() < 0.1  # someone did look bad by chance


def test_reps_are_compared_within_team_and_role_and_non_owners_are_not_judged():
    """In team east, three reps validate applications (a stage where few convert: O/E 0.09
    for all) and seven sell. Without the role column the validators look weak against the
    sellers; with it each is compared with its own role. R19 mostly touches other reps'
    leads."""
    validators = {i: 1 for i in range(3)}
    frame = _reps(conversions=validators, touches={19: 200},
                  touches_on_own_leads={19: 10})
    frame["touches"] = frame["touches"].fillna(100.0)
    frame["touches_on_own_leads"] = frame["touches_on_own_leads"].fillna(90.0)
    cfg = RepsConfig(min_group_reps=3)
    flat = judge(frame, cfg).set_index("rep_id")
    assert (flat.loc[[f"R{i:02d}" for i in range(3)], "status"] == "flagged").all()
    frame["role"] = ["validation"] * 3 + ["sales"] * 17
    out = judge(frame, cfg).set_index("rep_id")
    assert out.loc["R00", "compared_with"] == "team east, role validation"
    assert out.loc["R08", "compared_with"] == "team east, role sales"
    assert (out.loc[[f"R{i:02d}" for i in range(3)], "status"] == "ok").all()
    assert out.loc["R00", "typical_oe_ratio"] == pytest.approx(1 / 11.2)
    # a role group too small in its team is compared with the role across teams
    frame.loc[10:11, "role"] = "fraud checks"
    out = judge(frame, cfg).set_index("rep_id")
    assert out.loc["R10", "compared_with"] == "every rep"
    assert out.loc["R12", "compared_with"] == "team west, role sales"
    # with the default (10 reps to set a team's own typical rep) the sellers of both teams are
    # one group and the three validators another: a role is a job, not noise
    default = judge(frame, RepsConfig()).set_index("rep_id")
    assert default.loc["R00", "compared_with"] == "role validation (every team)"
    assert default.loc["R08", "compared_with"] == "role sales (every team)"
    assert (default.loc[["R00", "R01", "R02"], "status"] == "ok").all()
    # not an owner: 5% of its touches on its own leads
    assert out.loc["R19", "status"] == "not_an_owner" and out.loc["R19", "flags"] == []
    assert out.loc["R19", "owned_touch_share"] == pytest.approx(0.05)
