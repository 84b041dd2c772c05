# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent  # noqa: ERA001 (jupytext's header, not code)
# ---

# %% [markdown]
# # 03 · Rep performance: raw against adjusted rankings
#
# **What it is for.** Ranking reps by their raw conversion rate rewards the reps who were
# handed the best leads. This notebook builds the rep report (`leadlens reps`), ranks the reps
# twice, by raw conversion rate and by observed against expected conversions (adjusted for
# lead quality, shrunk toward the team), shows where the two rankings disagree and why, and
# lists the flagged reps with the evidence behind each flag.
#
# **What it needs.** A trained home whose `leadlens-lead-quality` and `leadlens-dropout-expected`
# models are promoted: run `make demo` first (its home, `.leadlens/` in the checkout, is found
# wherever Jupyter starts the notebook), or set `LEADLENS_HOME` to such a home. Reps are shown by
# id; no personal data is printed. Flags are for coaching and need a manager's judgement; they are
# not a basis for employment decisions.

# %%
"""Notebook 03: reps ranked by raw conversion rate and by observed/expected; flagged reps."""
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import features
from core.periods import resolve_period
from core.registry import configure
from core.settings import load_runtime
from core.timestamps import default_as_of
from core.warehouse import Warehouse
from reps.report import build_report, judging_models_from_registry

if "LEADLENS_HOME" not in os.environ and not Path(".leadlens").exists():
    # Jupyter starts kernels in the notebook's folder: use the home `make demo` made in the
    # checkout this package runs from
    os.environ["LEADLENS_HOME"] = str(Path(features.__file__).resolve().parents[1] / ".leadlens")
runtime = load_runtime()
PERIOD = None  # e.g. "2026-Q1"; None: the last full quarter in the data, as `leadlens reps`
with Warehouse(runtime.warehouse_path, read_only=True) as wh:  # says what to run if missing
    configure(runtime.mlflow_uri)
    models, notes = judging_models_from_registry(with_scoring=False)  # no leads at risk here
    for note in notes:
        print("note:", note)
    period = resolve_period(PERIOD, None, None, lambda: default_as_of(wh.con))
    report = build_report(wh.con, period, runtime.settings, models)
reps = report.reps
print(f"Rep report {period.label} ({period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}, end "
      f"excluded), outcomes as of {report.as_of}; judged with {report.models}")
display(reps["status"].value_counts().rename("reps").to_frame().T)

# %% [markdown]
# ## 1. Two rankings
#
# Both rankings use the same leads: those each rep was given in the period, with conversions
# counted so far (a lead whose horizon is still running counts with the share of conversions
# usually seen by its age).
#
# - **Raw**: conversions / leads. (The `conversion_rate` of the five-metric table counts the
#   leads *resolved* in the period instead; it mixes lead quality in the same way.)
# - **Adjusted**: observed / expected conversions, where *expected* sums each lead's
#   probability from `leadlens-lead-quality`, a model that sees only what the lead brought when
#   it was assigned (source, industry, size, country) and never the rep or the rep's activity;
#   then shrunk toward the team's pooled ratio (empirical Bayes), so a rep with few leads is
#   not ranked at an extreme by luck.
#
# Rank 1 is the best. Reps with no leads in the period are left out.

# %%
ranked = reps[reps["leads"] > 0].copy()
ranked["raw_rate"] = ranked["conversions"] / ranked["leads"]
ranked["expected_rate"] = ranked["expected_conversions"] / ranked["leads"]  # lead quality


def rank(values: pd.Series) -> pd.Series:
    """Rank 1 for the highest value (ties share the best rank)."""
    return values.rank(ascending=False, method="min").astype(int)


ranked["raw_rank"] = rank(ranked["raw_rate"])
ranked["oe_rank"] = rank(ranked["oe_ratio"])  # lead quality taken out, not yet shrunk
ranked["adjusted_rank"] = rank(ranked["oe_ratio_shrunk"])
ranked["moved_by_lead_quality"] = ranked["raw_rank"] - ranked["oe_rank"]
ranked["moved_by_shrinkage"] = ranked["oe_rank"] - ranked["adjusted_rank"]


def spearman(a: str, b: str) -> float:
    """Spearman correlation of two columns of `ranked`."""
    return float(ranked[[a, b]].corr(method="spearman").iloc[0, 1])


rank_corr = spearman("raw_rank", "adjusted_rank")
quality_corr = spearman("moved_by_lead_quality", "expected_rate")
print(f"{len(ranked)} reps ranked; Spearman correlation of the raw and adjusted rankings: "
      f"{rank_corr:.2f}")
print(f"Places moved by taking lead quality out, against the expected rate of the rep's leads: "
      f"Spearman {quality_corr:.2f} (negative: reps given better leads lose places)")
print(f"Mean places moved: {ranked['moved_by_lead_quality'].abs().mean():.1f} by lead quality, "
      f"{ranked['moved_by_shrinkage'].abs().mean():.1f} by shrinkage")
columns = ["rep_id", "team", "leads", "conversions", "expected_conversions", "raw_rate",
           "expected_rate", "oe_ratio", "oe_low", "oe_high", "oe_ratio_shrunk", "raw_rank",
           "oe_rank", "adjusted_rank", "status"]
display(ranked.sort_values("adjusted_rank")[columns].round(3).reset_index(drop=True))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
points = left.scatter(ranked["raw_rank"], ranked["adjusted_rank"], c=ranked["expected_rate"],
                      cmap="viridis", s=20 + 2 * ranked["leads"], alpha=0.8,
                      edgecolors="k", linewidths=0.3)
n = len(ranked)
left.plot([1, n], [1, n], ls=":", c="grey")
movers = ranked.loc[(ranked["raw_rank"] - ranked["adjusted_rank"]).abs().nlargest(6).index]
for r in movers.itertuples():
    left.annotate(r.rep_id, (r.raw_rank, r.adjusted_rank), fontsize=8,
                  xytext=(4, 4), textcoords="offset points")
left.set(xlabel="rank by raw conversion rate (1 = best)",
         ylabel="rank by adjusted O/E, shrunk (1 = best)", xlim=(0, n + 1), ylim=(n + 1, 0),
         title=f"Raw vs adjusted ranks, {period.label} (size: leads)")
fig.colorbar(points, ax=left, label="expected conversion rate of the rep's leads")
for team, grp in ranked.groupby(ranked["team"].astype("string").fillna("(no team)")):
    right.scatter(grp["expected_rate"] * 100, grp["moved_by_lead_quality"],
                  s=20 + 2 * grp["leads"], alpha=0.7, label=team)
right.axhline(0, ls=":", c="grey")
right.set(xlabel="expected conversion rate of the rep's leads (%, rep-blind model)",
          ylabel="places gained: raw rank -> O/E rank",
          title=f"Lead quality moves reps (Spearman {quality_corr:.2f})")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Why the rankings differ: lead quality, then small samples.** A raw conversion rate is the
# rep's effect mixed with the quality of the leads the rep was given. Leads differ in how
# likely they are to convert whoever works them (source, industry, company size), and reps get
# different mixes of them. A rep fed strong leads converts many without being better than the
# team; a rep fed weak leads can do more than those leads deserved and still post a low rate.
# Dividing by what the rep-blind model expected for the same leads takes the lead mix out: on
# the right, reps whose leads were expected to convert often lose places, reps with weak leads
# gain. The second step, shrinkage, moves ranks too: with few leads or few expected
# conversions a rep's ratio is pulled toward the pooled ratio of the rep's team, so a lucky or
# unlucky quarter on a handful of leads puts no one at the top or the bottom, and a team that
# converted below expectation as a whole pulls its reps down together.

# %% [markdown]
# ## 2. Flagged reps and their reasons
#
# A flag needs credible evidence, tested across all reps at once with false discovery rate
# control (`reps.q`): conversions credibly below a margin of the typical rep's O/E, dropouts
# (going quiet on open leads) credibly above the typical rep's against the rep-blind dropout
# model, or a follow-up depth far below the rest of the team's. Each reason states its numbers,
# and lists the lead ids behind it for a manager to look at.

# %%
flagged = reps[reps["status"] == "flagged"]
print(f"{len(flagged)} of {len(reps)} reps flagged in {period.label}\n")
for row in flagged.itertuples():
    ranks = ranked.loc[ranked["rep_id"] == row.rep_id, ["raw_rank", "adjusted_rank"]]
    where = (f"raw rank {ranks['raw_rank'].iloc[0]}, adjusted rank "
             f"{ranks['adjusted_rank'].iloc[0]}" if len(ranks) else "not ranked")
    print(f"{row.rep_id} ({row.team}; {where})")
    for flag in row.flags:
        print(f"  - {flag['metric']}: {flag['reason']}")
        print(f"    leads behind it: {', '.join(flag['lead_ids'][:5]) or '-'}")
print(f"\n{report.note}")
