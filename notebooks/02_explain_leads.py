# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent  # noqa: ERA001 (jupytext's header, not code)
# ---

# %% [markdown]
# # 02 · Explain lead scores, for sales managers
#
# **What it is for.** Why the conversion model scores leads as it does: which signals drive
# scores across the open pipeline (a SHAP summary), why one lead scores as it does (a
# waterfall of its contributions in probability points, the same breakdown `leadlens explain`
# and the service's `/explain` give), and how a lead's score responds when its rep keeps
# following it up.
#
# **What it needs.** A trained home with a promoted `leadlens-conversion@champion`: run
# `make demo` first (its home, `.leadlens/` in the checkout, is found wherever Jupyter starts
# the notebook), or set `LEADLENS_HOME` to such a home. Leads are scored as the service scores them:
# features from `serving.lead_features.FeatureSource`, the model through
# `serving.models.load_champion`, scores and contributions from its `Scorer`. Lead ids are shown;
# no personal data is stored or printed.

# %%
"""Notebook 02: what drives conversion scores, one lead's waterfall, follow-up what-ifs."""
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap
from IPython.display import display

import features
from core.grades import grade
from core.settings import load_runtime
from serving.lead_features import FeatureSource
from serving.models import load_champion

if "LEADLENS_HOME" not in os.environ and not Path(".leadlens").exists():
    # Jupyter starts kernels in the notebook's folder: use the home `make demo` made in the
    # checkout this package runs from
    os.environ["LEADLENS_HOME"] = str(Path(features.__file__).resolve().parents[1] / ".leadlens")
runtime = load_runtime()
eng = runtime.settings.engagement
source = FeatureSource(runtime.warehouse_path, eng)
scorer = load_champion(runtime, "conversion", source.attributes)
as_of = source.default_as_of()  # just after the export, as `leadlens score`
open_ids = source.open_lead_ids(as_of)
open_feats = source.for_ids(open_ids, as_of)
open_feats["score"] = scorer.scores(open_feats)
print(f"leadlens-conversion v{scorer.version} (@champion); {len(open_ids):,} open leads "
      f"scored as of {as_of}")
display(pd.Series(grade(open_feats["score"].to_numpy(), scorer.serve.grade_cutoffs))
        .value_counts().sort_index().rename("open leads by grade").to_frame().T)

# %% [markdown]
# ## 1. What drives scores across the open pipeline
#
# LightGBM's exact TreeSHAP contributions for a sample of open leads. First the usual SHAP
# summary, in log-odds (each dot is a lead; colour is the feature's value, red high); then the
# same contributions in probability points, as the scorer shows them to managers (each
# log-odds contribution times the calibrated score's slope for that lead, so a lead's points
# add up to its score minus the typical lead's). Categorical features (source, industry,
# country) are coloured by their category code, which has no order.

# %%
SAMPLE = 3000
TOP = 15
rng = np.random.default_rng(0)
rows = np.sort(rng.choice(len(open_feats), size=min(SAMPLE, len(open_feats)), replace=False))
sample = open_feats.iloc[rows].reset_index(drop=True)
feature_names = list(scorer.bundle.features)
x = scorer.bundle.matrix(sample)
contrib = scorer.bundle.contributions(x)  # log-odds; the last column is the base value
explained = scorer.explain(sample, x)
points = pd.DataFrame([e.points for e in explained], columns=feature_names) * 100

shap.summary_plot(contrib[:, :-1], x, feature_names=feature_names, max_display=TOP, show=False,
                  plot_size=(8, 0.35 * TOP + 1.5))
plt.title(f"leadlens-conversion v{scorer.version}: SHAP (log-odds), "
          f"{len(sample):,} open leads")
plt.show()

drivers = pd.DataFrame({"mean |points|": points.abs().mean(), "mean points": points.mean()})
drivers = drivers.sort_values("mean |points|", ascending=False).head(TOP)
fig, ax = plt.subplots(figsize=(8, 0.35 * TOP + 1.2))
ax.barh(drivers.index[::-1], drivers["mean |points|"][::-1], color="tab:purple")
ax.set(xlabel="mean |contribution| (probability points)",
       title="What moves open leads' scores most")
fig.tight_layout()
plt.show()
display(drivers.round(3).assign(meaning=[scorer.labels.get(f, f) for f in drivers.index]))

# %% [markdown]
# ## 2. One lead's waterfall
#
# The highest-scoring open lead, explained as `leadlens explain` explains it (features through
# the online path, `Scorer.explain`). The bars start from the typical lead's score (the model's
# base value, calibrated) and add each feature's contribution in probability points; the
# `TOP_STEPS` largest are shown one by one, the rest as one bar. They end exactly at the lead's
# score.

# %%
TOP_STEPS = 10
lead_id = str(open_feats.loc[open_feats["score"].idxmax(), "lead_id"])
one = source.for_ids([lead_id], as_of)
e = scorer.explain(one)[0]
steps = sorted(scorer.breakdown(e), key=lambda r: -abs(r["points"]))
shown, rest = steps[:TOP_STEPS], steps[TOP_STEPS:]
labels = [f"{r['feature']} = {r['value']}" for r in shown]
deltas = [r["points"] for r in shown]
if rest:
    labels.append(f"{len(rest)} other features")
    deltas.append(sum(r["points"] for r in rest))
start = e.base_score * 100
print(f"Lead {lead_id}: score {e.score:.3f}, grade "
      f"{grade(np.array([e.score]), scorer.serve.grade_cutoffs)[0]}; a typical lead scores "
      f"{e.base_score:.3f}; contributions add up to {sum(deltas):+.2f} points "
      f"({start:.2f} + {sum(deltas):.2f} = {e.score * 100:.2f})")

fig, ax = plt.subplots(figsize=(9, 0.45 * (len(deltas) + 2) + 1))
names = ["typical lead", *labels, f"lead {lead_id}"]
level = start
ax.barh(0, start, color="grey")
for i, d in enumerate(deltas, start=1):
    ax.barh(i, d, left=level, color="tab:green" if d >= 0 else "tab:red")
    ax.text(level + max(d, 0), i, f" {d:+.1f}", va="center", fontsize=8)
    level += d
ax.barh(len(deltas) + 1, e.score * 100, color="tab:blue")
ax.set_yticks(range(len(names)), names, fontsize=8)
ax.invert_yaxis()
ax.set(xlabel="score (probability points)",
       title=f"Lead {lead_id}: what moved its score (leadlens-conversion v{scorer.version})")
fig.tight_layout()
plt.show()
display(pd.DataFrame(shown)[["feature", "value", "points", "label"]])

# %% [markdown]
# ## 3. How the score responds to follow-ups
#
# A few young open leads (created within the last `dormant_days`, picked across the score
# range). For each, hypothetical unanswered outbound touches (calls and emails, alternating) are
# added to its real activity list one at a time, at the CRM's typical pace between touches, and
# the lead is scored through the online feature path (`FeatureSource.for_payload`) just after
# the last one. The dashed line scores the same lead at the same moments with no added touch:
# what waiting alone does. The gap between the two lines is what the follow-ups are worth to
# the model; it is a model's view of the data it learned from, not a controlled experiment.
# Scores move in steps: the isotonic calibration maps ranges of the raw score to one
# probability.

# %%
N_ADDED = 10
QUANTILES = (0.25, 0.5, 0.75, 0.95)
young = open_feats[open_feats["lead_age_days"] <= eng.dormant_days].sort_values("score")
picks = [str(young["lead_id"].iloc[int(q * (len(young) - 1))]) for q in QUANTILES]
pace = pd.Timedelta(days=float(np.nanmedian(open_feats["mean_gap_days"]))).round("h")
pace_days = f"{pace / pd.Timedelta(days=1):.1f} days"
after = pd.Timedelta(minutes=1)
print(f"{len(young):,} young open leads; a touch added every {pace_days} (the median gap "
      f"between touches on open leads)")


def touch(record: dict, i: int, when: pd.Timestamp) -> dict:
    """The lead's i-th added outbound touch at `when`: a call or an email, alternately."""
    kind, outcome = (("call", "no_answer"), ("email", "sent"))[i % 2]
    return {"activity_id": f"what-if-{i}", "lead_id": record["lead_id"],
            "rep_id": record.get("owner_rep_id"), "occurred_at": when, "type": kind,
            "direction": "outbound", "outcome": outcome, "amount": None}


curves = []
for lid in picks:
    record, acts = source.record_and_activities(lid, as_of)
    real = acts.to_dict("records")
    added = [touch(record, i, as_of + i * pace) for i in range(1, N_ADDED + 1)]
    for k in range(N_ADDED + 1):
        when = as_of + k * pace + after
        feats = source.for_payload([record, record], [real + added[:k], real], when)
        s = scorer.scores(feats)
        curves.append({"lead_id": lid, "added": k, "days": k * pace / pd.Timedelta(days=1),
                       "touches_before": len(acts[acts["direction"] == "outbound"]),
                       "with follow-ups": s[0] * 100, "waiting": s[1] * 100})
curves = pd.DataFrame(curves)

fig, ax = plt.subplots(figsize=(9, 5))
for (lid, grp), colour in zip(curves.groupby("lead_id", sort=False), plt.cm.tab10.colors,
                              strict=False):
    ax.plot(grp["added"], grp["with follow-ups"], marker="o", c=colour,
            label=f"{lid} ({grp['touches_before'].iloc[0]} outbound so far)")
    ax.plot(grp["added"], grp["waiting"], ls="--", c=colour, alpha=0.6)
ax.set(xlabel=f"hypothetical outbound touches added (one every {pace_days})",
       ylabel="score (probability points)",
       title="Score after each added follow-up (dashed: same days, no touch)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
summary = curves.pivot(index="lead_id", columns="added", values="with follow-ups")[
    [0, N_ADDED]].rename(columns={0: "now", N_ADDED: f"after {N_ADDED} touches"})
summary["waiting instead"] = curves[curves["added"] == N_ADDED].set_index("lead_id")["waiting"]
display(summary.loc[picks].round(2))

# %%
source.close()
