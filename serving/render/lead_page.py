"""One lead as a self-contained HTML page (`leadlens explain LEAD_ID --format html`): the same
waterfall, reasons, next steps and timeline as the dashboard's lead page, for email."""

from __future__ import annotations

from html import escape
from typing import Any

from core.names import CONVERSION, registered_name
from core.probability_text import probability_text

_pct = probability_text


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def lead_html(view: dict[str, Any]) -> str:
    """The page for one `serving.lead_view.lead_view` result; no scripts, no external files."""
    e = escape
    reasons = "".join(
        f"<tr><td>{e(r['text'])}</td>"
        f"<td class='{e(r['direction'])}'>{r['points']:+.1f} pts</td></tr>"
        for r in view["reasons"])
    best = view.get("best_action") or {}
    actions = "".join(
        f"<li{' class=best' if a['action'] == best.get('action') else ''}>{e(a['label'])}: "
        f"{a['points']:+.1f} pts (score {_pct(a['score_after'])})</li>"
        for a in view["actions"])
    timeline = "".join(
        f"<tr><td>{e(t['occurred_at'])}</td><td>{e(t['type'])}</td><td>{e(t['direction'])}</td>"
        f"<td>{e(t['outcome'] or '-')}</td>"
        f"<td>{_money(t['amount'])}</td>"
        f"<td>{e(t['rep_id'] or '-')}</td></tr>" for t in view["timeline"])
    title = f"Lead {view['lead_id']}: score {_pct(view['score'])} (grade {view['grade']})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
.raises {{ color: #2e8b57; }} .lowers {{ color: #c0392b; }} li.best {{ font-weight: 600; }}
.meta {{ color: #555; }}
</style></head><body>
<h1>{e(title)}</h1>
<p class="meta">owner {e(str(view['owner_rep_id'] or '-'))}, team {e(str(view['team'] or '-'))},
source {e(str(view['source'] or '-'))}, created {e(view['created_at'])}; dropout risk
{_pct(view['dropout_risk'])}; as of {e(view['as_of'])}, {registered_name(CONVERSION)}
v{view['model_version']}. A typical lead scores {_pct(view['base_score'])}.</p>
{view['waterfall_svg']}
<h2>Top reasons</h2>
<table><thead><tr><th>reason</th><th>effect</th></tr></thead>
<tbody>{reasons}</tbody></table>
<h2>Next step, as the model sees it</h2>
<ul>{actions}</ul>
<p class="meta">Each step is added to this lead's real history and the lead is scored again: what
the model learned from past leads, not a promise that the step causes the change.</p>
<h2>Activity so far</h2>
<table><thead><tr><th>when</th><th>type</th><th>direction</th><th>outcome</th><th>amount</th>
<th>rep</th></tr></thead><tbody>{timeline}</tbody></table>
</body></html>
"""
