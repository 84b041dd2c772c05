"""Rep judgement: arithmetic on frames, no model, warehouse or server.

Input: one row per rep with what was observed and what rep-blind models expected. Output: the
same rows with intervals, tests, shrunk rates, a status and flags with their reasons.

- Conversions: observed O against expected E (the sum of each lead's rep-blind probability);
  the ratio O/E gets an exact (Garwood) 90% interval. A flag needs credible evidence of a
  material gap: under "this rep converts at `conversion_margin` times the typical rep's O/E"
  (the median over the reps compared), O is about Poisson(margin x typical x E), and the
  one-sided p = P(X <= O) must survive the false discovery rate control. Testing against the
  typical rep rather than 1 keeps a team with a few very weak reps from making everyone else
  look strong, and the margin keeps "slightly below average" from becoming a flag.
- Dropouts: the same, one-sided the other way (more dropouts than `dropout_margin` times the
  typical rep's).
- Follow-up depth: the share of new leads taken to the fifth follow-up against the team's share
  (the rep excluded), one-sided binomial, flagged only when also far below (a fraction of it).
  Only leads still open when the rep went quiet count (`reps.metrics.depth_ctes`): a rep whose
  leads all close fast is not judged on depth.
- Each family is tested across all reps compared with Benjamini-Hochberg at level q.
- Displayed rates are shrunk toward the team (gamma-Poisson or beta-binomial, prior strength by
  the method of moments), so a small sample does not look extreme.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from core.settings import RepsConfig

COACHING_NOTE = (
    "Flags are for coaching: each shows its evidence and needs a manager's judgement. They are "
    "not a basis for employment decisions."
)


def garwood_interval(observed: np.ndarray, expected: np.ndarray,
                     level: float = 0.90) -> tuple[np.ndarray, np.ndarray]:
    """Exact Poisson interval for O, divided by E: the interval of the ratio O/E."""
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    a = (1.0 - level) / 2.0
    low = np.where(o > 0, stats.chi2.ppf(a, 2 * o) / 2.0, 0.0)
    high = stats.chi2.ppf(1.0 - a, 2 * o + 2) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(e > 0, low / e, np.nan), np.where(e > 0, high / e, np.nan)


def benjamini_hochberg(pvalues: np.ndarray, q: float) -> np.ndarray:
    """Which hypotheses are rejected at false discovery rate q (NaN p-values never are)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.zeros(len(p), dtype=bool)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    m = idx.size
    passed = p[order] <= q * np.arange(1, m + 1) / m
    if passed.any():
        k = np.flatnonzero(passed).max()
        out[order[: k + 1]] = True
    return out


def _moments_strength(num: np.ndarray, den: np.ndarray, fallback: float) -> float:
    """Prior strength (in units of `den`) from the spread of rate num/den across reps beyond
    what sampling alone explains (method of moments); `fallback` when it cannot be told."""
    ok = den > 0
    if ok.sum() < 3:
        return fallback
    r = num[ok] / den[ok]
    w = den[ok] / den[ok].sum()
    mean = float((w * r).sum())
    between = float((w * (r - mean) ** 2).sum()) - mean / den[ok].mean()
    if mean <= 0 or between <= 0:
        return fallback * 10  # no spread beyond noise: shrink hard
    return float(np.clip(mean / between, 1.0, 1e4))


def _shrink(num: np.ndarray, den: np.ndarray, groups: np.ndarray, fallback: float,
            empty: float) -> np.ndarray:
    """num/den shrunk toward its group's pooled rate: (num + s x pooled) / (den + s), with the
    prior strength s (in units of `den`) from `_moments_strength`; `empty` is the pooled rate
    of a group with no `den` at all."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(len(num), np.nan)
    for g in pd.unique(groups):
        m = groups == g
        pooled = num[m].sum() / den[m].sum() if den[m].sum() > 0 else empty
        strength = _moments_strength(num[m], den[m], fallback)
        with np.errstate(invalid="ignore"):
            out[m] = (num[m] + strength * pooled) / (den[m] + strength)
    return out


def shrink_ratio(observed: np.ndarray, expected: np.ndarray, groups: np.ndarray,
                 fallback: float = 10.0) -> np.ndarray:
    """O/E shrunk toward its group's pooled O/E (gamma-Poisson posterior mean)."""
    return _shrink(observed, expected, groups, fallback, empty=1.0)


def shrink_share(successes: np.ndarray, trials: np.ndarray, groups: np.ndarray,
                 fallback: float = 20.0) -> np.ndarray:
    """A success share shrunk toward its group's pooled share (beta-binomial posterior mean)."""
    return _shrink(successes, trials, groups, fallback, empty=np.nan)


def _typical_by(ratios: np.ndarray, usable: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per rep: the median ratio over the reps of its comparison group with enough data (1.0
    when there are none)."""
    out = np.ones(len(ratios))
    for g in pd.unique(groups):
        m = groups == g
        r = ratios[m & usable & np.isfinite(ratios)]
        out[m] = float(np.median(r)) if r.size else 1.0
    return out


def _of(group: str) -> str:
    return "" if group == "every rep" else f" of {group}"


def _rest(group: str) -> str:
    return "the other reps" if group == "every rep" else f"the rest of {group}"


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 100 else f"{x:,.0f}"


MIN_ROLE_PEERS = 3
"""A role is a different job: its reps are compared with each other from this many on."""


def comparison_groups(reps: pd.DataFrame, usable: np.ndarray, min_reps: int) -> pd.Series:
    """Who each rep is compared with: their team (and role, when the reps table gives one)
    when that group holds `min_reps` reps with enough data (`usable`; a median of a few reps
    moves with each of them), else their role across teams (from `MIN_ROLE_PEERS` reps: a
    role is a different job, not noise), else every rep. A label per rep, e.g.
    `team east, role sales`."""
    team = reps["team"].astype("string").fillna("(no team)")
    role = (reps["role"].astype("string") if "role" in reps
            else pd.Series(pd.NA, index=reps.index, dtype="string"))
    fine = ("team " + team + role.map(lambda r: "" if pd.isna(r) else f", role {r}")
            ).astype(object)
    by_role = role.map(lambda r: "every rep" if pd.isna(r) else f"role {r} (every team)")
    out = pd.Series("every rep", index=reps.index, dtype=object)
    ok = pd.Series(usable, index=reps.index)
    role_size = ok.groupby(by_role).transform("sum")
    out[role_size >= MIN_ROLE_PEERS] = by_role[role_size >= MIN_ROLE_PEERS]
    fine_size = ok.groupby(fine).transform("sum")
    out[fine_size >= min_reps] = fine[fine_size >= min_reps]
    return out


def judge(reps: pd.DataFrame, cfg: RepsConfig) -> pd.DataFrame:
    """Add intervals, tests, shrunk figures, `status`, `flags` and `compared_with` to one row
    per rep.

    Expects columns: rep_id, team, leads, conversions, expected_conversions, touches_judged,
    dropouts, expected_dropouts, depth_judged_leads (new leads whose follow-up depth is judged),
    reached_fifth; optionally role, touches and touches_on_own_leads (a rep who mostly touches
    other reps' leads is not judged as an owner: status `not_an_owner`).
    """
    out = reps.copy().reset_index(drop=True)
    o, e = out["conversions"].to_numpy(float), out["expected_conversions"].to_numpy(float)
    d, ed = out["dropouts"].to_numpy(float), out["expected_dropouts"].to_numpy(float)
    n5 = out["depth_judged_leads"].to_numpy(float)
    k5 = out["reached_fifth"].to_numpy(float)
    touches = out["touches"].to_numpy(float) if "touches" in out else np.zeros(len(out))
    own = out["touches_on_own_leads"].to_numpy(float) if "touches_on_own_leads" in out \
        else touches
    with np.errstate(divide="ignore", invalid="ignore"):
        out["owned_touch_share"] = np.where(touches > 0, own / touches, np.nan)
    owner = ~(out["owned_touch_share"].to_numpy() < cfg.min_owned_share)

    conv_ok = (e >= cfg.min_expected_conversions) & owner
    drop_ok = (ed >= cfg.min_expected_dropouts) & owner
    depth_ok = (n5 >= cfg.min_new_leads_touched) & owner
    out["compared_with"] = comparison_groups(out, conv_ok | drop_ok | depth_ok,
                                             cfg.min_group_reps)
    group = out["compared_with"].to_numpy()

    with np.errstate(divide="ignore", invalid="ignore"):
        out["oe_ratio"] = np.where(e > 0, o / e, np.nan)
        out["dropout_ratio"] = np.where(ed > 0, d / ed, np.nan)
    out["oe_low"], out["oe_high"] = garwood_interval(o, e, cfg.interval)
    out["dropout_low"], out["dropout_high"] = garwood_interval(d, ed, cfg.interval)
    out["oe_ratio_shrunk"] = shrink_ratio(o, e, group)
    out["dropout_ratio_shrunk"] = shrink_ratio(d, ed, group)
    out["reached_fifth_share_shrunk"] = shrink_share(k5, n5, group)

    typical_oe = _typical_by(out["oe_ratio"].to_numpy(), conv_ok, group)
    typical_drop = _typical_by(out["dropout_ratio"].to_numpy(), drop_ok, group)
    out["typical_oe_ratio"] = typical_oe
    out["typical_dropout_ratio"] = typical_drop
    null_conv = e * typical_oe * cfg.conversion_margin
    null_drop = ed * typical_drop * cfg.dropout_margin
    out["p_conversions_below"] = np.where(conv_ok, stats.poisson.cdf(o, null_conv), np.nan)
    out["p_dropouts_above"] = np.where(drop_ok, stats.poisson.sf(d - 1, null_drop), np.nan)
    # the group's share without the rep, so a rep is not compared with itself
    k_owner, n_owner = np.where(owner, k5, 0.0), np.where(owner, n5, 0.0)
    team_k = pd.Series(k_owner).groupby(group).transform("sum").to_numpy() - k_owner
    team_n = pd.Series(n_owner).groupby(group).transform("sum").to_numpy() - n_owner
    with np.errstate(divide="ignore", invalid="ignore"):
        peer_share = np.where(team_n > 0, team_k / team_n, np.nan)
    out["team_reached_fifth_share"] = peer_share
    depth_testable = depth_ok & np.isfinite(peer_share) & (peer_share > 0)
    out["p_depth_below"] = np.where(
        depth_testable, stats.binom.cdf(k5, n5.astype(int), np.nan_to_num(peer_share)), np.nan)

    conv_flag = benjamini_hochberg(out["p_conversions_below"].to_numpy(), cfg.q) & (o < e)
    drop_flag = benjamini_hochberg(out["p_dropouts_above"].to_numpy(), cfg.q) & (d > ed)
    with np.errstate(divide="ignore", invalid="ignore"):
        far_below = np.where(n5 > 0, k5 / n5, np.nan) < cfg.depth_far_below * peer_share
    depth_flag = benjamini_hochberg(out["p_depth_below"].to_numpy(), cfg.q) & far_below

    flags: list[list[dict]] = []
    status: list[str] = []
    for i, row in out.iterrows():
        f: list[dict] = []
        if conv_flag[i]:
            f.append({
                "metric": "conversions", "value": float(o[i]), "expected": float(e[i]),
                "reason": (
                    f"converted {int(o[i])} of {int(row['leads'])} leads; leads like these "
                    f"convert {_fmt(e[i])} on average; ratio {row['oe_ratio']:.2f} "
                    f"({cfg.interval:.0%} interval {row['oe_low']:.2f} to {row['oe_high']:.2f}); "
                    f"the typical rep{_of(row['compared_with'])}: {typical_oe[i]:.2f}"),
            })
        if drop_flag[i]:
            f.append({
                "metric": "dropouts", "value": float(d[i]), "expected": float(ed[i]),
                "reason": (
                    f"went quiet after {int(d[i])} of {int(row['touches_judged'])} touches on "
                    f"open leads (no further touch within the window); leads in these states "
                    f"are dropped {_fmt(ed[i])} times on average; ratio "
                    f"{row['dropout_ratio']:.2f} ({cfg.interval:.0%} interval "
                    f"{row['dropout_low']:.2f} to {row['dropout_high']:.2f}); the typical rep"
                    f"{_of(row['compared_with'])}: {typical_drop[i]:.2f}"),
            })
        if depth_flag[i]:
            f.append({
                "metric": "followup_depth", "value": float(k5[i] / n5[i]),
                "expected": float(peer_share[i]),
                "reason": (
                    f"took {int(k5[i])} of {int(n5[i])} new leads still open to the fifth "
                    f"follow-up ({k5[i] / n5[i]:.0%}); {_rest(row['compared_with'])}: "
                    f"{peer_share[i]:.0%}"),
            })
        flags.append(f)
        if f:
            status.append("flagged")
        elif not owner[i]:
            status.append("not_an_owner")
        elif not (conv_ok[i] or drop_ok[i] or depth_ok[i]):
            status.append("insufficient_data")
        else:
            status.append("ok")
    out["status"] = status
    out["flags"] = flags
    return out
