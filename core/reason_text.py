"""Reasons in the words a sales manager uses: "Meeting held", "No touch for 45 days", "Proposal of
$12,000 sent", "Owner converts 62% of leads", instead of the data dictionary's descriptions.

Related features are one reason: the four windows of one count (7, 30, 90 days, ever) are one
("2 emails from the lead in the last 7 days (5 in all)"), so are a lead's responses (the count and
the has-responded flag), its proposals (count, largest and total amount) and when it was touched
first and last. `family_of` names
the reason a feature belongs to; `phrase` writes it from the lead's values. Lead attributes from
an export are written as "Company size: 120" or "Industry: retail".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

WINDOWS = ("7d", "30d", "90d", "all")
_COUNT = re.compile(r"^(calls|emails|meetings|proposals|others)_(out|in)_(7d|30d|90d|all)$")
NOUNS: dict[tuple[str, str], tuple[str, str]] = {
    ("calls", "out"): ("call made", "calls made"),
    ("calls", "in"): ("call from the lead", "calls from the lead"),
    ("emails", "out"): ("email sent", "emails sent"),
    ("emails", "in"): ("email from the lead", "emails from the lead"),
    ("meetings", "out"): ("meeting set up", "meetings set up"),
    ("meetings", "in"): ("meeting the lead asked for", "meetings the lead asked for"),
    ("proposals", "out"): ("proposal sent", "proposals sent"),
    ("proposals", "in"): ("proposal request from the lead", "proposal requests from the lead"),
    ("others", "out"): ("other touch", "other touches"),
    ("others", "in"): ("other contact from the lead", "other contacts from the lead"),
}
FAMILIES: dict[str, tuple[str, ...]] = {
    "responses": ("inbound_responses", "has_responded"),
    "proposals": ("proposals_sent", "proposal_amount_max", "proposal_amount_total"),
    "touch_timing": ("days_since_last_touch", "days_since_first_touch"),
}
_FAMILY_OF = {member: family for family, members in FAMILIES.items() for member in members}
QUIET_DAYS = 14
"""From this many days without a touch, the reason says "No touch for ..." (a gap to close)."""


def at_risk_text(score: float, dropout_risk: float, touches: float | None,
                 days_since_last_touch: float | None) -> str:
    """The one line for a lead likely to convert whose rep is likely to stop: "Likely to convert
    (34.0%), but the rep is likely to stop (risk 61.0%): 4 touches, none in 12 days"."""
    from core.probability_text import probability_text

    head = (f"Likely to convert ({probability_text(score)}), but the rep is likely to stop "
            f"(risk {probability_text(dropout_risk)})")
    if not touches:
        return head
    tail = _count(touches, "touch", "touches")
    if days_since_last_touch is not None and days_since_last_touch >= 1:
        tail += f", none in {span(days_since_last_touch)}"
    return f"{head}: {tail}"


def family_of(feature: str) -> str:
    """The reason a feature belongs to: `emails_in` for `emails_in_7d`, `responses` for
    `has_responded`, else the feature itself."""
    m = _COUNT.match(feature)
    if m:
        return f"{m.group(1)}_{m.group(2)}"
    return _FAMILY_OF.get(feature, feature)


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, (str, bool)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _count(n: float, one: str, many: str) -> str:
    k = round(n)
    return f"{k:,} {one if k == 1 else many}"


def span(days: float) -> str:
    """A duration for people: "less than a day", "12 days", "5 months", "2 years"."""
    if days < 1:
        return "less than a day"
    if days < 60:
        return _count(days, "day", "days")
    if days < 730:
        return _count(days / 30.44, "month", "months")
    return _count(days / 365.25, "year", "years")


def ago(days: float) -> str:
    """A moment before now: "today", "3 days ago", "5 months ago"."""
    return "today" if days < 1 else f"{span(days)} ago"


def money(v: float) -> str:
    """An amount: "$12,000"."""
    return f"${v:,.0f}"


def percent(v: float) -> str:
    """A rate (0-1) as "62%" ("less than 1%" for a small one that is not zero)."""
    return "less than 1%" if 0 < v < 0.005 else f"{v * 100:.0f}%"


def _number(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.1f}"


def humanize(name: str) -> str:
    """An attribute's column name as words: `company_size` -> "Company size"."""
    words = re.sub(r"[_\W]+", " ", name).strip()
    return (words[:1].upper() + words[1:]) if words else "Attribute"


def _window_counts(family: str, values: Mapping[str, Any]) -> str:
    kind, direction = family.split("_")
    one, many = NOUNS[(kind, direction)]
    counts = {w: _num(values.get(f"{family}_{w}")) for w in WINDOWS}
    total = counts["all"] or 0.0
    if total == 0:
        return f"No {many} yet"
    for w, label in (("7d", "in the last 7 days"), ("30d", "in the last 30 days"),
                     ("90d", "in the last 90 days")):
        n = counts[w] or 0.0
        if n > 0:
            more = f" ({_count(total, 'in all', 'in all')})" if total > n else ""
            return f"{_count(n, one, many)} {label}{more}"
    return f"{_count(total, one, many)}, none in the last 90 days"


def _responses(values: Mapping[str, Any]) -> str:
    n = _num(values.get("inbound_responses")) or 0.0
    touches = _num(values.get("outbound_touches"))
    if n > 0:
        return f"The lead responded {_count(n, 'time', 'times')}"
    if (_num(values.get("has_responded")) or 0.0) > 0:
        return "The lead answered a call"
    if touches:
        return f"No response after {_count(touches, 'touch', 'touches')}"
    return "No response yet"


def _touch_timing(values: Mapping[str, Any]) -> str:
    last = _num(values.get("days_since_last_touch"))
    first = _num(values.get("days_since_first_touch"))
    if last is None:
        return "Never touched"
    head = f"No touch for {span(last)}" if last >= QUIET_DAYS else f"Last touched {ago(last)}"
    return f"{head} (first {ago(first)})" if first is not None and first - last >= 1 else head


def _proposals(values: Mapping[str, Any]) -> str:
    n = _num(values.get("proposals_sent")) or 0.0
    largest = _num(values.get("proposal_amount_max"))
    if n == 0:
        return "No proposal sent yet"
    if n == 1:
        return f"Proposal of {money(largest)} sent" if largest else "Proposal sent"
    return (f"{_count(n, 'proposal', 'proposals')} sent (largest {money(largest)})" if largest
            else f"{_count(n, 'proposal', 'proposals')} sent")


def _days(none: str, some: Callable[[float], str]) -> Callable[[Any], str]:
    def write(v: Any) -> str:
        d = _num(v)
        return none if d is None else some(d)
    return write


def _touches_before(v: Any, values: Mapping[str, Any]) -> str:
    n = _num(v) or 0.0
    if (_num(values.get("has_responded")) or 0.0) > 0:
        return f"Responded after {_count(n, 'touch', 'touches')}"
    return (f"No response after {_count(n, 'touch', 'touches')}" if n
            else "Not contacted yet")


SINGLE: dict[str, Callable[[Any], str]] = {
    "outbound_touches": lambda v: (f"{_count(_num(v) or 0, 'follow-up touch', 'follow-up touches')}"
                                   " so far" if _num(v) else "Not contacted yet"),
    "days_since_last_response": _days("No response yet", lambda d: f"Last response {ago(d)}"),
    "days_since_last_activity": _days("No activity yet", lambda d: (
        f"No activity for {span(d)}" if d >= QUIET_DAYS else f"Last activity {ago(d)}")),
    "mean_gap_days": _days("Fewer than two touches", lambda d: (
        f"Touches {span(d)} apart on average")),
    "longest_gap_days": _days("Fewer than two touches", lambda d: (
        f"Longest silence between touches: {span(d)}")),
    "meeting_held": lambda v: "Meeting held" if (_num(v) or 0) > 0 else "No meeting held yet",
    "followups_after_meeting": lambda v: (
        f"{_count(_num(v) or 0, 'follow-up', 'follow-ups')} after the meeting" if _num(v)
        else "No follow-up after a meeting"),
    "reengagements": lambda v: (
        f"Won back {_count(_num(v) or 0, 'time', 'times')} after a month of silence"
        if _num(v) else "Never won back after a month of silence"),
    "engagement_score": lambda v: (
        f"Recent engagement {_number(_num(v) or 0.0)} (replies, meetings and proposals of the "
        "last weeks count most)"),
    "lead_age_days": _days("Age unknown", lambda d: (
        "Lead created today" if d < 1 else f"Lead is {span(d)} old")),
    "rep_past_conversion_rate": lambda v: (
        f"Owner converts {percent(_num(v) or 0.0)} of leads" if _num(v) is not None
        else "Owner has no track record yet"),
    "rep_past_followup_depth": lambda v: (
        f"Owner gives leads {_number(_num(v) or 0.0)} touches on average"
        if _num(v) is not None else "Owner has no follow-up record yet"),
    "source_past_conversion_rate": lambda v: (
        f"Leads from this source convert {percent(_num(v) or 0.0)}" if _num(v) is not None
        else "No record for this source yet"),
    "source": lambda v: f"Came in through {v}" if v not in (None, "") else "Source unknown",
}
KNOWN = frozenset(SINGLE) | frozenset(FAMILIES) | frozenset(
    f"{k}_{d}" for k, d in NOUNS) | frozenset({"touches_before_first_response"})
"""Every reason with a phrase of its own; any other feature is a lead attribute."""


def phrase(family: str, values: Mapping[str, Any]) -> str:
    """The reason `family` (see `family_of`) for a lead whose feature values are `values`."""
    if family in FAMILIES:
        return {"responses": _responses, "proposals": _proposals,
                "touch_timing": _touch_timing}[family](values)
    if family in SINGLE:
        return SINGLE[family](values.get(family))
    if family == "touches_before_first_response":
        return _touches_before(values.get(family), values)
    if re.fullmatch(r"(calls|emails|meetings|proposals|others)_(out|in)", family):
        return _window_counts(family, values)
    return _attribute(family, values.get(family))


def _attribute(name: str, v: Any) -> str:
    label = humanize(name)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return f"{label} not given"
    if isinstance(v, bool):
        return f"{label}: {'yes' if v else 'no'}"
    n = _num(v)
    return f"{label}: {_number(n) if n is not None else str(v)[:80]}"
