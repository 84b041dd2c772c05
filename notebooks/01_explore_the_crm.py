# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent  # noqa: ERA001 (jupytext's header, not code)
# ---

# %% [markdown]
# # 01 · Explore the CRM: follow-up depth, the rep metrics, where leads go dormant
#
# **What it is for.** A first look at a CRM before trusting any model: how many outbound
# touches a lead gets before its rep goes quiet, the five rep metrics for a recent quarter, and
# where leads stop being worked (after which touch, after how many silent days) and how
# conversion relates to follow-up depth.
#
# **What it needs.** A LeadLens home with a CRM ingested: run `make demo` first (its home,
# `.leadlens/` in the checkout, is found wherever Jupyter starts the notebook), or set
# `LEADLENS_HOME` to such a home. No model is used. Every figure is computed here from the
# warehouse, through the package's own functions and the settings of `LEADLENS_CONFIG` (built-in
# defaults without it).

# %%
"""Notebook 01: follow-up depth, the five rep metrics, and where leads go dormant."""
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import features
from core.periods import resolve_period
from core.settings import load_runtime
from core.timestamps import data_end
from core.warehouse import Warehouse
from features.engagement import batch_features, resolved_leads_sql, select_pairs
from features.labels import dropout_examples
from ingest.summary import format_crm_summary, summarize_crm
from reps.metrics import rep_metrics
from reps.report import FIVE_METRICS

if "LEADLENS_HOME" not in os.environ and not Path(".leadlens").exists():
    # Jupyter starts kernels in the notebook's folder: use the home `make demo` made in the
    # checkout this package runs from
    os.environ["LEADLENS_HOME"] = str(Path(features.__file__).resolve().parents[1] / ".leadlens")
runtime = load_runtime()
eng = runtime.settings.engagement
wh = Warehouse(runtime.warehouse_path, read_only=True)
wh.open()  # without a warehouse this says which path it looked at and what to run
con = wh.con
as_of = data_end(con)  # the moment the export was taken
now = as_of + pd.Timedelta(seconds=1)  # features count activities strictly before this
print(f"LeadLens home: {runtime.home}\nData end: {as_of}\n")
print(format_crm_summary(summarize_crm(wh)))

# %% [markdown]
# ## 1. Follow-up depth: how many touches before the rep goes quiet
#
# A rep *goes quiet* on an open lead after an outbound touch when no further outbound touch
# follows within `engagement.quiet_days`, the rep metrics' definition. The package's dropout
# examples (`features.labels.dropout_examples`, what the dropout models learn from) label
# exactly that for each outbound touch; here we ask them for more touches than the models use,
# with the window set to `quiet_days`. A lead that converts or is lost inside the window, or
# whose window runs past the data, is left out at that touch: it says nothing about whether the
# rep would have gone on. So the share of leads dropped at touch *n* among those still followed
# up (the hazard) is an unbiased estimate, and chaining the hazards (Kaplan-Meier) gives the
# distribution of follow-up depth for leads that stay open.

# %%
MAX_TOUCH = 15  # touches examined; deeper follow-up is shown as one bar
quiet_cfg = runtime.settings.train.model_copy(
    update={"dropout_touches": MAX_TOUCH, "dropout_window_days": eng.quiet_days})
touches = dropout_examples(con, quiet_cfg, as_of)
hazard = touches.frame.groupby("detail")["label"].agg(went_quiet="mean", leads="size")
reach = (1 - hazard["went_quiet"]).cumprod().shift(1, fill_value=1.0)  # P(depth >= n)
depth_share = reach * hazard["went_quiet"]  # P(depth == n)
beyond = 1.0 - depth_share.sum()  # followed up past MAX_TOUCH touches
cumulative = depth_share.cumsum()
median_depth = int(cumulative.index[cumulative >= 0.5][0]) if cumulative.iloc[-1] >= 0.5 \
    else None
fifth = eng.fifth_followup

print(f"{len(touches.frame):,} touches judged; left out: "
      + ", ".join(f"{n:,} ({why})" for why, n in touches.excluded.items()))
print(f"Median follow-up depth of a lead that stays open: "
      f"{median_depth if median_depth else f'more than {MAX_TOUCH}'} touches")
print(f"Reps go quiet after the first touch on {hazard['went_quiet'].iloc[0]:.0%} of leads; "
      f"{reach.get(fifth, np.nan):.0%} of leads reach touch {fifth}")

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
bars = pd.concat([depth_share, pd.Series([beyond], index=[MAX_TOUCH + 1])])
left.bar(bars.index, bars.to_numpy() * 100, color="tab:blue")
left.set_xticks(bars.index, [*map(str, depth_share.index), f">{MAX_TOUCH}"], fontsize=8)
if median_depth:
    left.axvline(median_depth, ls="--", c="k", label=f"median: {median_depth}")
    left.legend()
left.set(xlabel="outbound touches before the rep went quiet", ylabel="% of leads",
         title="Follow-up depth (leads that stay open)")
right.plot(hazard.index, hazard["went_quiet"] * 100, marker="o",
           label="rep goes quiet after this touch")
right.plot(reach.index, reach * 100, marker="s", label="leads still followed up at this touch")
right.axvline(fifth, ls=":", c="grey")
right.set(xlabel="outbound touch number", ylabel="%", ylim=(0, 102),
          title=f"Where reps go quiet (no touch within {eng.quiet_days} days)")
right.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The five rep metrics for a recent quarter
#
# `reps.metrics.rep_metrics` for the period `leadlens reps` shows by default: the last
# full quarter in the data (set `PERIOD` to `"2026-Q1"`, `"2025-11"` or `"2025"` for another).
# Follow-up depth there counts every lead first touched in the period, including the ones that
# converted or were lost before the rep stopped, so its share at the fifth follow-up is lower
# than the estimate above, which leaves resolved leads out.

# %%
PERIOD = None
period = resolve_period(PERIOD, None, None, lambda: as_of)
metrics = rep_metrics(con, period, eng)
five = list(FIVE_METRICS)
shown = ["rep_id", "team", *five, "followup_depth_median", "reached_fifth_followup_share",
         "conversions", "resolved_leads", "conversion_rate"]
print(f"{period.label}: {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d} (end excluded), "
      f"{len(metrics)} reps")
display(metrics[shown].sort_values("new_leads", ascending=False).round(2)
        .reset_index(drop=True))
display(metrics[five].describe().round(1))
touched = metrics["depth_judged_leads"]  # first touched in the period and still open then
pooled_fifth = float((metrics["reached_fifth_followup_share"].fillna(0) * touched).sum()
                     / touched.sum()) if touched.sum() else float("nan")
print(f"Leads first touched in {period.label} taken to touch {fifth}: {pooled_fifth:.0%} "
      f"(median rep depth {metrics['followup_depth_median'].median():.1f} touches)")

# %%
fig, axes = plt.subplots(2, 3, figsize=(13, 7))
for ax, (col, label) in zip(axes.flat, FIVE_METRICS.items(), strict=False):
    ax.hist(metrics[col].dropna(), bins=12, color="tab:blue", edgecolor="white")
    ax.axvline(metrics[col].median(), ls="--", c="k")
    ax.set(title=label, xlabel=f"per rep, {period.label}", ylabel="reps")
ax = axes.flat[-1]
ok = metrics["resolved_leads"] > 0
ax.scatter(metrics.loc[ok, "reached_fifth_followup_share"] * 100,
           metrics.loc[ok, "conversion_rate"] * 100,
           s=10 + 3 * metrics.loc[ok, "resolved_leads"], alpha=0.6)
rho = metrics.loc[ok, ["reached_fifth_followup_share", "conversion_rate"]].corr(
    method="spearman").iloc[0, 1]
ax.set(xlabel=f"% of new leads taken to touch {fifth}", ylabel="conversion rate (%)",
       title=f"Depth vs conversion, per rep (Spearman {rho:.2f})")
fig.suptitle(f"The five rep metrics, {period.label} (dashed: median rep)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Where leads go dormant, and conversion by follow-up depth
#
# Left: for every lead still open at the data's end that has been touched, the days since its
# last outbound touch. Past `quiet_days` the rep has gone quiet on it; past `dormant_days` a
# touch would count as re-engaging a dormant lead. Right: among resolved leads, the conversion
# rate by the outbound touches made before the outcome (`resolved_leads_sql`, the query the
# online features' outcome history uses). Read it as association, not effect: a lead that
# answers gets more follow-ups *because* it answered, so depth and conversion feed each other.
# Notebook 02 asks the model what one more touch is worth for a given lead.

# %%
open_feats = batch_features(con, select_pairs(con, now, "open"), eng, list(wh.attribute_types()))
open_touched = open_feats[open_feats["outbound_touches"] > 0]
silent = open_touched["days_since_last_touch"]
print(f"{len(open_feats):,} open leads: {int((open_feats['outbound_touches'] == 0).sum()):,} "
      f"never touched; of the touched, {(silent > eng.quiet_days).mean():.0%} untouched for "
      f"more than {eng.quiet_days} days and {(silent > eng.dormant_days).mean():.0%} for more "
      f"than {eng.dormant_days}")

all_feats = batch_features(con, select_pairs(con, now, "all"), eng, [])
settled = all_feats[(all_feats["has_responded"] == 0)
                    & (all_feats["lead_age_days"] > eng.dormant_days)]
print(f"Of {len(settled):,} leads older than {eng.dormant_days} days that never responded, "
      f"{(settled['outbound_touches'] <= 2).mean():.0%} got at most two outbound touches")

resolved = con.execute(resolved_leads_sql(eng.open_lead_expiry_days)).df()
resolved["depth_bucket"] = resolved["depth"].clip(upper=MAX_TOUCH)
by_depth = resolved.groupby("depth_bucket")["won"].agg(conversion="mean", leads="size")
won_depth = resolved.loc[resolved["won"] == 1, "depth"]
print(f"{len(resolved):,} resolved leads; converted leads had a median of "
      f"{won_depth.median():.0f} touches before converting, and "
      f"{(won_depth >= fifth).mean():.0%} of conversions came at touch {fifth} or later")

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
cap = max(float(silent.quantile(0.95)), eng.dormant_days * 2.0)
left.hist(silent.clip(upper=cap), bins=40, color="tab:blue", edgecolor="white")
left.axvline(eng.quiet_days, ls="--", c="tab:orange", label=f"quiet: {eng.quiet_days} d")
left.axvline(eng.dormant_days, ls="--", c="tab:red", label=f"dormant: {eng.dormant_days} d")
left.set(xlabel=f"days since the last outbound touch (capped at {cap:.0f})",
         ylabel="open leads", title="Open leads: time since their last touch")
left.legend()
right.bar(by_depth.index, by_depth["conversion"] * 100, color="tab:green")
right.set_xticks(by_depth.index, [str(int(d)) if d < MAX_TOUCH else f"{MAX_TOUCH}+"
                                  for d in by_depth.index], fontsize=8)
right.axvline(fifth - 0.5, ls=":", c="grey")
right.set(xlabel="outbound touches before the outcome", ylabel="converted (%)",
          title="Resolved leads: conversion by follow-up depth")
fig.tight_layout()
plt.show()
display(by_depth.assign(conversion=lambda d: (d["conversion"] * 100).round(1)).T)

# %%
wh.close()
