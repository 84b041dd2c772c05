"""The rep report as text, CSV, JSON and a self-contained HTML page (chart embedded)."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from features.rep_report import RepReport, _num


def _header(report: RepReport) -> str:
    p = report.period
    return (f"Rep report, {p.label} ({p.start:%Y-%m-%d} to "
            f"{(p.end - pd.Timedelta(days=1)):%Y-%m-%d}); outcomes known up to "
            f"{report.as_of:%Y-%m-%d %H:%M}")


def to_json(report: RepReport) -> str:
    return json.dumps({
        "period": report.period.label,
        "period_start": str(report.period.start.date()),
        "period_end": str((report.period.end - pd.Timedelta(days=1)).date()),
        "as_of": str(report.as_of),
        "note": report.note,
        "models": report.models,
        "reps": report.records(),
    }, indent=2)


def to_csv(report: RepReport) -> str:
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


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)


def to_table(report: RepReport, flagged_only: bool = False) -> str:
    recs = report.records()
    lines = [_header(report), report.note, ""]
    if not flagged_only:
        lines.append(f"{'rep':<8}{'team':<10}{'status':<19}{'leads':>6}{'conv':>6}{'exp':>7}"
                     f"{'O/E':>6}{'90% interval':>15}{'shrunk':>8}{'drops':>7}{'exp':>7}"
                     f"{'quota':>7}")
        for r in recs:
            lo, hi = r["oe_interval"]
            lines.append(
                f"{r['rep_id']:<8}{(r['team'] or '-'):<10}{r['status']:<19}{r['leads']:>6}"
                f"{r['conversions']:>6}{r['expected_conversions']:>7.1f}{_f(r['oe_ratio']):>6}"
                f"{(_f(lo) + ' to ' + _f(hi)):>15}{_f(r['oe_ratio_shrunk']):>8}"
                f"{r['dropouts']:>7}{r['expected_dropouts']:>7.1f}"
                f"{_f(r['quota_attainment'], '{:.0%}'):>7}")
        lines.append("")
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


def oe_chart_svg(report: RepReport) -> str:
    """Observed / expected conversions per rep with intervals, shrunk estimate as a tick;
    flagged reps red, reps with too little data grey (the dashboard shows the same chart)."""
    from features.svg_charts import Interval, intervals

    r = report.reps.sort_values("oe_ratio", na_position="first")
    rows = [Interval(str(x.rep_id), _num(x.oe_ratio), _num(x.oe_low), _num(x.oe_high),
                     _num(x.oe_ratio_shrunk), str(x.status)) for x in r.itertuples()]
    return intervals(rows, 1.0, f"Reps, {report.period.label}: conversions observed / expected "
                     "from lead quality (red = flagged, grey = too little data, tick = shrunk)",
                     "observed / expected (90% interval)")


def to_html(report: RepReport) -> str:
    """One self-contained page (no external files): chart, table, flags with evidence."""
    e = html.escape
    rows = []
    for r in report.records():
        lo, hi = r["oe_interval"]
        flags = "<br>".join(f"<b>{e(f['metric'])}</b>: {e(f['reason'])}<br><small>leads: "
                            f"{e(', '.join(f['lead_ids']))}</small>" for f in r["flags"])
        rows.append(
            f"<tr class='{e(r['status'])}'><td>{e(r['rep_id'])}</td><td>{e(r['team'] or '-')}"
            f"</td><td>{e(r['status'])}</td><td>{r['leads']}</td><td>{r['conversions']}</td>"
            f"<td>{r['expected_conversions']:.1f}</td><td>{_f(r['oe_ratio'])} "
            f"({_f(lo)}&ndash;{_f(hi)})</td><td>{_f(r['oe_ratio_shrunk'])}</td>"
            f"<td>{r['dropouts']} / {r['expected_dropouts']:.1f}</td>"
            f"<td>{_f(r['quota_attainment'], '{:.0%}')}</td><td>{flags}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(_header(report))}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px;
vertical-align: top; text-align: left; }} tr.flagged td {{ background: #fdecea; }}
tr.insufficient_data td {{ color: #888; }} .note {{ background: #fff7d6; padding: .6em 1em; }}
</style></head><body>
<h1>{e(_header(report))}</h1>
<p class="note">{e(report.note)}</p>
{oe_chart_svg(report)}
<table><thead><tr><th>rep</th><th>team</th><th>status</th><th>leads</th><th>conversions</th>
<th>expected</th><th>O/E (90% interval)</th><th>shrunk O/E</th><th>dropouts / expected</th>
<th>quota</th><th>flags and evidence</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table>
<p><small>Expected figures come from rep-blind models (lead quality at assignment, dropout
risk by lead state): {e(json.dumps(report.models))}.</small></p>
</body></html>
"""
