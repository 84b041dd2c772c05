"""A realistic simulated CRM for demos, tests and benchmarks (seeded, deterministic).

The process follows what sales research reports: a lead rarely answers the first touch, so most
conversions need several follow-ups; many reps give up after one or two; a few skilled and
disciplined reps close a large share of the sales. Each lead has a hidden fit (from its source,
industry, size and country, plus noise); each rep a hidden skill and follow-up discipline. A lead
moves through touches -> reply -> meeting (held or no-show) -> proposal -> won or lost, and the
rep may go quiet at any step; some quiet leads are re-engaged after a dormant spell.

The `truth` frames hold what LeadLens never sees: each lead's fit and each rep's skill and
discipline, to judge models and rep flags against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import SimulateConfig

SOURCES = ("web", "referral", "event", "outbound", "partner")
_SOURCE_P = (0.35, 0.10, 0.15, 0.25, 0.15)
_SOURCE_FIT = (0.0, 1.1, 0.2, -0.7, 0.5)
INDUSTRIES = ("software", "finance", "healthcare", "retail", "manufacturing", "education")
_INDUSTRY_P = (0.25, 0.15, 0.15, 0.15, 0.2, 0.1)
_INDUSTRY_FIT = (0.4, 0.2, 0.0, -0.3, 0.1, -0.4)
COUNTRIES = ("US", "UK", "DE", "FR", "BR", "IN")
_COUNTRY_P = (0.4, 0.15, 0.15, 0.1, 0.1, 0.1)
_COUNTRY_FIT = (0.1, 0.1, 0.0, -0.1, -0.2, -0.2)

_MAX_STEPS = 40
_MAX_OUTBOUND = 20
_FIT_INTERCEPT = 0.3

StepProgress = Callable[[int], None]


@dataclass
class SimulatedCRM:
    """A simulated CRM export (leads, activities, reps) and its hidden truth per lead and rep."""

    leads: pd.DataFrame
    activities: pd.DataFrame
    reps: pd.DataFrame
    lead_truth: pd.DataFrame
    rep_truth: pd.DataFrame


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _propensity(fit: np.ndarray, converted: np.ndarray, resolved: np.ndarray) -> np.ndarray:
    """Chance that a lead of this fit converts with an average rep: a one-feature logistic
    regression of the resolved leads' outcomes on their fit (Newton steps)."""
    x, y = fit[resolved], converted[resolved].astype(float)
    if x.size < 10 or y.min() == y.max():
        return _sigmoid(fit)
    w = np.zeros(2)
    design = np.column_stack([np.ones_like(x), x])
    for _ in range(25):
        p = _sigmoid(design @ w)
        grad = design.T @ (y - p)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        w += np.linalg.solve(hess, grad)
    return _sigmoid(w[0] + w[1] * fit)


class _Log:
    """Collects activity columns step by step, as numpy chunks."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[np.ndarray]] = {
            k: [] for k in ("lead", "t", "type", "direction", "outcome", "amount")
        }

    def add(self, lead: np.ndarray, t: np.ndarray, type_: np.ndarray | int,
            direction: int, outcome: np.ndarray | int, amount: np.ndarray | None = None) -> None:
        n = len(lead)
        if n == 0:
            return
        self.chunks["lead"].append(lead)
        self.chunks["t"].append(t)
        self.chunks["type"].append(np.broadcast_to(np.asarray(type_, dtype=np.int8), n))
        self.chunks["direction"].append(np.full(n, direction, dtype=np.int8))
        self.chunks["outcome"].append(np.broadcast_to(np.asarray(outcome, dtype=np.int8), n))
        self.chunks["amount"].append(np.full(n, np.nan) if amount is None else amount)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.array([]) for k, v in self.chunks.items()}


_TYPES = np.array(["call", "email", "meeting", "proposal", "other"])
_OUTCOMES = np.array(["no_answer", "voicemail", "connected", "sent", "replied", "held",
                      "no_show", "inquiry", "social_touch"])
CALL, EMAIL, MEETING, PROPOSAL, OTHER = 0, 1, 2, 3, 4
NO_ANSWER, VOICEMAIL, CONNECTED, SENT, REPLIED, HELD, NO_SHOW, INQUIRY, NOTE = range(9)
OUT, IN = 0, 1


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def simulate_crm(config: SimulateConfig, progress: StepProgress | None = None, *,
                 uniform_owners: bool = False) -> SimulatedCRM:
    """Simulate a CRM: leads, activities and reps in the contract, plus the hidden truth.

    `uniform_owners` deals every lead to a rep at random, whatever its source and fit: the
    counterfactual in which all reps work the same kind of leads (see `rep_true_performance`).
    """
    rng = np.random.default_rng(config.seed)
    n, r = config.leads, config.reps
    start = np.datetime64(config.start, "s")
    end = (np.datetime64(config.start, "M") + np.timedelta64(config.months, "M")).astype(
        "datetime64[s]")
    end_day = (end - start) / np.timedelta64(1, "D")

    # --- reps: skill (log-odds effect), discipline in [0, 1], teams ---
    n_teams = max(1, r // 8)
    skill = rng.normal(0.0, 1.0, r) * config.rep_skill_sd
    discipline_draw = rng.beta(1.6, 2.0, r)
    discipline_draw = 1.6 / 3.6 + config.discipline_spread * (discipline_draw - 1.6 / 3.6)
    if config.weak_rep_share > 0:
        # a separate stream, so the default CRM stays the same
        weak = np.random.default_rng(config.seed + 1).permutation(r)[
            : round(config.weak_rep_share * r)]
        skill[weak] = config.weak_rep_skill
        discipline_draw[weak] = np.minimum(discipline_draw[weak], 0.25)
    # good reps tend to be disciplined too, which concentrates the sales in a few of them
    discipline = np.clip(discipline_draw + 0.12 * skill, 0.0, 1.0)
    stop_p = 0.55 - 0.50 * discipline  # chance of going quiet after an unanswered touch
    team = np.array([f"team-{i % n_teams + 1}" for i in range(r)])
    rep_ids = _ids("R", r, 3)

    # --- leads: attributes, hidden fit, owner ---
    created = np.sort(rng.uniform(0.0, end_day, n))
    created = end_day * (created / end_day) ** 0.85  # slow growth in lead flow
    src = rng.choice(len(SOURCES), n, p=_SOURCE_P)
    ind = rng.choice(len(INDUSTRIES), n, p=_INDUSTRY_P)
    cty = rng.choice(len(COUNTRIES), n, p=_COUNTRY_P)
    size = np.maximum(1, np.round(np.exp(rng.normal(np.log(60), 1.3, n)))).astype(int)
    fit = (
        _FIT_INTERCEPT
        + np.asarray(_SOURCE_FIT)[src]
        + np.asarray(_INDUSTRY_FIT)[ind]
        + np.asarray(_COUNTRY_FIT)[cty]
        + 0.35 * np.log10(size / 60.0)
        + rng.normal(0.0, 0.6, n)
    )
    # reps get different source mixes, so their lead quality differs for reasons they don't own
    mix = rng.gamma(1.5, 1.0, (len(SOURCES), r))
    mix /= mix.sum(axis=1, keepdims=True)
    owner = np.empty(n, dtype=np.int64)
    if uniform_owners:
        owner[:] = rng.integers(0, r, n)
    elif config.lead_skill_skew == 0:
        for s in range(len(SOURCES)):
            m = src == s
            owner[m] = rng.choice(r, m.sum(), p=mix[s])
    else:
        # lead quality follows rep skill: within each fit decile, reps are weighted by
        # exp(skew * skill * z), where z is the decile's position (-1 worst to +1 best)
        decile = np.minimum((np.argsort(np.argsort(fit)) * 10) // n, 9)
        for d in range(10):
            z = (d - 4.5) / 4.5
            w = np.exp(config.lead_skill_skew * skill * z)
            m = decile == d
            owner[m] = rng.choice(r, m.sum(), p=w / w.sum())
    sk, dis, stop = skill[owner], discipline[owner], stop_p[owner]

    log = _Log()
    lead_idx = np.arange(n)

    # inbound inquiries start some web and referral leads already engaged
    engaged = (np.isin(src, (0, 1))) & (rng.random(n) < 0.25)
    inq = np.flatnonzero(engaged)
    log.add(inq, created[inq] + rng.uniform(0.0, 0.05, inq.size), EMAIL, IN, INQUIRY)

    never = rng.random(n) < 0.03 + 0.07 * (1.0 - dis)
    alive = ~never
    t = created + 0.05 + rng.exponential(0.3 + 3.0 * (1.0 - dis))
    met = np.zeros(n, bool)
    proposed = np.zeros(n, bool)
    amount = np.full(n, np.nan)
    n_out = np.zeros(n, np.int64)
    revivals = np.zeros(n, np.int64)
    won_t = np.full(n, np.nan)
    lost_t = np.full(n, np.nan)
    deal_size = np.round(
        4000.0 * (size / 60.0) ** 0.35 * np.exp(rng.normal(0.0, 0.45, n)), -2
    ).clip(500, None)

    for step in range(_MAX_STEPS):
        alive &= t < end_day
        i = lead_idx[alive]
        if i.size == 0:
            break
        u = rng.random((6, i.size))
        e, m, p = engaged[i], met[i], proposed[i]
        # what the rep does at this touch
        kind = np.where(u[0] < 0.55, CALL, np.where(u[0] < 0.92, EMAIL, OTHER))
        kind = np.where(e & ~m & (u[1] < 0.65), MEETING, kind)
        kind = np.where(m & ~p & (u[1] < 0.55 + 0.3 * _sigmoid(sk[i])), PROPOSAL, kind)
        n_out[i] += 1

        # the lead's answer: replies grow likelier as the follow-ups accumulate
        k = np.minimum(n_out[i], 7)
        reply_p = np.where(
            e,
            0.5,
            _sigmoid(fit[i] + 0.6 * sk[i] - 3.3 + 0.3 * k),
        )
        reply = (u[2] < reply_p) & (kind != MEETING)
        held = (kind == MEETING) & (u[2] < _sigmoid(fit[i] + 0.5 * sk[i] + 0.6))
        outcome = np.where(kind == CALL, np.where(u[3] < 0.5, NO_ANSWER, VOICEMAIL), SENT)
        outcome = np.where(kind == OTHER, NOTE, outcome)
        outcome = np.where(kind == MEETING, np.where(held, HELD, NO_SHOW), outcome)
        amt = np.where(kind == PROPOSAL, deal_size[i], np.nan)
        log.add(i, t[i], kind, OUT, outcome, amt)
        r_i = i[reply]
        log.add(r_i, t[r_i] + rng.uniform(0.05, 2.0, r_i.size),
                np.where(u[4][reply] < 0.7, EMAIL, CALL), IN,
                np.where(u[4][reply] < 0.7, REPLIED, CONNECTED))

        engaged[i] |= reply | held
        met[i] |= held
        newly_proposed = kind == PROPOSAL
        proposed[i] |= newly_proposed
        amount[i] = np.where(newly_proposed, deal_size[i], amount[i])

        # resolution: proposals are won or lost; engaged leads are sometimes disqualified
        p_now = proposed[i]
        win = p_now & (u[5] < 0.25 * _sigmoid(fit[i] + 1.4 * sk[i] - 0.5))
        lose = ~win & (u[5] > 1.0 - np.where(p_now, 0.06, np.where(engaged[i], 0.03, 0.0)))
        won_t[i[win]] = t[i[win]] + rng.uniform(2.0, 10.0, win.sum())  # after any reply
        lost_t[i[lose]] = t[i[lose]] + rng.uniform(2.0, 10.0, lose.sum())
        done = win | lose | (n_out[i] >= _MAX_OUTBOUND)

        # the rep keeps following up, goes quiet, or comes back after a dormant spell
        quiet_p = stop[i] * np.where(p_now, 0.15, np.where(engaged[i], 0.25, 1.0))
        quiet = ~done & (rng.random(i.size) < quiet_p)
        revive = quiet & (revivals[i] < 2) & (rng.random(i.size) < 0.08 + 0.2 * dis[i])
        drop = quiet & ~revive
        give_up = i[drop & (rng.random(i.size) < 0.5)]
        lost_t[give_up] = t[give_up] + rng.uniform(14.0, 60.0, give_up.size)
        revivals[i[revive]] += 1

        gap = 0.3 + rng.exponential(1.0 + 5.0 * (1.0 - dis[i]))
        spell = rng.random(i.size) < 0.03
        gap = np.where(revive | spell, rng.uniform(31.0, 120.0, i.size), gap)
        t[i] += gap
        alive[i] = ~(done | drop)
        if progress is not None:
            progress(step)

    acts = log.arrays()
    keep = acts["t"] < end_day
    acts = {k: v[keep] for k, v in acts.items()}
    order = np.lexsort((acts["t"], acts["lead"]))
    acts = {k: v[order] for k, v in acts.items()}

    won_t[won_t >= end_day] = np.nan
    lost_t[lost_t >= end_day] = np.nan
    converted = ~np.isnan(won_t)

    def stamp(days: np.ndarray) -> np.ndarray:
        secs = np.round(np.nan_to_num(days, nan=0.0) * 86400.0).astype("int64")
        out = start + secs.astype("timedelta64[s]")
        return np.where(np.isnan(days), np.datetime64("NaT"), out)

    lead_ids = _ids("L", n, max(6, len(str(n))))
    leads = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "created_at": stamp(created),
            "owner_rep_id": rep_ids[owner],
            "source": np.asarray(SOURCES)[src],
            "converted_at": stamp(won_t),
            "closed_lost_at": stamp(lost_t),
            "deal_amount": np.where(converted, amount, np.nan),
            "industry": np.asarray(INDUSTRIES)[ind],
            "company_size": size,
            "country": np.asarray(COUNTRIES)[cty],
            # personal data, as real exports carry it: ingestion must drop it
            "contact_email": np.char.add(np.char.lower(lead_ids), "@example.com"),
        }
    )
    activities = pd.DataFrame(
        {
            "activity_id": _ids("A", len(acts["t"]), max(8, len(str(len(acts["t"]))))),
            "lead_id": lead_ids[acts["lead"]],
            "rep_id": np.where(acts["direction"] == OUT, rep_ids[owner[acts["lead"]]], None),
            "occurred_at": stamp(acts["t"]),
            "type": _TYPES[acts["type"]],
            "direction": np.where(acts["direction"] == OUT, "outbound", "inbound"),
            "outcome": _OUTCOMES[acts["outcome"]],
            "amount": acts["amount"],
        }
    )

    # management sets one quota that about two thirds of the reps make once the pipeline is
    # up to speed: measured over the last third of the history (the early months are ramp-up)
    steady_months = max(1, config.months // 3)
    steady = converted & (won_t >= end_day * (1 - steady_months / config.months))
    revenue = np.bincount(owner[steady], weights=amount[steady], minlength=r) / steady_months
    quota = max(500.0, np.floor(np.quantile(revenue, 1.0 / 3.0) / 500.0) * 500.0)
    hired = start - (rng.uniform(30, 1500, r) * 86400).astype("timedelta64[s]")
    reps = pd.DataFrame(
        {"rep_id": rep_ids, "team": team, "hired_at": hired, "monthly_quota": quota}
    )
    lead_truth = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "fit_logit": fit,
            "propensity": _propensity(fit, converted, converted | ~np.isnan(lost_t)),
        }
    )
    rep_truth = pd.DataFrame(
        {
            "rep_id": rep_ids,
            "team": team,
            "skill": skill,
            "discipline": discipline,
            "quiet_probability": stop_p,
            "weak_seller": skill <= -1.0,
            "undisciplined": discipline <= 0.15,
        }
    )
    return SimulatedCRM(leads, activities, reps, lead_truth, rep_truth)


WEAK_RELATIVE_PERFORMANCE = 0.75
"""A rep is truly weak when, on the same leads, they convert less than this fraction of what
the median rep converts (skill and follow-up discipline together): the same materiality the
rep flags use by default (`reps.conversion_margin`)."""


def rep_true_performance(config: SimulateConfig, leads_per_rep: int = 4000) -> pd.DataFrame:
    """Each rep's true conversion rate on a common pool of leads (the same reps, every lead
    dealt at random), relative to the median rep; `weak` marks the truly weak reps."""
    counterfactual = config.model_copy(update={"leads": leads_per_rep * config.reps,
                                              "lead_skill_skew": 0.0})
    crm = simulate_crm(counterfactual, uniform_owners=True)
    won = crm.leads["converted_at"].notna()
    rate = won.groupby(crm.leads["owner_rep_id"]).mean()
    out = crm.rep_truth[["rep_id", "team", "skill", "discipline"]].copy()
    out["true_conversion_rate"] = out["rep_id"].map(rate).fillna(0.0)
    out["true_relative"] = out["true_conversion_rate"] / out["true_conversion_rate"].median()
    out["weak"] = out["true_relative"] < WEAK_RELATIVE_PERFORMANCE
    return out


def write_crm(crm: SimulatedCRM, out_dir: Path) -> dict[str, Path]:
    """Write the contract files and, apart from them, `truth/` (never read by LeadLens)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(exist_ok=True)
    paths = {
        "leads": out_dir / "leads.csv",
        "activities": out_dir / "activities.csv",
        "reps": out_dir / "reps.csv",
        "lead_truth": out_dir / "truth" / "leads.csv",
        "rep_truth": out_dir / "truth" / "reps.csv",
    }
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    crm.leads.to_csv(paths["leads"], index=False, date_format=fmt)
    crm.activities.to_csv(paths["activities"], index=False, date_format=fmt)
    crm.reps.to_csv(paths["reps"], index=False, date_format=fmt)
    crm.lead_truth.to_csv(paths["lead_truth"], index=False)
    crm.rep_truth.to_csv(paths["rep_truth"], index=False)
    return paths
