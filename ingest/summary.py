"""What the warehouse holds: rows per table, date range, conversion rate, follow-up depth."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.warehouse import Warehouse, single_row

FOLLOWUP_BUCKETS = ("0", "1", "2", "3", "4", "5-9", "10+")


@dataclass(frozen=True)
class CrmSummary:
    """The figures `summarize_crm` reports."""

    rows: dict[str, int]
    first_lead: pd.Timestamp | None
    last_lead: pd.Timestamp | None
    last_activity: pd.Timestamp | None
    converted: int
    lost: int
    open: int
    followups: dict[str, float]
    """Share of leads by number of outbound touches received."""

    @property
    def conversion_rate(self) -> float:
        """Converted leads as a share of all leads (0 when there are none)."""
        total = self.converted + self.lost + self.open
        return self.converted / total if total else 0.0

    @property
    def resolved_conversion_rate(self) -> float:
        """Converted leads as a share of resolved (converted or lost) leads."""
        resolved = self.converted + self.lost
        return self.converted / resolved if resolved else 0.0


def summarize_crm(warehouse: Warehouse) -> CrmSummary:
    """Summarise the CRM tables in the warehouse."""
    con = warehouse.con
    rows = {t: warehouse.count(t) for t in ("leads", "activities", "reps")}
    first, last, won, lost, open_ = single_row(con.execute(
        """
        SELECT min(created_at), max(created_at),
               count(*) FILTER (WHERE converted_at IS NOT NULL),
               count(*) FILTER (WHERE closed_lost_at IS NOT NULL),
               count(*) FILTER (WHERE converted_at IS NULL AND closed_lost_at IS NULL)
        FROM leads
        """
    ))
    last_act = single_row(con.execute("SELECT max(occurred_at) FROM activities"))[0]
    depth = con.execute(
        """
        WITH touches AS (
            SELECT l.lead_id, count(a.activity_id) AS n
            FROM leads l
            LEFT JOIN activities a
              ON a.lead_id = l.lead_id AND a.direction = 'outbound'
            GROUP BY l.lead_id
        )
        SELECT CASE WHEN n >= 10 THEN '10+' WHEN n >= 5 THEN '5-9' ELSE CAST(n AS VARCHAR) END
                   AS bucket,
               count(*) AS leads
        FROM touches GROUP BY bucket
        """
    ).df()
    total = int(depth["leads"].sum())
    counts = dict(zip(depth["bucket"], depth["leads"], strict=True))
    followups = {b: (counts.get(b, 0) / total if total else 0.0) for b in FOLLOWUP_BUCKETS}
    return CrmSummary(
        rows=rows,
        first_lead=first,
        last_lead=last,
        last_activity=last_act,
        converted=int(won),
        lost=int(lost),
        open=int(open_),
        followups=followups,
    )


def format_crm_summary(s: CrmSummary) -> str:
    """A short text report of `summarize_crm`."""
    lines = [
        "Warehouse: " + ", ".join(f"{n:,} {t}" for t, n in s.rows.items()),
        f"Leads created {_day(s.first_lead)} to {_day(s.last_lead)}; "
        f"last activity {_day(s.last_activity)}",
        f"Outcomes: {s.converted:,} converted, {s.lost:,} lost, {s.open:,} open; "
        f"conversion rate {s.conversion_rate:.1%} of all leads, "
        + (f"{s.resolved_conversion_rate:.1%} of resolved leads" if s.lost or not s.converted
           else "losses are not recorded (no lead has a closed_lost_at): a lead without an "
                "outcome counts as not converted once its horizon has passed"),
        "Outbound follow-ups per lead:",
    ]
    for bucket, share in s.followups.items():
        lines.append(f"  {bucket:>4} touches  {share:6.1%}  {'#' * round(share * 60)}")
    return "\n".join(lines)


def _day(ts: pd.Timestamp | None) -> str:
    return "-" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")
