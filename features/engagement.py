"""Batch engagement features for (lead_id, as_of) pairs, computed inside the warehouse.

One SQL query, kept portable: plain joins, `GROUP BY` with `FILTER`, and window functions with
`ROWS UNBOUNDED PRECEDING` (no DuckDB-only joins). The only engine-specific piece is how a
timestamp becomes epoch seconds, isolated in `Dialect`, so the same text can later run on Spark
SQL for CRMs too large for one machine.

Per-activity marks (gap to the previous activity, before the first response, after the first
held meeting) depend only on earlier activities, so they are computed once per activity and not
once per pair; each pair then aggregates its lead's activities before `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

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
from features.settings import EngagementConfig

DAY = 86400.0


@dataclass(frozen=True)
class Dialect:
    """The engine-specific bits of the feature SQL."""

    name: str
    epoch_template: str  # seconds since 1970 as DOUBLE, `{}` is the timestamp expression

    def epoch(self, expr: str) -> str:
        return self.epoch_template.format(expr)


DUCKDB = Dialect("duckdb", "epoch_us({}) / 1e6")
SPARK = Dialect("spark", "(unix_micros({}) / 1e6)")


LEAD_MARKS_SQL = """
        SELECT lead_id,
               min(occurred_at) FILTER (WHERE direction = 'inbound') AS first_response_at,
               min(occurred_at) FILTER (WHERE type = 'meeting' AND lower(outcome) = 'held')
                   AS first_held_at
        FROM activities GROUP BY lead_id
"""
"""Per lead: the first response and the first held meeting; a lead is engaged after either."""


def resolved_leads_sql(d: Dialect = DUCKDB) -> str:
    """Resolved leads: owner, source, when resolved (epoch s), won (0/1), and depth (outbound
    touches before resolution). The online path loads its outcome history with this query."""
    return f"""
        SELECT l.lead_id, l.owner_rep_id, l.source,
               {d.epoch('coalesce(l.converted_at, l.closed_lost_at)')} AS resolved_s,
               CASE WHEN l.converted_at IS NOT NULL THEN 1 ELSE 0 END AS won,
               (SELECT count(*) FROM activities a2
                 WHERE a2.lead_id = l.lead_id AND a2.direction = 'outbound'
                   AND a2.occurred_at < coalesce(l.converted_at, l.closed_lost_at)) AS depth
        FROM leads l
        WHERE l.converted_at IS NOT NULL OR l.closed_lost_at IS NOT NULL
    """


def _running_outcomes_sql(group: str, d: Dialect) -> str:
    """Per pair: leads of the same `group` resolved strictly before as_of, won, and touch depth.

    Pairs and resolutions are merged into one time-ordered stream per group; at equal times the
    pair sorts first, so a resolution exactly at as_of is not counted.
    """
    key = "'all'" if group == "*" else f"l.{group}"
    rkey = "'all'" if group == "*" else f"r.{group}"
    return f"""
    SELECT pair_id, n_resolved, n_won, sum_depth FROM (
        SELECT pair_id, kind,
               sum(kind) OVER w AS n_resolved,
               sum(won) OVER w AS n_won,
               sum(depth) OVER w AS sum_depth
        FROM (
            SELECT {rkey} AS grp, r.resolved_s AS t, 1 AS kind, r.won, r.depth,
                   CAST(NULL AS BIGINT) AS pair_id
            FROM resolved r WHERE {rkey} IS NOT NULL
            UNION ALL
            SELECT {key} AS grp, p.as_of_s AS t, 0 AS kind, 0 AS won, 0 AS depth, p.pair_id
            FROM pairs p JOIN leads l ON l.lead_id = p.lead_id WHERE {key} IS NOT NULL
        ) stream
        WINDOW w AS (PARTITION BY grp ORDER BY t, kind ROWS UNBOUNDED PRECEDING)
    ) running WHERE kind = 0
    """


def feature_sql(cfg: EngagementConfig, attributes: list[str], d: Dialect = DUCKDB) -> str:
    """The whole feature query over tables `leads`, `activities` and `pairs(pair_id, lead_id,
    as_of)`; returns one row per pair, columns in catalog order plus the attributes."""
    counts = []
    for type_, plural in ACTIVITY_TYPE_PLURALS.items():
        for direction, short in DIRECTION_SHORT.items():
            for days in (*cfg.windows_days, None):
                cond = f"a.type = '{type_}' AND a.direction = '{direction}'"
                if days is not None:
                    cond += f" AND a.ts >= p.as_of_s - {days * DAY}"
                counts.append(
                    f"count(a.ts) FILTER (WHERE {cond}) AS {plural}_{short}_{window_label(days)}"
                )
    half_life = cfg.decay_half_life_days * DAY
    weight = f"""CASE WHEN a.direction = 'inbound' THEN {SCORE_WEIGHT_RESPONSE}
                     WHEN a.held THEN {SCORE_WEIGHT_HELD_MEETING}
                     WHEN a.type = 'proposal' THEN {SCORE_WEIGHT_PROPOSAL}
                     ELSE {SCORE_WEIGHT_TOUCH} END"""
    dormant = cfg.dormant_days * DAY
    m = RATE_PRIOR_WEIGHT
    attr_cols = "".join(f', l."{a}"' for a in attributes)
    return f"""
    WITH
    pairs AS (SELECT pair_id, lead_id, as_of, {d.epoch('as_of')} AS as_of_s FROM pair_input),
    marks AS (SELECT * FROM ({LEAD_MARKS_SQL}) m WHERE m.lead_id IN (SELECT lead_id FROM pairs)),
    acts AS (
        SELECT x.lead_id, x.type, x.direction, x.amount, x.ts, x.held,
               x.ts - lag(x.ts) OVER w_all AS gap_any,
               x.ts - max(CASE WHEN x.direction = 'outbound' THEN x.ts END) OVER w_prev
                   AS gap_out,
               (mk.first_response_at IS NULL OR x.occurred_at <= mk.first_response_at)
                   AS before_response,
               (mk.first_held_at IS NOT NULL AND mk.first_held_at < x.occurred_at)
                   AS after_meeting
        FROM (
            SELECT activity_id, lead_id, type, direction, amount, occurred_at,
                   {d.epoch('occurred_at')} AS ts,
                   (type = 'meeting' AND coalesce(lower(outcome), '') = 'held') AS held
            FROM activities
            WHERE lead_id IN (SELECT lead_id FROM pairs)
        ) x
        LEFT JOIN marks mk ON mk.lead_id = x.lead_id
        WINDOW w_all AS (PARTITION BY x.lead_id ORDER BY x.ts, x.activity_id
                         ROWS UNBOUNDED PRECEDING),
               w_prev AS (PARTITION BY x.lead_id ORDER BY x.ts, x.activity_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ),
    resolved AS ({resolved_leads_sql(d)}),
    agg AS (
        SELECT p.pair_id,
               {', '.join(counts)},
               count(a.ts) FILTER (WHERE a.direction = 'outbound') AS outbound_touches,
               count(a.ts) FILTER (WHERE a.direction = 'inbound') AS inbound_responses,
               count(a.ts) FILTER (WHERE a.direction = 'outbound' AND a.before_response)
                   AS touches_before_first_response,
               min(a.ts) FILTER (WHERE a.direction = 'outbound') AS first_touch_s,
               max(a.ts) FILTER (WHERE a.direction = 'outbound') AS last_touch_s,
               max(a.ts) FILTER (WHERE a.direction = 'inbound') AS last_response_s,
               max(a.gap_out) FILTER (WHERE a.direction = 'outbound') AS longest_gap_s,
               count(a.ts) FILTER (WHERE a.held) AS held_meetings,
               count(a.ts) FILTER (WHERE a.direction = 'outbound' AND a.after_meeting)
                   AS followups_after_meeting,
               count(a.ts) FILTER (WHERE a.direction = 'outbound' AND a.type = 'proposal')
                   AS proposals_sent,
               max(a.amount) FILTER (WHERE a.direction = 'outbound' AND a.type = 'proposal')
                   AS proposal_amount_max,
               coalesce(sum(a.amount) FILTER (WHERE a.direction = 'outbound'
                                               AND a.type = 'proposal'), 0)
                   AS proposal_amount_total,
               count(a.ts) FILTER (WHERE a.direction = 'outbound' AND a.gap_any >= {dormant})
                   AS reengagements,
               coalesce(sum({weight} * exp(-ln(2) * (p.as_of_s - a.ts) / {half_life})), 0)
                   AS engagement_score
        FROM pairs p
        LEFT JOIN acts a ON a.lead_id = p.lead_id AND a.ts < p.as_of_s
        GROUP BY p.pair_id
    ),
    rep_hist AS ({_running_outcomes_sql('owner_rep_id', d)}),
    src_hist AS ({_running_outcomes_sql('source', d)}),
    all_hist AS ({_running_outcomes_sql('*', d)})
    SELECT p.pair_id, p.lead_id, p.as_of,
           {', '.join(c.split(' AS ')[-1] for c in counts)},
           g.outbound_touches, g.inbound_responses,
           CASE WHEN g.inbound_responses > 0 THEN 1 ELSE 0 END AS has_responded,
           g.touches_before_first_response,
           (p.as_of_s - g.first_touch_s) / {DAY} AS days_since_first_touch,
           (p.as_of_s - g.last_touch_s) / {DAY} AS days_since_last_touch,
           (p.as_of_s - g.last_response_s) / {DAY} AS days_since_last_response,
           CASE WHEN g.outbound_touches >= 2
                THEN (g.last_touch_s - g.first_touch_s) / {DAY} / (g.outbound_touches - 1)
           END AS mean_gap_days,
           g.longest_gap_s / {DAY} AS longest_gap_days,
           CASE WHEN g.held_meetings > 0 THEN 1 ELSE 0 END AS meeting_held,
           g.followups_after_meeting, g.proposals_sent, g.proposal_amount_max,
           g.proposal_amount_total, g.reengagements, g.engagement_score,
           (p.as_of_s - {d.epoch('l.created_at')}) / {DAY} AS lead_age_days,
           coalesce(rh.n_resolved, 0) AS rep_past_resolved_leads,
           CASE WHEN l.owner_rep_id IS NOT NULL AND ah.n_resolved > 0
                THEN (coalesce(rh.n_won, 0) + {m} * ah.n_won / ah.n_resolved)
                     / (coalesce(rh.n_resolved, 0) + {m}) END AS rep_past_conversion_rate,
           CASE WHEN rh.n_resolved > 0 THEN rh.sum_depth / rh.n_resolved END
               AS rep_past_followup_depth,
           coalesce(sh.n_resolved, 0) AS source_past_resolved_leads,
           CASE WHEN l.source IS NOT NULL AND ah.n_resolved > 0
                THEN (coalesce(sh.n_won, 0) + {m} * ah.n_won / ah.n_resolved)
                     / (coalesce(sh.n_resolved, 0) + {m}) END AS source_past_conversion_rate,
           l.source{attr_cols}
    FROM pairs p
    JOIN leads l ON l.lead_id = p.lead_id
    JOIN agg g ON g.pair_id = p.pair_id
    LEFT JOIN rep_hist rh ON rh.pair_id = p.pair_id
    LEFT JOIN src_hist sh ON sh.pair_id = p.pair_id
    LEFT JOIN all_hist ah ON ah.pair_id = p.pair_id
    ORDER BY p.pair_id
    """


def _normalise_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    missing = {"lead_id", "as_of"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs need columns lead_id and as_of; missing: {sorted(missing)}")
    out = pd.DataFrame({
        "pair_id": range(len(pairs)),
        "lead_id": pairs["lead_id"].astype("string").to_numpy(),
        "as_of": pd.to_datetime(pairs["as_of"].to_numpy()).astype("datetime64[us]"),
    })
    if out["as_of"].isna().any():
        row = int(out.index[out["as_of"].isna()][0]) + 1
        raise ValueError(f"pairs row {row}: as_of is empty")
    return out


def batch_features(
    con: duckdb.DuckDBPyConnection,
    pairs: pd.DataFrame,
    cfg: EngagementConfig,
    attributes: list[str] | None = None,
) -> pd.DataFrame:
    """Features for each (lead_id, as_of) row of `pairs`, in the same order.

    `con` must hold the `leads` and `activities` tables. Pairs whose lead is unknown raise.
    `attributes` are the lead attribute columns to pass through (default: none).
    """
    attributes = list(attributes or [])
    frame = _normalise_pairs(pairs)
    con.register("pair_input", frame)
    try:
        out = con.execute(feature_sql(cfg, attributes)).df()
    finally:
        con.unregister("pair_input")
    if len(out) != len(frame):
        known = set(out["lead_id"])
        unknown = next(lid for lid in frame["lead_id"] if lid not in known)
        raise ValueError(f"lead_id {unknown!r} is not in the warehouse")
    return _typed(out.drop(columns="pair_id"), cfg, attributes)


def select_pairs(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp,
                 which: str = "open") -> pd.DataFrame:
    """(lead_id, as_of) for leads created at or before `as_of`; `open` keeps those not yet
    converted or lost at `as_of` (an outcome at or after `as_of` is not known yet)."""
    if which not in ("open", "all"):
        raise ValueError(f"--leads must be 'open' or 'all', not {which!r}")
    cond = "created_at <= $as_of"
    if which == "open":
        cond += (" AND (converted_at IS NULL OR converted_at >= $as_of)"
                 " AND (closed_lost_at IS NULL OR closed_lost_at >= $as_of)")
    ts = pd.Timestamp(as_of).to_pydatetime()
    ids = con.execute(f"SELECT lead_id FROM leads WHERE {cond} ORDER BY lead_id",
                      {"as_of": ts}).df()
    return pd.DataFrame({"lead_id": ids["lead_id"], "as_of": pd.Timestamp(as_of)})


def feature_columns(cfg: EngagementConfig, attributes: list[str]) -> list[str]:
    return [f.name for f in engagement_features(cfg)] + list(attributes)


def _typed(out: pd.DataFrame, cfg: EngagementConfig, attributes: list[str]) -> pd.DataFrame:
    """Numeric features as float64, categoricals as strings, in catalog order."""
    cols = ["lead_id", "as_of", *feature_columns(cfg, attributes)]
    out = out[cols].copy()
    for f in engagement_features(cfg):
        if f.kind == "numeric":
            out[f.name] = out[f.name].astype("float64")
        else:
            out[f.name] = out[f.name].astype("string")
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return out
