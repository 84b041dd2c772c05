"""The rep report as a self-contained HTML page with its observed/expected chart (the
dashboard's rep view shows the same chart)."""

from __future__ import annotations

import html
import json

from reps.report import RepReport, num_or_none
from reps.report_format import compared_with, fmt_num, header
from serving.render.svg_charts import Interval, intervals


def oe_chart_svg(report: RepReport) -> str:
    """Observed / expected conversions per rep with intervals, shrunk estimate as a tick;
    flagged reps red, reps with too little data grey (the dashboard shows the same chart)."""
    r = report.reps.sort_values("oe_ratio", na_position="first")
    rows = [Interval(str(x.rep_id), num_or_none(x.oe_ratio), num_or_none(x.oe_low),
                     num_or_none(x.oe_high), num_or_none(x.oe_ratio_shrunk), str(x.status))
            for x in r.itertuples()]
    return intervals(rows, 1.0, f"Reps, {report.period.label}: conversions observed / expected "
                     "from lead quality (red = flagged, grey = too little data, tick = shrunk)",
                     "observed / expected (90% interval)")


def to_html(report: RepReport) -> str:
    """One self-contained page (no external files): chart, table, flags with evidence."""
    e = html.escape
    rows = []
    recs = report.records()
    for r in recs:
        lo, hi = r["oe_interval"]
        flags = "<br>".join(f"<b>{e(f['metric'])}</b>: {e(f['reason'])}<br><small>leads: "
                            f"{e(', '.join(f['lead_ids']))}</small>" for f in r["flags"])
        rows.append(
            f"<tr class='{e(r['status'])}'><td>{e(r['rep_id'])}</td><td>{e(r['team'] or '-')}"
            f"</td><td>{e(r['status'])}</td><td>{r['leads']}</td><td>{r['conversions']}</td>"
            f"<td>{r['expected_conversions']:.1f}</td><td>{fmt_num(r['oe_ratio'])} "
            f"({fmt_num(lo)}&ndash;{fmt_num(hi)})</td><td>{fmt_num(r['oe_ratio_shrunk'])}</td>"
            f"<td>{r['dropouts']} / {r['expected_dropouts']:.1f}</td>"
            f"<td>{fmt_num(r['quota_attainment'], '{:.0%}')}</td><td>{flags}</td></tr>")
    missing = "".join(f'<p class="note">{e(m)}</p>' for m in report.missing)
    missing += f"<p>{e(compared_with(recs))}</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(header(report))}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px;
vertical-align: top; text-align: left; }} tr.flagged td {{ background: #fdecea; }}
tr.insufficient_data td {{ color: #888; }} .note {{ background: #fff7d6; padding: .6em 1em; }}
</style></head><body>
<h1>{e(header(report))}</h1>
<p class="note">{e(report.note)}</p>{missing}
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
