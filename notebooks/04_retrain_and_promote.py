# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent  # noqa: ERA001 (jupytext's header, not code)
# ---

# %% [markdown]
# # 04 · Retrain the models and promote the conversion model
#
# **What it is for.** The data scientist's loop, from Python instead of the CLI: train new
# versions of the four models on the warehouse as it is now (`leadlens train`), compare them
# with the current `@champion` versions, ask the promotion gates whether the new conversion
# model may replace its champion (`leadlens promote --model conversion`), and see how to roll
# back.
#
# **What it needs.** A trained home: run `make demo` first (its home, `.leadlens/` in the
# checkout, is found wherever Jupyter starts the notebook), or set `LEADLENS_HOME` to such a home.
# Training takes about a minute on the demo CRM. It **writes** to the home's MLflow store (a new
# run and a new version of each model), and may move `leadlens-conversion@champion`; a running
# service picks a moved alias up within `serve.poll_seconds`.

# %%
"""Notebook 04: train new model versions, compare them with the champions, promote, roll back."""
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import features
from core.names import REGISTERED_NAMES
from core.registry import champion_version, configure, model_versions
from core.settings import load_runtime
from training.pipeline import train_models
from training.promote import promote

if "LEADLENS_HOME" not in os.environ and not Path(".leadlens").exists():
    # Jupyter starts kernels in the notebook's folder: use the home `make demo` made in the
    # checkout this package runs from
    os.environ["LEADLENS_HOME"] = str(Path(features.__file__).resolve().parents[1] / ".leadlens")
runtime = load_runtime()
if not runtime.warehouse_path.exists():
    raise FileNotFoundError(f"no warehouse at {runtime.warehouse_path}: run `make demo` first, "
                            "or set LEADLENS_HOME to a trained home")
configure(runtime.mlflow_uri)
METRICS = {"test_roc_auc": "AUC", "test_pr_auc": "PR AUC", "test_ece": "ECE",
           "test_brier": "Brier"}


def registry() -> pd.DataFrame:
    """Every registered version with its aliases, training window and out-of-time metrics
    (as recorded on the version when it was trained)."""
    rows = []
    for kind, name in REGISTERED_NAMES.items():
        for v in model_versions(name):
            row = {"model": kind, "version": v.version, "aliases": ",".join(v.aliases),
                   "trained until": v.tags.get("until", ""),
                   "test rows": int(v.tags.get("test_rows", 0))}
            row.update({label: float(v.tags.get(tag, "nan")) for tag, label in METRICS.items()})
            row["promoted"] = v.tags.get("promoted_at", "")
            rows.append(row)
    return pd.DataFrame(rows)


champions = {kind: champion_version(name) for kind, name in REGISTERED_NAMES.items()}
print(f"Tracking store: {runtime.mlflow_uri}")
print("Champions now:", ", ".join(f"{k} v{v}" if v else f"{k}: none" for k, v in
                                  champions.items()))
display(registry().round(4))

# %% [markdown]
# ## 1. Train new versions
#
# `training.pipeline.train_models` is what `leadlens train` runs: examples up to the data's
# end, a time split, LightGBM with early stopping and isotonic calibration, both baselines,
# the out-of-time evaluation, the leakage audit, one MLflow run with a nested run per model,
# and a new registered version of each model. It never moves `@champion`.

# %%
result = train_models(runtime, say=print)
# training draws its model-card plots on the file-only Agg backend: back to inline plots
# %matplotlib inline
print(f"\nMLflow run {result.parent_run_id}, trained until {result.until}")
for kind, why in result.skipped.items():
    print(f"{kind}: not trained ({why})")

# %% [markdown]
# ## 2. The new versions against the champions
#
# The figures below are the ones recorded on each version: its own out-of-time test. A new
# version trained on more recent data is tested on more recent leads than its champion was, so
# the two columns are a first look, not a verdict. The verdict is the promotion gate's, which
# scores the candidate and the champion on the *same* examples (next section).

# %%
versions = registry()
rows = []
for kind, trained in result.results.items():
    mine = versions[versions["model"] == kind].set_index("version")
    for role, version in (("new", trained.version), ("champion", champions[kind])):
        if version is not None:
            rows.append({"model": kind, "role": role, "version": version,
                         **mine.loc[version, list(METRICS.values())].to_dict()})
    rows.append({"model": kind, "role": "new: logistic baseline", "version": trained.version,
                 "AUC": trained.metrics["logistic"]["roc_auc"],
                 "ECE": trained.metrics["logistic"]["ece"]})
comparison = pd.DataFrame(rows)
display(comparison.round(4))

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
kinds = list(result.results)
for ax, metric in zip(axes, ("AUC", "ECE"), strict=True):
    for i, role in enumerate(("champion", "new", "new: logistic baseline")):
        part = comparison[comparison["role"] == role].set_index("model").reindex(kinds)
        ax.bar(np.arange(len(kinds)) + (i - 1) * 0.27, part[metric], width=0.27, label=role)
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set(title=f"Out-of-time test {metric}" + (" (lower is better)" if metric == "ECE" else ""))
gates = runtime.settings.promote
for i, kind in enumerate(kinds):
    axes[0].hlines(getattr(gates.min_auc, kind), i - 0.45, i + 0.45, ls="--", colors="k",
                   label="promotion floor" if i == 0 else None)
axes[0].set_ylim(0.5, 1.0)
axes[0].legend(fontsize=8)
axes[1].axhline(gates.max_ece, ls="--", c="k", label=f"promotion ceiling {gates.max_ece}")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
flags = {k: r.audit.loc[r.audit["flagged"], "feature"].tolist() for k, r in
         result.results.items()}
print("Leakage audit:", "; ".join(f"{k}: {', '.join(v) or 'no flag'}" for k, v in flags.items()))

# %% [markdown]
# ## 3. Promote the conversion model
#
# `training.promote.promote` is what `leadlens promote --model conversion` runs. It rebuilds
# the newest version's out-of-time test from the warehouse, scores it with the candidate and
# with the current champion, and moves `@champion` only if the candidate reaches the AUC floor
# (`promote.min_auc.conversion`), stays under the calibration ceiling (`promote.max_ece`) and
# is not worse than the champion by more than `promote.auc_tolerance`. Otherwise the alias
# stays where it is and the decision says why. The other three models keep their champions
# here; `leadlens promote` judges all four.

# %%
decision = promote(runtime, "conversion")
print(decision.summary())

# %% [markdown]
# ## 4. Rolling back
#
# If a promoted version misbehaves in production, put the previous version back:
#
# ```bash
# leadlens promote --model conversion --version N     # N below the current champion
# ```
#
# or `promote(runtime, "conversion", version=N)` from Python. A version below the champion is
# a *rollback*: the absolute gates (AUC floor, calibration ceiling) still apply, the comparison
# with the champion does not, and the version is tagged `promotion_kind=rollback` with
# `promoted_from` set to the version it replaced. The registry table below keeps that trail.
# When even the absolute gates fail and the old version must come back anyway,
# `--force --reason "why"` moves the alias and records the reason on the version; it is
# deliberately not run here. A running service swaps to the new `@champion` within
# `serve.poll_seconds`, after validating it.

# %%
name = REGISTERED_NAMES["conversion"]
current = champion_version(name)
earlier = [v.version for v in model_versions(name) if current and v.version < current]
if earlier:
    print(f"{name} @champion is v{current}; to roll back to the version before it:\n"
          f"  leadlens promote --model conversion --version {earlier[0]}")
else:
    print(f"{name} @champion is v{current}; there is no earlier version to roll back to")
trail = registry()
display(trail[trail["model"] == "conversion"].round(4))
