"""Batch engagement features for (lead_id, as_of) pairs, computed inside the warehouse.

One SQL query, kept portable: plain joins, `GROUP BY` with `FILTER`, and window functions
(running sums over `ROWS UNBOUNDED PRECEDING`; `lag` over an ordered window without a frame, as
Spark requires; no DuckDB-only joins). The engine-specific pieces, how a timestamp becomes epoch
seconds and how a column name is quoted, are a `Dialect`: the same definition runs in DuckDB
(`DUCKDB`) and on Spark SQL (`SPARK`, `features.spark_engine`) for CRMs beyond one machine.

Per-activity marks (gap to the previous activity, before the first response, after the first
held meeting) are computed once per activity, in one window pass over the leads' activities,
and not once per pair; each pair then aggregates its lead's activities before `as_of`. What
makes it fast: lead columns are joined to the pairs once, activity type and direction become one
small integer before the join, and only narrow columns travel through the window and the join.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.settings import EngagementConfig
from core.timestamps import to_utc_naive
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

DAY = 86400.0


@dataclass(frozen=True)
class Dialect:
    """The engine-specific bits of the feature SQL."""

    name: str
    epoch_template: str  # seconds since 1970 as DOUBLE, `{}` is the timestamp expression
    quote_char: str  # how a column name that may be a keyword is quoted
    timestamp_template: str  # a timestamp without a zone as a literal, `{}` is its ISO text

    def epoch(self, expr: str) -> str:
        """SQL for `expr` (a timestamp) as seconds since 1970."""
        return self.epoch_template.format(expr)

    def quote(self, name: str) -> str:
        """`name` as a quoted identifier (the quote character doubled inside)."""
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def timestamp(self, ts: pd.Timestamp) -> str:
        """`ts` as an SQL literal of naive UTC, to the microsecond (an offset is converted)."""
        return self.timestamp_template.format(to_utc_naive(ts).isoformat(sep=" "))


DUCKDB = Dialect("duckdb", "epoch_us({}) / 1e6", '"', "TIMESTAMP '{}'")
SPARK = Dialect("spark", "unix_micros({}) / 1e6", "`", "TIMESTAMP_NTZ '{}'")
"""Spark SQL (3.1 and later): the same microseconds since 1970, so both engines compute every
feature from the same doubles; the session's time zone must be UTC (`features.spark_engine`)."""


LEAD_MARKS_SQL = """
        SELECT lead_id,
               min(occurred_at) FILTER (WHERE direction = 'inbound') AS first_response_at,
               min(occurred_at) FILTER (WHERE type = 'meeting' AND lower(outcome) = 'held')
                   AS first_held_at
        FROM activities GROUP BY lead_id
"""
"""Per lead: the first response and the first held meeting; a lead is engaged after either."""


def resolved_leads_sql(expiry_days: int | None = None, d: Dialect = DUCKDB) -> str:
    """Leads in the track records: owner, source, when the outcome became known (epoch s),
    won (0/1) and depth (outbound touches before then). By default a lead counts when it
    converts or is lost. With `expiry_days` (`engagement.open_lead_expiry_days`, for exports
    that record no losses) a lead still without an outcome that many days after creation
    counts as not converted then, and only a conversion within them is a win. The online path
    loads its outcome history with this query."""
    if expiry_days is None:
        known, won, where = ("coalesce(l.converted_at, l.closed_lost_at)",
                             "l.converted_at IS NOT NULL",
                             "l.converted_at IS NOT NULL OR l.closed_lost_at IS NOT NULL")
    else:
        horizon = f"l.created_at + INTERVAL {int(expiry_days)} DAY"
        known = f"least(coalesce(l.converted_at, l.closed_lost_at, {horizon}), {horizon})"
        won, where = f"l.converted_at < {horizon}", "l.created_at IS NOT NULL"
    return f"""
        SELECT l.lead_id, l.owner_rep_id, l.source,
               {d.epoch(known)} AS resolved_s,
               CASE WHEN {won} THEN 1 ELSE 0 END AS won,
               coalesce(t.depth, 0) AS depth
        FROM leads l
        LEFT JOIN (
            SELECT a.lead_id, count(*) AS depth
            FROM activities a JOIN leads l ON l.lead_id = a.lead_id
            WHERE a.direction = 'outbound' AND a.occurred_at < {known}
            GROUP BY a.lead_id
        ) t ON t.lead_id = l.lead_id
        WHERE {where}
    """  # noqa: S608 (the expiry: an int; the dialect's fixed epoch expression)


def _running_outcomes_sql(group: str, window_s: float, depth: bool = False) -> str:
    """Per pair: leads of the same `group` resolved in `[as_of - window, as_of)`, won, and (if
    `depth`) touch depth.

    Pairs and resolutions are merged into one time-ordered stream per group, each pair twice:
    at the window's start and at as_of. At equal times a pair marker sorts first, so a
    resolution exactly at as_of is not counted and one exactly at the start is. The window's
    figures are the running totals at as_of minus those at its start.
    """
    key = "'all'" if group == "*" else group
    depth_sum = ", sum(depth) OVER w AS sum_depth" if depth else ""
    depth_out = (", max(sum_depth) FILTER (WHERE edge = 1) - "
                 "coalesce(max(sum_depth) FILTER (WHERE edge = 0), 0) AS sum_depth"
                 if depth else "")
    return f"""
    SELECT pair_id,
           max(n_resolved) FILTER (WHERE edge = 1)
               - coalesce(max(n_resolved) FILTER (WHERE edge = 0), 0) AS n_resolved,
           max(n_won) FILTER (WHERE edge = 1)
               - coalesce(max(n_won) FILTER (WHERE edge = 0), 0) AS n_won
           {depth_out}
    FROM (
        SELECT pair_id, kind, edge, sum(kind) OVER w AS n_resolved, sum(won) OVER w AS n_won
               {depth_sum}
        FROM (
            SELECT {key} AS grp, resolved_s AS t, 1 AS kind, 0 AS edge, won, depth,
                   CAST(NULL AS BIGINT) AS pair_id
            FROM resolved WHERE {key} IS NOT NULL
            UNION ALL
            SELECT {key} AS grp, as_of_s AS t, 0 AS kind, 1 AS edge, 0 AS won, 0 AS depth,
                   pair_id
            FROM pairs WHERE {key} IS NOT NULL
            UNION ALL
            SELECT {key} AS grp, as_of_s - {window_s} AS t, 0 AS kind, 0 AS edge, 0 AS won,
                   0 AS depth, pair_id
            FROM pairs WHERE {key} IS NOT NULL
        ) stream
        WINDOW w AS (PARTITION BY grp ORDER BY t, kind ROWS UNBOUNDED PRECEDING)
    ) running WHERE kind = 0
    GROUP BY pair_id
    """  # noqa: S608 (group: a column name this module passes; window: a config number)


KINDS: list[tuple[str, str]] = [(t, d) for t in ACTIVITY_TYPE_PLURALS for d in DIRECTION_SHORT]
"""(type, direction) of each activity as a small integer code, computed once per activity:
the count filters then compare one integer instead of two strings per joined row."""


def _kind_sql() -> str:
    whens = " ".join(f"WHEN type = '{t}' AND direction = '{d}' THEN {i}"
                     for i, (t, d) in enumerate(KINDS))
    return f"CASE {whens} END"


def feature_sql(cfg: EngagementConfig, attributes: list[str], d: Dialect = DUCKDB,
                ordered: bool = True) -> str:
    """The whole feature query over tables `leads`, `activities` and `pair_input(pair_id, lead_id,
    as_of)`; returns one row per pair whose lead is known: `pair_id`, then the features in catalog
    order, then the attributes (`ordered`: by pair_id; a distributed engine skips the sort)."""
    # Each joined activity falls in one slot: its kind times its age bucket (within the
    # shortest window, the next, ..., older than the longest). One integer equality per slot
    # counts it; a window's count is the sum of its buckets. The bucket edges use the same
    # `ts >= as_of - N days` comparisons as the online path, so the two agree exactly.
    windows = sorted(set(cfg.windows_days))
    n_buckets = len(windows) + 1
    bucket = " ".join(f"WHEN a.ts >= p.as_of_s - {w * DAY} THEN {i}"
                      for i, w in enumerate(windows))
    slot_sql = f"a.kind * {n_buckets} + CASE {bucket} ELSE {len(windows)} END"
    slot_counts = [f"count(*) FILTER (WHERE a.slot = {s}) AS s{s}"
                   for s in range(len(KINDS) * n_buckets)]
    counts = []
    for kind, (type_, direction) in enumerate(KINDS):
        name = f"{ACTIVITY_TYPE_PLURALS[type_]}_{DIRECTION_SHORT[direction]}"
        for days in (*cfg.windows_days, None):
            last = windows.index(days) if days is not None else len(windows)
            total = " + ".join(f"g.s{kind * n_buckets + b}" for b in range(last + 1))
            counts.append(f"{total} AS {name}_{window_label(days)}")
    proposal_out = KINDS.index(("proposal", "outbound"))
    half_life = cfg.decay_half_life_days * DAY
    dormant = cfg.dormant_days * DAY
    m = RATE_PRIOR_WEIGHT
    history_s = float(cfg.history_days * DAY)
    # outcome words from the config, quoted as SQL literals (lower-cased, quotes doubled)
    responses = ", ".join("'" + o.lower().replace("'", "''") + "'"
                          for o in cfg.response_outcomes) or "NULL"
    lead_attrs = "".join(f", l.{d.quote(a)}" for a in attributes)
    pair_attrs = "".join(f", p.{d.quote(a)}" for a in attributes)
    return f"""
    WITH
    pairs AS (
        SELECT pi.pair_id, pi.lead_id, pi.as_of, {d.epoch('pi.as_of')} AS as_of_s,
               l.owner_rep_id, l.source,
               ({d.epoch('pi.as_of')} - {d.epoch('l.created_at')}) / {DAY} AS lead_age_days
               {lead_attrs}
        FROM pair_input pi JOIN leads l ON l.lead_id = pi.lead_id
    ),
    acts AS (
        SELECT *,
               (first_response_s IS NULL OR ts <= first_response_s) AS before_response,
               (first_held_s IS NOT NULL AND first_held_s < ts) AS after_meeting
        FROM (
            SELECT lead_id, ts, kind, outbound, inbound, response, held, amount, weight,
                   ts - lag(ts) OVER w_order AS gap_any,
                   ts - max(CASE WHEN outbound THEN ts END) OVER w_prev AS gap_out,
                   min(CASE WHEN response THEN ts END) OVER w_lead AS first_response_s,
                   min(CASE WHEN held THEN ts END) OVER w_lead AS first_held_s
            FROM (
                SELECT activity_id, lead_id, amount, {d.epoch('occurred_at')} AS ts,
                       {_kind_sql()} AS kind,
                       direction = 'outbound' AS outbound,
                       direction = 'inbound' AS inbound,
                       (direction = 'inbound' OR (direction = 'outbound' AND type = 'call'
                        AND coalesce(lower(outcome), '') IN ({responses}))) AS response,
                       held,
                       CASE WHEN direction = 'inbound' OR (direction = 'outbound'
                                 AND type = 'call'
                                 AND coalesce(lower(outcome), '') IN ({responses}))
                            THEN {SCORE_WEIGHT_RESPONSE}
                            WHEN held THEN {SCORE_WEIGHT_HELD_MEETING}
                            WHEN type = 'proposal' THEN {SCORE_WEIGHT_PROPOSAL}
                            ELSE {SCORE_WEIGHT_TOUCH} END AS weight
                FROM (
                    SELECT *, (type = 'meeting' AND coalesce(lower(outcome), '') = 'held')
                                  AS held
                    FROM activities WHERE lead_id IN (SELECT lead_id FROM pairs)
                ) typed
            ) x
            WINDOW w_order AS (PARTITION BY lead_id ORDER BY ts, activity_id),
                   w_prev AS (PARTITION BY lead_id ORDER BY ts, activity_id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   w_lead AS (PARTITION BY lead_id ORDER BY ts, activity_id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        ) marked
    ),
    resolved AS ({resolved_leads_sql(cfg.open_lead_expiry_days, d)}),
    joined AS (
        SELECT p.pair_id, p.as_of_s, a.ts, a.kind, a.outbound, a.inbound, a.response,
               a.before_response,
               a.after_meeting, a.gap_out, a.gap_any, a.held, a.amount, a.weight,
               {slot_sql} AS slot
        FROM pairs p
        LEFT JOIN acts a ON a.lead_id = p.lead_id AND a.ts < p.as_of_s
    ),
    agg AS (
        SELECT a.pair_id,
               {', '.join(slot_counts)},
               count(*) FILTER (WHERE a.outbound) AS outbound_touches,
               count(*) FILTER (WHERE a.inbound) AS inbound_responses,
               count(*) FILTER (WHERE a.outbound AND a.before_response)
                   AS touches_before_first_response,
               min(a.ts) FILTER (WHERE a.outbound) AS first_touch_s,
               max(a.ts) FILTER (WHERE a.outbound) AS last_touch_s,
               max(a.ts) FILTER (WHERE a.response) AS last_response_s,
               max(a.ts) AS last_activity_s,
               count(*) FILTER (WHERE a.response) AS responses,
               max(a.gap_out) FILTER (WHERE a.outbound) AS longest_gap_s,
               count(*) FILTER (WHERE a.held) AS held_meetings,
               count(*) FILTER (WHERE a.outbound AND a.after_meeting)
                   AS followups_after_meeting,
               count(*) FILTER (WHERE a.kind = {proposal_out}) AS proposals_sent,
               max(a.amount) FILTER (WHERE a.kind = {proposal_out}) AS proposal_amount_max,
               coalesce(sum(a.amount) FILTER (WHERE a.kind = {proposal_out}), 0)
                   AS proposal_amount_total,
               count(*) FILTER (WHERE a.outbound AND a.gap_any >= {dormant})
                   AS reengagements,
               coalesce(sum(a.weight * exp(-ln(2) * (a.as_of_s - a.ts) / {half_life})), 0)
                   AS engagement_score
        FROM joined a
        GROUP BY a.pair_id
    ),
    rep_hist AS ({_running_outcomes_sql('owner_rep_id', history_s, depth=True)}),
    src_hist AS ({_running_outcomes_sql('source', history_s)}),
    all_hist AS ({_running_outcomes_sql('*', history_s)})
    SELECT p.pair_id,
           {', '.join(counts)},
           g.outbound_touches, g.inbound_responses,
           CASE WHEN g.responses > 0 THEN 1 ELSE 0 END AS has_responded,
           g.touches_before_first_response,
           (p.as_of_s - g.first_touch_s) / {DAY} AS days_since_first_touch,
           (p.as_of_s - g.last_touch_s) / {DAY} AS days_since_last_touch,
           (p.as_of_s - g.last_response_s) / {DAY} AS days_since_last_response,
           (p.as_of_s - g.last_activity_s) / {DAY} AS days_since_last_activity,
           CASE WHEN g.outbound_touches >= 2
                THEN (g.last_touch_s - g.first_touch_s) / {DAY} / (g.outbound_touches - 1)
           END AS mean_gap_days,
           g.longest_gap_s / {DAY} AS longest_gap_days,
           CASE WHEN g.held_meetings > 0 THEN 1 ELSE 0 END AS meeting_held,
           g.followups_after_meeting, g.proposals_sent, g.proposal_amount_max,
           g.proposal_amount_total, g.reengagements, g.engagement_score,
           p.lead_age_days,
           CASE WHEN p.owner_rep_id IS NOT NULL AND ah.n_resolved > 0
                THEN (coalesce(rh.n_won, 0) + {m} * ah.n_won / ah.n_resolved)
                     / (coalesce(rh.n_resolved, 0) + {m}) END AS rep_past_conversion_rate,
           CASE WHEN rh.n_resolved > 0 THEN rh.sum_depth / rh.n_resolved END
               AS rep_past_followup_depth,
           CASE WHEN p.source IS NOT NULL AND ah.n_resolved > 0
                THEN (coalesce(sh.n_won, 0) + {m} * ah.n_won / ah.n_resolved)
                     / (coalesce(sh.n_resolved, 0) + {m}) END AS source_past_conversion_rate,
           p.source{pair_attrs}
    FROM pairs p
    JOIN agg g ON g.pair_id = p.pair_id
    LEFT JOIN rep_hist rh ON rh.pair_id = p.pair_id
    LEFT JOIN src_hist sh ON sh.pair_id = p.pair_id
    LEFT JOIN all_hist ah ON ah.pair_id = p.pair_id
    {'ORDER BY p.pair_id' if ordered else ''}
    """  # noqa: S608 (catalog names, config numbers, quoted warehouse attribute columns; no values)


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
    numeric = [f.name for f in engagement_features(cfg) if f.kind == "numeric"]
    # numeric features leave the engine as DOUBLE, and the columns are taken as numpy arrays
    # without consolidating them into one block: a third of the time `.df()` and the casts
    # afterwards cost on a million rows
    casts = ", ".join(f"CAST({n} AS DOUBLE) AS {n}" for n in numeric)
    con.register("pair_input", frame)
    try:
        columns = con.execute(f"SELECT * REPLACE ({casts}) FROM ({feature_sql(cfg, attributes)}) "  # noqa: S608 (catalog feature names)
                              "ORDER BY pair_id").fetchnumpy()
    finally:
        con.unregister("pair_input")
    out = pd.DataFrame(columns, copy=False)
    if len(out) != len(frame):
        unknown = np.setdiff1d(frame["pair_id"], out["pair_id"])[0]
        raise ValueError(f"lead_id {frame['lead_id'].iat[unknown]!r} is not in the warehouse")
    # lead_id and as_of come from the input rather than the query: converting a million
    # strings and timestamps back from the engine costs more than the join that finds them
    out.insert(0, "lead_id", frame["lead_id"].to_numpy())
    out.insert(1, "as_of", frame["as_of"].to_numpy())
    return _typed(out.drop(columns="pair_id"), cfg, attributes)


def select_pairs(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp,
                 which: str = "open") -> pd.DataFrame:
    """(lead_id, as_of) for leads created at or before `as_of`; `open` keeps those not yet
    converted or lost at `as_of` (an outcome at or after `as_of` is not known yet)."""
    if which not in ("open", "all"):
        raise ValueError(f"--leads must be 'open' or 'all', not {which!r}")
    cond = open_leads_condition("$as_of", which)
    ts = pd.Timestamp(as_of).to_pydatetime()
    ids = con.execute(f"SELECT lead_id FROM leads WHERE {cond} ORDER BY lead_id",  # noqa: S608 (fixed conditions; as_of bound)
                      {"as_of": ts}).df()
    return pd.DataFrame({"lead_id": ids["lead_id"], "as_of": pd.Timestamp(as_of)})


def open_leads_condition(as_of: str, which: str = "open") -> str:
    """SQL condition on `leads` for the leads created at or before `as_of` (an SQL expression:
    a bound parameter or a literal); `open` keeps those not yet converted or lost then."""
    cond = f"created_at <= {as_of}"
    if which == "open":
        cond += (f" AND (converted_at IS NULL OR converted_at >= {as_of})"
                 f" AND (closed_lost_at IS NULL OR closed_lost_at >= {as_of})")
    return cond


def feature_columns(cfg: EngagementConfig, attributes: list[str]) -> list[str]:
    """The feature column names: the catalog's, in order, then the lead attributes."""
    return [f.name for f in engagement_features(cfg)] + list(attributes)


def _typed(out: pd.DataFrame, cfg: EngagementConfig, attributes: list[str]) -> pd.DataFrame:
    """Numeric features as float64, categoricals as strings, in catalog order."""
    out = type_features(out[["lead_id", "as_of", *feature_columns(cfg, attributes)]], cfg)
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return out


def type_features(frame: pd.DataFrame, cfg: EngagementConfig) -> pd.DataFrame:
    """The catalog's features of `frame` (those it has) typed as the warehouse's path gives
    them: numeric as float64, categorical as strings; other columns untouched."""
    for f in engagement_features(cfg):
        if f.name in frame:
            frame[f.name] = frame[f.name].astype("float64" if f.kind == "numeric" else "string")
    return frame
