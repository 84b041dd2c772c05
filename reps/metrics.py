"""The five rep activity metrics every sales manager should track, per rep and period.

1. new leads identified: leads created in the period and owned by the rep;
2. calls to new leads: outbound calls to leads not yet engaged (no response and no held meeting
   strictly before the call), with the follow-up depth behind them: for the rep's leads first
   touched in the period, the outbound touches in the first streak (until the rep went quiet for
   more than `quiet_days`), their median, and the share that reached the fifth follow-up, both
   over the leads still open when the rep went quiet (a lead closed before a fifth follow-up was
   due was not abandoned; see `depth_ctes`);
3. calls to previous leads: outbound calls after `dormant_days` or more without any activity;
4. follow-ups to engaged leads: outbound touches after the lead's first response or held meeting;
5. proposals generated: count, total and mean amount.
Plus conversions, conversion rate (won / resolved in the period), won revenue, quota attainment
(won revenue / (monthly quota x months)), the median days from creation to first touch, and
the outbound touches the rep made in the period, in all and on leads the rep owns (a rep who
mostly works other owners' leads, e.g. a validation or fraud-check role, is not judged as an
owner).

An activity is credited to its `rep_id`, or to the lead's owner when `rep_id` is empty.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from core.periods import Period
from core.settings import EngagementConfig
from features.engagement import DAY, DUCKDB, LEAD_MARKS_SQL, Dialect

METRIC_COLUMNS = [
    "new_leads",
    "calls_to_new_leads",
    "new_leads_first_touched",
    "depth_judged_leads",
    "followup_depth_median",
    "reached_fifth_followup_share",
    "calls_to_previous_leads",
    "followups_to_engaged_leads",
    "proposals",
    "proposal_total",
    "proposal_mean",
    "conversions",
    "resolved_leads",
    "conversion_rate",
    "won_revenue",
    "monthly_quota",
    "quota_attainment",
    "median_days_to_first_touch",
    "touches",
    "touches_on_own_leads",
]


def depth_ctes(cfg: EngagementConfig, d: Dialect = DUCKDB) -> str:
    """The `outbound`, `streaks` and `depth` CTEs (after `acts`): per lead and owner, the
    outbound touches of the first streak (`depth`), the first touch, and whether the depth is
    `judged`: it reached the fifth follow-up, or the rep went quiet for `quiet_days` while the
    lead was still open (within the data, which may run past the period). A lead declined, won
    or cancelled before a fifth follow-up was due was not abandoned and is not judged; nor is
    one whose quiet spell the data has not seen end."""
    quiet = cfg.quiet_days * DAY
    watched_until = ("least(coalesce(l.converted_at, l.closed_lost_at, 'infinity'::TIMESTAMP), "
                     "(SELECT max(occurred_at) FROM activities))")
    return f"""
    outbound AS (
        SELECT lead_id, owner, occurred_at,
               ts - lag(ts) OVER (PARTITION BY lead_id ORDER BY ts, activity_id
                                  ROWS UNBOUNDED PRECEDING) AS gap_out,
               row_number() OVER (PARTITION BY lead_id ORDER BY ts, activity_id) AS n
        FROM acts WHERE direction = 'outbound'
    ),
    streaks AS (
        SELECT lead_id, owner, occurred_at, n,
               sum(CASE WHEN gap_out > {quiet} THEN 1 ELSE 0 END)
                   OVER (PARTITION BY lead_id ORDER BY n ROWS UNBOUNDED PRECEDING) AS streak
        FROM outbound
    ),
    streak_depth AS (
        SELECT lead_id, owner, count(*) FILTER (WHERE streak = 0) AS depth,
               min(occurred_at) AS first_touch_at,
               max(occurred_at) FILTER (WHERE streak = 0) AS last_streak_at
        FROM streaks GROUP BY lead_id, owner
    ),
    depth AS (
        SELECT sd.*,
               sd.depth >= {cfg.fifth_followup}
               OR {d.epoch('sd.last_streak_at')} + {quiet} < {d.epoch(watched_until)} AS judged
        FROM streak_depth sd JOIN leads l ON l.lead_id = sd.lead_id
    )"""  # noqa: S608 (config numbers and fixed SQL fragments)


def lead_depths(con: duckdb.DuckDBPyConnection, period: Period,
                cfg: EngagementConfig) -> pd.DataFrame:
    """Per lead first touched in `period`: its owner (`rep_id`), follow-up `depth` and whether
    it is `judged` (see `depth_ctes`): the leads behind a follow-up depth flag."""
    sql = f"""
    WITH marks AS ({LEAD_MARKS_SQL}), {acts_cte()}, {depth_ctes(cfg)}
    SELECT lead_id, owner AS rep_id, depth, judged FROM depth
    WHERE first_touch_at >= $start AND first_touch_at < $end AND owner IS NOT NULL
    ORDER BY lead_id
    """  # noqa: S608 (fixed SQL fragments; the period is bound)
    return con.execute(sql, {"start": period.start.to_pydatetime(),
                             "end": period.end.to_pydatetime()}).df()


def acts_cte(d: Dialect = DUCKDB) -> str:
    """The `acts` CTE (after `marks`): every activity with its credited rep, its lead's owner,
    epoch seconds and whether the lead was engaged before it."""
    return f"""acts AS (
        SELECT a.activity_id, a.lead_id, a.type, a.direction, a.amount, a.occurred_at,
               coalesce(a.rep_id, l.owner_rep_id) AS rep, l.owner_rep_id AS owner,
               {d.epoch('a.occurred_at')} AS ts,
               (mk.first_response_at < a.occurred_at OR mk.first_held_at < a.occurred_at)
                   AS engaged_before
        FROM activities a JOIN leads l ON l.lead_id = a.lead_id
        LEFT JOIN marks mk ON mk.lead_id = a.lead_id
    )"""  # noqa: S608 (fixed SQL fragments)


def rep_metrics_sql(cfg: EngagementConfig, d: Dialect = DUCKDB, has_role: bool = True) -> str:
    """Metrics per rep for the period [$start, $end); `$months` is the period's length.
    `has_role`: whether the reps table has the `role` column (a warehouse from before it
    existed, opened read-only, has not)."""
    dormant = cfg.dormant_days * DAY
    role = "r.role" if has_role else "CAST(NULL AS VARCHAR)"
    return f"""
    WITH
    marks AS ({LEAD_MARKS_SQL}),
    {acts_cte(d)},
    gaps AS (
        SELECT *, ts - lag(ts) OVER (PARTITION BY lead_id ORDER BY ts, activity_id
                                     ROWS UNBOUNDED PRECEDING) AS gap_any
        FROM acts
    ),
    period_acts AS (
        SELECT * FROM gaps
        WHERE direction = 'outbound' AND occurred_at >= $start AND occurred_at < $end
    ),
    touch_counts AS (
        SELECT rep,
               count(*) FILTER (WHERE type = 'call' AND NOT coalesce(engaged_before, FALSE))
                   AS calls_to_new_leads,
               count(*) FILTER (WHERE type = 'call' AND gap_any >= {dormant})
                   AS calls_to_previous_leads,
               count(*) FILTER (WHERE coalesce(engaged_before, FALSE))
                   AS followups_to_engaged_leads,
               count(*) FILTER (WHERE type = 'proposal') AS proposals,
               coalesce(sum(amount) FILTER (WHERE type = 'proposal'), 0) AS proposal_total,
               avg(amount) FILTER (WHERE type = 'proposal') AS proposal_mean,
               count(*) AS touches,
               count(*) FILTER (WHERE rep = owner) AS touches_on_own_leads
        FROM period_acts WHERE rep IS NOT NULL GROUP BY rep
    ),
    {depth_ctes(cfg, d)},
    depth_by_rep AS (
        SELECT owner AS rep, count(*) AS new_leads_first_touched,
               count(*) FILTER (WHERE judged) AS depth_judged_leads,
               median(depth) FILTER (WHERE judged) AS followup_depth_median,
               avg(CASE WHEN depth >= {cfg.fifth_followup} THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE judged) AS reached_fifth_followup_share
        FROM depth WHERE first_touch_at >= $start AND first_touch_at < $end
              AND owner IS NOT NULL
        GROUP BY owner
    ),
    lead_counts AS (
        SELECT l.owner_rep_id AS rep,
               count(*) FILTER (WHERE l.created_at >= $start AND l.created_at < $end)
                   AS new_leads,
               count(*) FILTER (WHERE l.converted_at >= $start AND l.converted_at < $end)
                   AS conversions,
               count(*) FILTER (WHERE coalesce(l.converted_at, l.closed_lost_at) >= $start
                                  AND coalesce(l.converted_at, l.closed_lost_at) < $end)
                   AS resolved_leads,
               coalesce(sum(l.deal_amount) FILTER (
                   WHERE l.converted_at >= $start AND l.converted_at < $end), 0) AS won_revenue,
               median(({d.epoch('dp.first_touch_at')} - {d.epoch('l.created_at')}) / {DAY})
                   FILTER (WHERE l.created_at >= $start AND l.created_at < $end)
                   AS median_days_to_first_touch
        FROM leads l LEFT JOIN depth dp ON dp.lead_id = l.lead_id
        WHERE l.owner_rep_id IS NOT NULL
        GROUP BY l.owner_rep_id
    ),
    all_reps AS (
        SELECT rep_id AS rep FROM reps
        UNION SELECT rep FROM lead_counts
        UNION SELECT rep FROM touch_counts
    )
    SELECT ar.rep AS rep_id, r.team, {role} AS role,
           coalesce(lc.new_leads, 0) AS new_leads,
           coalesce(tc.calls_to_new_leads, 0) AS calls_to_new_leads,
           coalesce(db.new_leads_first_touched, 0) AS new_leads_first_touched,
           coalesce(db.depth_judged_leads, 0) AS depth_judged_leads,
           db.followup_depth_median, db.reached_fifth_followup_share,
           coalesce(tc.calls_to_previous_leads, 0) AS calls_to_previous_leads,
           coalesce(tc.followups_to_engaged_leads, 0) AS followups_to_engaged_leads,
           coalesce(tc.proposals, 0) AS proposals,
           coalesce(tc.proposal_total, 0) AS proposal_total,
           tc.proposal_mean,
           coalesce(lc.conversions, 0) AS conversions,
           coalesce(lc.resolved_leads, 0) AS resolved_leads,
           CASE WHEN lc.resolved_leads > 0 THEN lc.conversions / lc.resolved_leads END
               AS conversion_rate,
           coalesce(lc.won_revenue, 0) AS won_revenue,
           r.monthly_quota,
           CASE WHEN r.monthly_quota > 0
                THEN coalesce(lc.won_revenue, 0) / (r.monthly_quota * $months) END
               AS quota_attainment,
           lc.median_days_to_first_touch,
           coalesce(tc.touches, 0) AS touches,
           coalesce(tc.touches_on_own_leads, 0) AS touches_on_own_leads
    FROM all_reps ar
    LEFT JOIN reps r ON r.rep_id = ar.rep
    LEFT JOIN lead_counts lc ON lc.rep = ar.rep
    LEFT JOIN touch_counts tc ON tc.rep = ar.rep
    LEFT JOIN depth_by_rep db ON db.rep = ar.rep
    ORDER BY ar.rep
    """  # noqa: S608 (config numbers and fixed SQL fragments; the period is bound)


def rep_metrics(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    cfg: EngagementConfig,
    team: str | None = None,
) -> pd.DataFrame:
    """One row per rep: the five metrics and the outcome figures for `period`."""
    params = {
        "start": period.start.to_pydatetime(),
        "end": period.end.to_pydatetime(),
        "months": period.months,
    }
    has_role = bool(con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'reps' "
        "AND column_name = 'role'").fetchall()[0][0])
    out = con.execute(rep_metrics_sql(cfg, has_role=has_role), params).df()
    if team is not None:
        out = out[out["team"] == team].reset_index(drop=True)
    out.insert(2, "period", period.label)
    for col in METRIC_COLUMNS:
        out[col] = out[col].astype("float64")
    return out


def format_rep_metrics(frame: pd.DataFrame) -> str:
    """A compact text table of the five metrics, one line per rep."""
    header = (f"{'rep':<8}{'team':<9}{'new':>5}{'calls→new':>10}{'depth':>6}{'≥5th':>6}"
              f"{'calls→prev':>11}{'f-ups→eng':>10}{'props':>6}{'prop $':>10}"
              f"{'won':>5}{'won $':>10}{'quota':>7}")
    lines = [header, "-" * len(header)]
    for r in frame.itertuples(index=False):
        lines.append(
            f"{r.rep_id:<8}{r.team or '-'!s:<9}{r.new_leads:>5.0f}{r.calls_to_new_leads:>10.0f}"
            f"{_num(r.followup_depth_median, '.1f'):>6}{_pct(r.reached_fifth_followup_share):>6}"
            f"{r.calls_to_previous_leads:>11.0f}{r.followups_to_engaged_leads:>10.0f}"
            f"{r.proposals:>6.0f}{r.proposal_total:>10,.0f}{r.conversions:>5.0f}"
            f"{r.won_revenue:>10,.0f}{_pct(r.quota_attainment):>7}"
        )
    return "\n".join(lines)


def _num(v: float, fmt: str) -> str:
    return "-" if pd.isna(v) else format(v, fmt)


def _pct(v: float) -> str:
    return "-" if pd.isna(v) else f"{v:.0%}"
