"""Online engagement features: the same definitions as the batch query, for leads given in a
request (attributes plus an activity list), with no warehouse round trip per lead.

Past rates come from an `OutcomeHistory` loaded once (at service start or per batch) with the
same resolved-leads query the batch path uses. `tests/features/test_parity.py` checks this module
against `features.engagement` on random (lead, as_of) pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.settings import EngagementConfig
from core.timestamps import to_utc_naive
from core.values import is_missing
from features.catalog import (
    ACTIVITY_TYPE_PLURALS,
    DIRECTION_SHORT,
    RATE_PRIOR_WEIGHT,
    SCORE_WEIGHT_HELD_MEETING,
    SCORE_WEIGHT_PROPOSAL,
    SCORE_WEIGHT_RESPONSE,
    SCORE_WEIGHT_TOUCH,
    engagement_features,
    window_label,
)
from features.engagement import DAY, resolved_leads_sql


def epoch_seconds(value: Any) -> float:
    """A timestamp (naive = UTC) as epoch seconds, exactly as the batch query computes it."""
    ts = to_utc_naive(value)
    return int(ts.as_unit("us").asm8.astype("int64")) / 1e6


@dataclass(frozen=True)
class _Track:
    times: np.ndarray  # resolution times, sorted
    won: np.ndarray  # cumulative
    depth: np.ndarray  # cumulative

    def before(self, t: float) -> tuple[int, float, float]:
        k = int(np.searchsorted(self.times, t, side="left"))  # strictly before t
        if k == 0:
            return 0, 0.0, 0.0
        return k, float(self.won[k - 1]), float(self.depth[k - 1])


class OutcomeHistory:
    """Resolved leads, by owner rep, by source and overall, queryable at any as_of."""

    def __init__(self, resolved: pd.DataFrame) -> None:
        self._tracks: dict[tuple[str, str], _Track] = {}
        frame = resolved.sort_values("resolved_s", kind="stable")
        self._tracks[("all", "all")] = self._track(frame)
        for col in ("owner_rep_id", "source"):
            for key, grp in frame.dropna(subset=[col]).groupby(col, sort=False):
                self._tracks[(col, str(key))] = self._track(grp)

    @staticmethod
    def _track(frame: pd.DataFrame) -> _Track:
        return _Track(
            times=frame["resolved_s"].to_numpy(dtype="float64"),
            won=np.cumsum(frame["won"].to_numpy(dtype="float64")),
            depth=np.cumsum(frame["depth"].to_numpy(dtype="float64")),
        )

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection,
                       expiry_days: int | None = None) -> OutcomeHistory:
        """The history of every lead in the track records (`resolved_leads_sql`;
        `expiry_days`: `engagement.open_lead_expiry_days`)."""
        return cls(con.execute(resolved_leads_sql(expiry_days)).df())

    def before(self, group: str, key: str | None, t: float) -> tuple[int, float, float]:
        """(resolved, won, summed depth) of the group's leads resolved strictly before t."""
        if key is None:
            return 0, 0.0, 0.0
        track = self._tracks.get((group, str(key)))
        return (0, 0.0, 0.0) if track is None else track.before(t)

    def between(self, group: str, key: str | None, start: float,
                end: float) -> tuple[int, float, float]:
        """(resolved, won, summed depth) of the group's leads resolved in `[start, end)`."""
        n1, won1, depth1 = self.before(group, key, end)
        n0, won0, depth0 = self.before(group, key, start)
        return n1 - n0, won1 - won0, depth1 - depth0


def online_features(
    lead: Mapping[str, Any],
    activities: Iterable[Mapping[str, Any]] | pd.DataFrame,
    as_of: Any,
    history: OutcomeHistory,
    cfg: EngagementConfig,
    attributes: Iterable[str] = (),
) -> dict[str, Any]:
    """Features of one lead at `as_of`, from its fields and its activities (contract columns).

    Activities at or after `as_of` are ignored. Ties in time are ordered by `activity_id` when
    given, as in the batch path.
    """
    t0 = epoch_seconds(as_of)
    acts = activities if isinstance(activities, pd.DataFrame) else pd.DataFrame(list(activities))
    if len(acts):
        ts_all = np.array([epoch_seconds(v) for v in acts["occurred_at"]], dtype="float64")
        keep = ts_all < t0
        acts = acts.loc[keep]
        ts = ts_all[keep]
        if "activity_id" in acts:
            # an activity without an id sorts after those with one at the same moment (as
            # NULLs sort last in the batch query); mixed missing and text ids must not meet
            # in one comparison
            id_text = acts["activity_id"].astype("string")
            unnamed = id_text.isna().to_numpy()
            ids = id_text.fillna("").to_numpy(dtype=object)
        else:
            unnamed, ids = np.zeros(len(acts), dtype=bool), np.arange(len(acts)).astype(str)
        order = np.lexsort((ids, unnamed, ts))
        ts = ts[order]
        type_ = acts["type"].astype(str).str.lower().to_numpy()[order]
        direction = (acts["direction"].fillna("outbound") if "direction" in acts
                     else pd.Series(["outbound"] * len(acts))).astype(str).str.lower()
        direction = direction.to_numpy()[order]
        outcome = (acts["outcome"] if "outcome" in acts else pd.Series([None] * len(acts)))
        outcome = outcome.astype("string").str.lower().fillna("").to_numpy()[order]
        amount = (pd.to_numeric(acts["amount"], errors="coerce") if "amount" in acts
                  else pd.Series([np.nan] * len(acts))).to_numpy(dtype="float64")[order]
    else:
        ts = np.array([], dtype="float64")
        type_ = direction = outcome = np.array([], dtype=object)
        amount = np.array([], dtype="float64")

    out_m = direction == "outbound"
    in_m = direction == "inbound"
    said = {o.lower() for o in cfg.response_outcomes}
    resp_m = in_m | (out_m & (type_ == "call") & np.isin(outcome, list(said)))
    held = (type_ == "meeting") & (outcome == "held")
    feats: dict[str, Any] = {}
    for t_name, plural in ACTIVITY_TYPE_PLURALS.items():
        for d_name, short in DIRECTION_SHORT.items():
            base = (type_ == t_name) & (direction == d_name)
            for days in (*cfg.windows_days, None):
                m = base if days is None else base & (ts >= t0 - days * DAY)
                feats[f"{plural}_{short}_{window_label(days)}"] = float(m.sum())

    n_out, n_in = int(out_m.sum()), int(in_m.sum())
    n_resp = int(resp_m.sum())
    first_response = ts[resp_m].min() if n_resp else None
    first_held = ts[held].min() if held.any() else None
    out_ts = ts[out_m]
    gap_any = np.diff(ts, prepend=np.nan)
    gap_out = np.diff(out_ts, prepend=np.nan)

    feats["outbound_touches"] = float(n_out)
    feats["inbound_responses"] = float(n_in)
    feats["has_responded"] = 1.0 if n_resp else 0.0
    feats["touches_before_first_response"] = float(
        n_out if first_response is None else (out_ts <= first_response).sum())
    feats["days_since_first_touch"] = (t0 - out_ts.min()) / DAY if n_out else np.nan
    feats["days_since_last_touch"] = (t0 - out_ts.max()) / DAY if n_out else np.nan
    feats["days_since_last_response"] = (t0 - ts[resp_m].max()) / DAY if n_resp else np.nan
    feats["days_since_last_activity"] = (t0 - ts.max()) / DAY if len(ts) else np.nan
    feats["mean_gap_days"] = ((out_ts.max() - out_ts.min()) / DAY / (n_out - 1)
                              if n_out >= 2 else np.nan)
    feats["longest_gap_days"] = np.nanmax(gap_out) / DAY if n_out >= 2 else np.nan
    feats["meeting_held"] = 1.0 if held.any() else 0.0
    feats["followups_after_meeting"] = float(
        0 if first_held is None else (out_ts > first_held).sum())
    prop = out_m & (type_ == "proposal")
    prop_amounts = amount[prop]
    feats["proposals_sent"] = float(prop.sum())
    present = prop_amounts[~np.isnan(prop_amounts)]
    feats["proposal_amount_max"] = float(present.max()) if present.size else np.nan
    feats["proposal_amount_total"] = float(present.sum()) if present.size else 0.0
    feats["reengagements"] = float((out_m & (gap_any >= cfg.dormant_days * DAY)).sum())
    weight = np.where(resp_m, SCORE_WEIGHT_RESPONSE,
                      np.where(held, SCORE_WEIGHT_HELD_MEETING,
                               np.where(type_ == "proposal", SCORE_WEIGHT_PROPOSAL,
                                        SCORE_WEIGHT_TOUCH)))
    half_life = cfg.decay_half_life_days * DAY
    feats["engagement_score"] = float(
        (weight * np.exp(-np.log(2) * (t0 - ts) / half_life)).sum())
    feats["lead_age_days"] = (t0 - epoch_seconds(lead["created_at"])) / DAY

    rep = None if is_missing(lead.get("owner_rep_id")) else str(lead["owner_rep_id"])
    source = None if is_missing(lead.get("source")) else str(lead["source"])
    start = t0 - cfg.history_days * DAY
    g_n, g_won, _ = history.between("all", "all", start, t0)
    prior = g_won / g_n if g_n else None
    r_n, r_won, r_depth = history.between("owner_rep_id", rep, start, t0)
    s_n, s_won, _ = history.between("source", source, start, t0)
    m = RATE_PRIOR_WEIGHT
    feats["rep_past_conversion_rate"] = (
        (r_won + m * prior) / (r_n + m) if rep is not None and prior is not None else np.nan)
    feats["rep_past_followup_depth"] = r_depth / r_n if r_n else np.nan
    feats["source_past_conversion_rate"] = (
        (s_won + m * prior) / (s_n + m) if source is not None and prior is not None else np.nan)
    feats["source"] = source
    for name in attributes:
        value = lead.get(name)
        feats[name] = None if is_missing(value) else value
    expected = [f.name for f in engagement_features(cfg)] + list(attributes)
    return {name: feats[name] for name in expected}
