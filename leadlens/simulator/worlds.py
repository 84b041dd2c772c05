"""CRM worlds built differently from `leadlens simulate`, each with the truth at its cutoff.

`leadlens simulate` is one world among many; a model tuned until it wins there has learned our
simulator. These presets differ in what drives conversion (the stage a lead reached, its own
attributes, the rep's skill, a rising base rate, long cycles, a small book, a year that
drifts). They share one daily process, unlike the demo simulator's step-by-step one:

- every lead has a static log-odds `quality` from its attributes, source and owner rep (the
  world sets the weights) and sits in a stage: new, touched, replied, met, proposed;
- each day while it is open, its rep touches it with a probability that falls with the touches
  already made (reps give up), a touch moves it one stage on with a probability that rises with
  its quality, and it converts or is lost with daily hazards set by its stage, its quality and
  the calendar (the world's trend and dormancy);
- the export ends at the cutoff. The truth is each open lead's probability of converting within
  the horizon after the cutoff, estimated by continuing its process from its state at the
  cutoff many times (Monte Carlo), with the same dynamics.

The `drifting` world is meant to be read as an initial export and 12 monthly deltas
(`leadlens.simulator.deltas`): its months are those deltas, numbered 1-12 over the 12 months
before its cutoff (July 2025 to June 2026 at its default size), after 18 months of history
that let its open book settle. Months 1-4 (`CALM_MONTHS`) are calm. From month 5
(`MIX_DRIFT_MONTHS`) a new `paid` channel brings 40% of new leads (0% before); its leads are
no better than the others on average, so the mix alone barely moves the base rate. From month
8 (`BASE_DRIFT_MONTHS`) every open lead's conversion hazard falls by 0.8 log-odds (to about
half). A drift monitor should alarm in `DRIFT_MONTHS` (5-12) and not in `CALM_MONTHS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from leadlens.simulator.crm import COUNTRIES, INDUSTRIES, SOURCES

STAGES = ("new", "touched", "replied", "met", "proposed")
START = "2024-01-01"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DELTA_MONTHS = 12
"""Months of deltas before a world's cutoff; month 1 starts 12 months before it."""
CALM_MONTHS: tuple[int, ...] = (1, 2, 3, 4)
"""The drifting world's months in which nothing drifts."""
MIX_DRIFT_MONTHS: tuple[int, ...] = tuple(range(5, DELTA_MONTHS + 1))
"""The drifting world's months in which the `paid` channel brings 40% of new leads."""
BASE_DRIFT_MONTHS: tuple[int, ...] = tuple(range(8, DELTA_MONTHS + 1))
"""The drifting world's months in which the conversion hazard is 0.8 log-odds lower."""
DRIFT_MONTHS: tuple[int, ...] = MIX_DRIFT_MONTHS
"""The drifting world's months in which something drifts (the source mix, then the base
rate too)."""
_SOURCE_FX = np.array([0.0, 1.0, 0.3, -0.8, 0.5])  # quality effect of each of SOURCES


@dataclass(frozen=True)
class World:
    """What drives conversion in one world (all effects in log-odds of the daily hazard)."""

    name: str
    description: str
    leads: int = 6000
    reps: int = 20
    days: int = 540
    stage_effect: tuple[float, ...] = (-8.0, -7.2, -6.0, -5.2, -4.4)
    attribute_weight: float = 0.6
    source_weight: float = 0.6
    rep_skill_sd: float = 0.3
    trend: float = 0.0
    """Log-odds added to every hazard by the end of the period (linear in time)."""
    dormancy: float = 0.03
    """Per day without a touch, the conversion hazard's log-odds fall by this much (0: a quiet
    lead keeps its value: memoryless)."""
    loss_log_odds: float = -5.8
    advance_log_odds: float = -0.8
    touch_start: float = 0.35
    touch_decay: float = 0.25
    seed: int = 11
    drift_source: str = "paid"
    """The channel whose share of new leads drifts (one not in SOURCES is new: its quality
    effect is the mean of theirs)."""
    drift_source_share: float = 0.0
    """Share of the leads created from month `drift_source_month` on that come from
    `drift_source` (0: the mix never drifts)."""
    drift_source_month: int = 0
    base_drift: float = 0.0
    """Log-odds added to the conversion hazard from month `base_drift_month` on (0: never)."""
    base_drift_month: int = 0

    @property
    def drift_months(self) -> tuple[int, ...]:
        """The months (1-12, the monthly deltas before the cutoff) in which something drifts."""
        onsets = [m for m, size in ((self.drift_source_month, self.drift_source_share),
                                    (self.base_drift_month, self.base_drift)) if size]
        return tuple(range(max(1, min(onsets)), DELTA_MONTHS + 1)) if onsets else ()


WORLDS: dict[str, World] = {w.name: w for w in (
    World("stage_dormancy", "the stage a lead reached drives conversion and a quiet lead keeps "
          "its value for months (memoryless dormancy)",
          stage_effect=(-9.0, -8.0, -6.6, -5.6, -4.6), attribute_weight=0.2, source_weight=0.2,
          dormancy=0.0, seed=21),
    World("attributes", "the lead's own attributes and source decide; activity matters little",
          stage_effect=(-6.6, -6.4, -6.2, -6.0, -5.8), attribute_weight=1.4, source_weight=1.0,
          seed=22),
    World("rep_skill", "the owner rep's skill decides far more than the lead",
          attribute_weight=0.2, source_weight=0.2, rep_skill_sd=1.2, seed=23),
    World("rising_base", "the base rate roughly triples over the period",
          trend=1.2, seed=24),
    World("long_cycles", "cycles of six months or more: a big book of old open leads",
          stage_effect=(-9.4, -8.8, -7.8, -7.0, -6.2), loss_log_odds=-7.0, dormancy=0.005,
          touch_start=0.2, touch_decay=0.12, days=720, seed=25),
    World("small", "a small CRM of 800 leads and 6 reps", leads=800, reps=6, seed=26),
    World("drifting", "a year of monthly deltas that drifts: months 1-4 calm; from month 5 a new "
          "paid channel brings 40% of new leads; from month 8 the base rate falls by 0.8 "
          "log-odds", leads=10000, days=912, drift_source_share=0.4,
          drift_source_month=MIX_DRIFT_MONTHS[0], base_drift=-0.8,
          base_drift_month=BASE_DRIFT_MONTHS[0], seed=27),
)}


def month_bounds(cutoff: pd.Timestamp, months: int = DELTA_MONTHS) -> list[pd.Timestamp]:
    """The starts of the `months` months before `cutoff`, then `cutoff`: month m (1-based) is
    [bounds[m - 1], bounds[m])."""
    return [cutoff - pd.DateOffset(months=months - k) for k in range(months + 1)]


@lru_cache(maxsize=64)
def month_start_day(days: int, month: int) -> int:
    """The simulation day on which month `month` (1-12 before a `days`-day world's cutoff)
    starts."""
    start = pd.Timestamp(START)
    bound = month_bounds(start + pd.Timedelta(days=days))[month - 1]
    return int((bound - start).days)


@dataclass
class _Book:
    """Every lead's state as the simulation leaves it."""

    owner: np.ndarray
    attrs: dict[str, np.ndarray]
    created: np.ndarray
    quality: np.ndarray
    discipline: np.ndarray  # of the lead's owner
    stage: np.ndarray
    touches: np.ndarray
    quiet: np.ndarray
    won_day: np.ndarray
    lost_day: np.ndarray
    acts: list[tuple[int, int, int]]  # (lead, day, stage reached after the touch)


@dataclass
class WorldCRM:
    """A world's export (contract frames), its cutoff, and the truth for its open leads."""

    world: World
    leads: pd.DataFrame
    activities: pd.DataFrame
    reps: pd.DataFrame
    cutoff: pd.Timestamp
    truth: pd.DataFrame  # lead_id, p_true (within the horizon after the cutoff)
    after: pd.DataFrame | None = None
    """With `after_days`: the outcomes of the leads open at the cutoff in the days after it
    (lead_id, converted_at, closed_lost_at; one draw of the future, to judge recorded scores)."""


def _quality(world: World, rng: np.random.Generator, n: int, rep_skill: np.ndarray,
             owner: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    source = rng.integers(0, len(SOURCES), n)
    industry = rng.integers(0, len(INDUSTRIES), n)
    country = rng.integers(0, len(COUNTRIES), n)
    size = rng.lognormal(3.5, 1.2, n)
    src_fx = _SOURCE_FX[source]
    ind_fx = np.array([0.5, 0.2, 0.0, -0.4, 0.1, -0.5])[industry]
    size_fx = 0.35 * (np.log(size) - 3.5)
    quality = (world.source_weight * src_fx + world.attribute_weight * (ind_fx + size_fx)
               + rep_skill[owner])
    attrs = {"source": np.asarray(SOURCES)[source], "industry": np.asarray(INDUSTRIES)[industry],
             "country": np.asarray(COUNTRIES)[country], "company_size": np.round(size)}
    return quality, attrs


def _drift_sources(world: World, rng: np.random.Generator, quality: np.ndarray,
                   attrs: dict[str, np.ndarray], created: np.ndarray,
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Move the drifting share of the leads created from the drift month on to the drifting
    channel; their quality follows the channel."""
    start = month_start_day(world.days, world.drift_source_month)
    moved = (created >= start) & (rng.random(len(created)) < world.drift_source_share)
    index = {s: i for i, s in enumerate(SOURCES)}
    new_fx = (_SOURCE_FX[index[world.drift_source]] if world.drift_source in index
              else float(_SOURCE_FX.mean()))
    old_fx = _SOURCE_FX[[index[s] for s in attrs["source"]]]
    quality = quality + np.where(moved, world.source_weight * (new_fx - old_fx), 0.0)
    return quality, {**attrs, "source": np.where(moved, world.drift_source, attrs["source"])}


def _step(world: World, rng: np.random.Generator, day: np.ndarray, stage: np.ndarray,
          touches: np.ndarray, quiet: np.ndarray, quality: np.ndarray, discipline: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One day for every row: (touched, advanced, converted, lost)."""
    n = len(stage)
    p_touch = discipline * world.touch_start * np.exp(-world.touch_decay * touches)
    touched = rng.random(n) < p_touch
    p_adv = 1 / (1 + np.exp(-(world.advance_log_odds + 0.7 * quality)))
    advanced = touched & (stage < len(STAGES) - 1) & (rng.random(n) < p_adv)
    trend = world.trend * day / max(1, world.days)
    logit = (np.asarray(world.stage_effect)[stage] + quality + trend
             - world.dormancy * np.minimum(quiet, 120))
    if world.base_drift:
        logit = logit + np.where(day >= month_start_day(world.days, world.base_drift_month),
                                 world.base_drift, 0.0)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    lost = ~converted & (rng.random(n) < 1 / (1 + np.exp(-(world.loss_log_odds
                                                              - 0.3 * quality))))
    return touched, advanced, converted, lost


def build_world(world: World, horizon_days: int = 90, draws: int = 200,
                seed: int | None = None, after_days: int = 0) -> WorldCRM:
    """Simulate `world` day by day up to its cutoff and estimate the truth for its open leads;
    with `after_days`, go on that many days after the cutoff (its own random stream, so the
    export and the truth are the same as without) and keep what became of the open leads."""
    rng = np.random.default_rng(world.seed if seed is None else seed)
    skill = rng.normal(0, world.rep_skill_sd, world.reps)
    discipline = np.clip(rng.normal(1.0, 0.3, world.reps), 0.3, 1.6)
    owner = rng.integers(0, world.reps, world.leads)
    quality, attrs = _quality(world, rng, world.leads, skill, owner)
    created = np.sort(rng.integers(0, world.days, world.leads))
    if world.drift_source_share:
        quality, attrs = _drift_sources(world, rng, quality, attrs, created)
    stage = np.zeros(world.leads, dtype=np.int64)
    touches = np.zeros(world.leads, dtype=np.int64)
    quiet = np.zeros(world.leads, dtype=np.int64)
    won_day = np.full(world.leads, -1)
    lost_day = np.full(world.leads, -1)
    acts: list[tuple[int, int, int]] = []  # (lead, day, stage reached after the touch)
    for day in range(world.days):
        live = np.flatnonzero((created <= day) & (won_day < 0) & (lost_day < 0))
        if live.size == 0:
            continue
        touched, advanced, converted, lost = _step(
            world, rng, np.full(live.size, day), stage[live], touches[live], quiet[live],
            quality[live], discipline[owner[live]])
        stage[live[advanced]] += 1
        touches[live[touched]] += 1
        quiet[live] = np.where(touched, 0, quiet[live] + 1)
        acts += [(int(i), day, int(stage[i])) for i in live[touched]]
        won_day[live[converted]] = day
        lost_day[live[lost]] = day
    book = _Book(owner, attrs, created, quality, discipline[owner], stage, touches, quiet,
                 won_day, lost_day, acts)
    open_idx = np.flatnonzero((won_day < 0) & (lost_day < 0))
    truth = _truth(world, rng, book, open_idx, horizon_days, draws)
    after = _after(world, np.random.default_rng([world.seed if seed is None else seed, 1]),
                   book, open_idx, after_days) if after_days else None
    return replace(_frames(world, rng, book, open_idx, truth), after=after)


def _after(world: World, rng: np.random.Generator, book: _Book, idx: np.ndarray,
           days: int) -> pd.DataFrame:
    """One continuation of the open leads' process for `days` days after the cutoff: who
    converted or was lost, and when (no new leads, no activities)."""
    won_day, lost_day = _continue(world, rng, book, idx, days)
    start = pd.Timestamp(START)
    secs = pd.to_timedelta(rng.integers(9 * 3600, 17 * 3600, len(idx)), unit="s")

    def at(day: np.ndarray) -> pd.Series:
        return pd.Series(start + pd.to_timedelta(day, unit="D") + secs).where(day >= 0)

    return pd.DataFrame({"lead_id": [f"W{i:06d}" for i in idx], "converted_at": at(won_day),
                         "closed_lost_at": at(lost_day)})


def _continue(world: World, rng: np.random.Generator, book: _Book, idx: np.ndarray,
              days: int) -> tuple[np.ndarray, np.ndarray]:
    """The process of the leads `idx` (repeats are independent copies) for `days` days after
    the cutoff, from their state then: the day each converted, and the day each was lost (-1:
    neither)."""
    st, tc, qt = book.stage[idx].copy(), book.touches[idx].copy(), book.quiet[idx].copy()
    q, disc = book.quality[idx], book.discipline[idx]
    won_day = np.full(len(idx), -1)
    lost_day = np.full(len(idx), -1)
    for d in range(days):
        live = np.flatnonzero((won_day < 0) & (lost_day < 0))
        if live.size == 0:
            break
        touched, advanced, converted, lost = _step(
            world, rng, np.full(live.size, world.days + d), st[live], tc[live], qt[live],
            q[live], disc[live])
        st[live[advanced]] += 1
        tc[live[touched]] += 1
        qt[live] = np.where(touched, 0, qt[live] + 1)
        won_day[live[converted]] = world.days + d
        lost_day[live[lost]] = world.days + d  # `_step` never loses a lead it converts
    return won_day, lost_day


def _truth(world: World, rng: np.random.Generator, book: _Book, idx: np.ndarray,
           horizon_days: int, draws: int) -> np.ndarray:
    """P(convert within the horizon after the cutoff) per open lead, by continuing its process
    `draws` times from its state at the cutoff."""
    won_day, _lost = _continue(world, rng, book, np.repeat(idx, draws), horizon_days)
    won = won_day >= 0
    return won.reshape(len(idx), draws).mean(axis=1) if len(idx) else np.array([])


def _frames(world: World, rng: np.random.Generator, book: _Book, open_idx: np.ndarray,
            truth: np.ndarray) -> WorldCRM:
    start = pd.Timestamp(START)
    cutoff = start + pd.Timedelta(days=world.days)
    owner, attrs, created = book.owner, book.attrs, book.created
    won_day, lost_day, acts = book.won_day, book.lost_day, book.acts
    n = len(created)
    lead_ids = np.array([f"W{i:06d}" for i in range(n)])
    rep_ids = np.array([f"R{i:03d}" for i in range(world.reps)])
    secs = rng.integers(8 * 3600, 18 * 3600, n)
    created_at = start + pd.to_timedelta(created, unit="D") + pd.to_timedelta(secs, unit="s")

    def at(day: np.ndarray) -> pd.Series:
        offs = pd.to_timedelta(day, unit="D") + pd.to_timedelta(rng.integers(9 * 3600, 17 * 3600,
                                                                             n), unit="s")
        out = pd.Series(start + offs)
        return out.where(day >= 0)

    # an outcome on the day of creation comes after it
    floor = pd.Series(created_at) + pd.Timedelta(hours=1)
    won_at = at(won_day).where(won_day < 0, np.maximum(at(won_day), floor))
    lost_at = at(lost_day).where(lost_day < 0, np.maximum(at(lost_day), floor))
    leads = pd.DataFrame({"lead_id": lead_ids, "created_at": created_at,
                          "owner_rep_id": rep_ids[owner], "source": attrs["source"],
                          "converted_at": won_at, "closed_lost_at": lost_at.where(won_at.isna()),
                          "deal_amount": np.where(won_day >= 0, 5000.0, np.nan),
                          "industry": attrs["industry"], "company_size": attrs["company_size"],
                          "country": attrs["country"]})
    rows = []
    kinds = {1: ("call", "outbound", "no_answer"), 2: ("email", "inbound", "replied"),
             3: ("meeting", "outbound", "held"), 4: ("proposal", "outbound", "sent")}
    for k, (lead, day, reached) in enumerate(acts):
        type_, direction, outcome = kinds.get(reached, ("call", "outbound", "no_answer"))
        when = start + pd.Timedelta(days=day, seconds=int(9 * 3600 + (k * 7919) % 28800))
        if when <= leads.at[lead, "created_at"]:
            when = leads.at[lead, "created_at"] + pd.Timedelta(minutes=5)
        rows.append((f"WA{k:08d}", lead_ids[lead], rep_ids[owner[lead]], when, type_,
                     direction, outcome, 5000.0 if type_ == "proposal" else np.nan))
    activities = pd.DataFrame(rows, columns=["activity_id", "lead_id", "rep_id", "occurred_at",
                                             "type", "direction", "outcome", "amount"])
    activities = activities[activities["occurred_at"] < cutoff]
    reps = pd.DataFrame({"rep_id": rep_ids, "team": [f"team-{i % 3 + 1}" for i in
                                                     range(world.reps)]})
    truth_frame = pd.DataFrame({"lead_id": lead_ids[open_idx], "p_true": truth})
    return WorldCRM(world, leads, activities.reset_index(drop=True), reps, cutoff, truth_frame)


def write_world(crm: WorldCRM, out_dir: Path) -> dict[str, Path]:
    """The export as contract CSVs, and `truth/open_leads.csv` beside them (never read by
    LeadLens)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in ("leads", "activities", "reps")}
    crm.leads.to_csv(paths["leads"], index=False, date_format=DATE_FORMAT)
    crm.activities.to_csv(paths["activities"], index=False, date_format=DATE_FORMAT)
    crm.reps.to_csv(paths["reps"], index=False)
    paths["truth"] = write_truth(crm, out_dir)
    return paths


def write_truth(crm: WorldCRM, out_dir: Path) -> Path:
    """`truth/open_leads.csv` and `truth/cutoff.txt` (the world's cutoff) under `out_dir`, and
    `truth/after.csv` when the world went on after its cutoff."""
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    path = out_dir / "truth" / "open_leads.csv"
    crm.truth.to_csv(path, index=False)
    (out_dir / "truth" / "cutoff.txt").write_text(f"{crm.cutoff.isoformat()}\n")
    if crm.after is not None:
        crm.after.to_csv(out_dir / "truth" / "after.csv", index=False, date_format=DATE_FORMAT)
    return path


def world(name: str, leads: int | None = None, reps: int | None = None,
          days: int | None = None, seed: int | None = None) -> World:
    """A preset by name, optionally resized or reseeded (e.g. `leads=2000` for a quick run)."""
    try:
        base = WORLDS[name]
    except KeyError:
        raise ValueError(f"unknown world {name!r}: one of {', '.join(WORLDS)}") from None
    return replace(base, leads=leads or base.leads, reps=reps or base.reps,
                   days=days or base.days, seed=base.seed if seed is None else seed)
