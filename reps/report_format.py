"""The rep report as text, CSV and JSON (the HTML page and its chart: `serving.render.rep_page`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from reps.report import RepReport


def header(report: RepReport) -> str:
    """The report's title line: period, its first and last day, and when outcomes end."""
    p = report.period
    return (f"Rep report, {p.label} ({p.start:%Y-%m-%d} to "
            f"{(p.end - pd.Timedelta(days=1)):%Y-%m-%d}); outcomes known up to "
            f"{report.as_of:%Y-%m-%d %H:%M}")


def to_json(report: RepReport) -> str:
    """The report as indented JSON: period, note, model versions and one record per rep."""
    return json.dumps({
        "period": report.period.label,
        "period_start": str(report.period.start.date()),
        "period_end": str((report.period.end - pd.Timedelta(days=1)).date()),
        "as_of": str(report.as_of),
        "note": report.note,
        "not_judged": report.missing,
        "models": report.models,
        "reps": report.records(),
    }, indent=2)


def to_csv(report: RepReport) -> str:
    """The report as CSV, one flattened row per rep (flags joined into one column)."""
    rows = []
    for r in report.records():
        flat: dict[str, Any] = {k: v for k, v in r.items()
                                if k not in ("metrics", "peers", "flags", "leads_at_risk",
                                             "oe_interval", "followup_depth")}
        flat.update({m: (v["count"] if isinstance(v, dict) else v)
                     for m, v in r["metrics"].items()})
        flat["proposal_total"] = r["metrics"]["proposals"]["total"]
        flat["oe_low"], flat["oe_high"] = r["oe_interval"]
        flat["reached_fifth_share"] = r["followup_depth"]["reached_fifth_share"]
        flat["flags"] = " | ".join(f["reason"] for f in r["flags"])
        rows.append(flat)
    return pd.DataFrame(rows).to_csv(index=False)


def compared_with(records: list[dict[str, Any]]) -> str:
    """Who was compared with whom: each comparison group and its number of reps."""
    groups: dict[str, int] = {}
    for r in records:
        groups[r["compared_with"]] = groups.get(r["compared_with"], 0) + 1
    return "Compared with: " + "; ".join(f"{g} ({n} reps)" for g, n in groups.items())


def fmt_num(v: float | None, fmt: str = "{:.2f}") -> str:
    """A number in `fmt`, or `-` when it is missing or NaN."""
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)


def to_table(report: RepReport, flagged_only: bool = False) -> str:
    """The report as text: every rep in a table (unless `flagged_only`), then the flags."""
    recs = report.records()
    lines = [header(report), report.note, *report.missing, ""]
    if not flagged_only:
        lines.append(f"{'rep':<8}{'team':<10}{'status':<19}{'leads':>6}{'conv':>6}{'exp':>7}"
                     f"{'O/E':>6}{'90% interval':>15}{'shrunk':>8}{'drops':>7}{'exp':>7}"
                     f"{'quota':>7}")
        for r in recs:
            lo, hi = r["oe_interval"]
            lines.append(
                f"{r['rep_id']:<8}{(r['team'] or '-'):<10}{r['status']:<19}{r['leads']:>6}"
                f"{r['conversions']:>6}{r['expected_conversions']:>7.1f}{fmt_num(r['oe_ratio']):>6}"
                f"{(fmt_num(lo) + ' to ' + fmt_num(hi)):>15}{fmt_num(r['oe_ratio_shrunk']):>8}"
                f"{r['dropouts']:>7}{r['expected_dropouts']:>7.1f}"
                f"{fmt_num(r['quota_attainment'], '{:.0%}'):>7}")
        lines.append("")
    lines.append(compared_with(recs))
    others = [r for r in recs if r["status"] == "not_an_owner"]
    if others:
        lines.append("Not judged as owners (most of their touches are on other reps' leads): "
                     + ", ".join(f"{r['rep_id']} ({fmt_num(r['owned_touch_share'], '{:.0%}')} "
                                 "on own leads)" for r in others))
    flagged = [r for r in recs if r["status"] == "flagged"]
    lines.append(f"Flagged reps: {len(flagged)} of {len(recs)}"
                 + (f" ({sum(r['status'] == 'insufficient_data' for r in recs)} with too "
                    "little data to judge)" if any(r['status'] == 'insufficient_data'
                                                    for r in recs) else ""))
    for r in flagged:
        lines.append(f"  {r['rep_id']} ({r['team'] or 'no team'}):")
        for f in r["flags"]:
            lines.append(f"    - {f['metric']}: {f['reason']}")
            lines.append(f"      leads: {', '.join(f['lead_ids'][:5])}"
                         + (" ..." if len(f["lead_ids"]) > 5 else ""))
    return "\n".join(lines)
