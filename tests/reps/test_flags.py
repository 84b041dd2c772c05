"""Rep flags and the adjusted ranking, checked against the simulator's truth.

The truth is counterfactual: every rep works the same pool of leads (`rep_true_performance`), so
a rep's true performance is theirs, not their leads'. The rep-blind models are trained by the real
pipeline on the observed CRM; the report is the one the CLI and the service show.
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import spearmanr

from core.periods import date_range
from core.settings import SimulateConfig
from core.warehouse import Warehouse
from leadlens.simulator.crm import rep_true_performance, simulate_crm
from reps.report import JudgingModels, build_report
from training.pipeline import train_models

PERIOD = date_range("2025-07-01", "2026-06-30")


def _report(tmp_path, crm_loader, sim: SimulateConfig) -> pd.DataFrame:
    runtime = crm_loader(tmp_path / "home", simulate_crm(sim))
    trained = train_models(runtime, kinds=("lead_quality", "dropout_expected"),
                           say=lambda _m: None)
    models = JudgingModels(trained.results["lead_quality"].bundle,
                           trained.results["dropout_expected"].bundle)
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        report = build_report(wh.con, PERIOD, runtime.settings, models)
    truth = rep_true_performance(sim)[["rep_id", "skill", "true_relative", "weak"]]
    return report.reps.merge(truth, on="rep_id", validate="one_to_one")


def test_flags_catch_weak_reps_with_few_wrong_flags(tmp_path, crm_loader):
    # skill and discipline vary; a fifth of the reps are weak sellers who rarely follow up
    sim = SimulateConfig(leads=30_000, reps=40, months=18, seed=8, rep_skill_sd=0.4,
                         weak_rep_share=0.2, discipline_spread=0.5)
    reps = _report(tmp_path, crm_loader, sim)
    flagged = reps["status"] == "flagged"
    weak = reps["weak"]
    recall = (flagged & weak).sum() / weak.sum()
    wrong = (flagged & ~weak).sum() / max(1, flagged.sum())
    print(f"truly weak {weak.sum()}, flagged {flagged.sum()}, caught {recall:.0%}, "
          f"wrong {wrong:.0%}")
    assert weak.sum() >= 8
    assert recall >= 0.8
    assert wrong <= 0.10
    # every flag says why, with numbers, and lists the leads behind it
    for flags in reps.loc[flagged, "flags"]:
        for f in flags:
            assert f["reason"] and any(ch.isdigit() for ch in f["reason"])
            assert f["lead_ids"]


def test_adjusted_ranking_sees_through_lead_quality(tmp_path, crm_loader):
    # good reps are given worse leads; discipline is the same for all, so skill is the truth
    sim = SimulateConfig(leads=60_000, reps=40, months=18, seed=8, rep_skill_sd=0.4,
                         discipline_spread=0.0, lead_skill_skew=-4.0)
    reps = _report(tmp_path, crm_loader, sim)
    raw = spearmanr(reps["conversions"] / reps["leads"], reps["skill"]).statistic
    adjusted = spearmanr(reps["oe_ratio"], reps["skill"]).statistic
    print(f"rank correlation with true skill: raw close rate {raw:.2f}, adjusted {adjusted:.2f}")
    assert raw < 0.3
    assert adjusted > 0.6
    assert adjusted - raw > 0.4
