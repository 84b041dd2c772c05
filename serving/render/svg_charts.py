"""Charts as standalone SVG text: the same drawing for the dashboard, the HTML reports that
travel by email, and anything else that shows them. No JavaScript and no external files, so a
chart renders offline and in a mail client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from core.probability_text import probability_text

FONT = "font-family='system-ui, sans-serif' font-size='12'"
UP, DOWN, NEUTRAL, FLAGGED, MUTED = "#2e8b57", "#c0392b", "#2c6fbb", "#c0392b", "#aaaaaa"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    width = max(width, int(6.6 * len(title)) + 24)  # room for the title line
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='{width}' height='{height}' role='img' aria-label='{escape(title)}' {FONT}>"
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "",
          tooltip: str | None = None) -> str:
    tip = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {extra}>"
            f"{tip}{escape(text)}</text>")


@dataclass(frozen=True)
class Step:
    """One bar of a waterfall: a label and its change in probability points."""

    label: str
    points: float


def waterfall(base_score: float, score: float, steps: Sequence[Step], top: int = 12,
              title: str = "What moved this score") -> str:
    """Horizontal waterfall from the average score to this lead's score, in percent: the `top`
    largest steps, the rest summed as one bar, green raising and red lowering."""
    ordered = sorted(steps, key=lambda s: -abs(s.points))
    shown = [s for s in ordered[:top] if s.points != 0]
    rest = sum(s.points for s in ordered[top:])
    if abs(rest) >= 0.05:
        shown.append(Step(f"{len(ordered) - top} other reasons", rest))
    label_w, bar_w, row_h = 300, 340, 24
    height = row_h * (len(shown) + 2) + 40
    start = base_score * 100
    levels = [start]
    for s in shown:
        levels.append(levels[-1] + s.points)
    lo, hi = min([*levels, score * 100]), max([*levels, score * 100])
    pad = max(1.0, (hi - lo) * 0.08)
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    span = max(hi - lo, 1e-9)

    def x(v: float) -> float:
        return label_w + (v - lo) / span * bar_w

    body = [_text(8, 16, title, extra="font-weight='600'")]
    y = 30
    body.append(_text(label_w - 8, y + 16, "average lead", "end"))
    body.append(f"<rect x='{x(lo):.1f}' y='{y + 4}' width='{x(start) - x(lo):.1f}' "
                f"height='{row_h - 8}' fill='{MUTED}'/>")
    body.append(_text(x(start) + 4, y + 16, f"{start:.1f}%"))
    level = start
    for s in shown:
        y += row_h
        a, b = sorted((level, level + s.points))
        color = UP if s.points > 0 else DOWN
        body.append(_text(label_w - 8, y + 16, _short(s.label, 44), "end", tooltip=s.label))
        body.append(f"<rect x='{x(a):.1f}' y='{y + 4}' width='{max(x(b) - x(a), 1):.1f}' "
                    f"height='{row_h - 8}' fill='{color}'/>")
        body.append(_text(x(b) + 4, y + 16, f"{s.points:+.1f} pts"))
        level += s.points
    y += row_h
    body.append(_text(label_w - 8, y + 16, "this lead", "end", "font-weight='600'"))
    body.append(f"<rect x='{x(lo):.1f}' y='{y + 4}' width='{x(score * 100) - x(lo):.1f}' "
                f"height='{row_h - 8}' fill='{NEUTRAL}'/>")
    body.append(_text(x(score * 100) + 4, y + 16, probability_text(score),
                      extra="font-weight='600'"))
    return _svg(label_w + bar_w + 90, height, body, title)


@dataclass(frozen=True)
class Interval:
    """One row of an interval chart: an estimate, its interval, a marker, and its status."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    marker: float | None = None  # e.g. the shrunk estimate
    status: str = "ok"  # ok, flagged, insufficient_data


def intervals(rows: Sequence[Interval], reference: float = 1.0,
              title: str = "Observed / expected", axis: str = "observed / expected") -> str:
    """Dots with interval whiskers, one row each, sorted as given; a dotted reference line;
    flagged rows red, rows with too little data grey; a tick for the marker."""
    finite = [v for r in rows for v in (r.value, r.low, r.high, r.marker)
              if v is not None and math.isfinite(v)] + [reference, 0.0]
    hi = max(finite) * 1.05 if finite else 2.0
    label_w, plot_w, row_h = 110, 420, 18
    height = row_h * len(rows) + 70

    def x(v: float) -> float:
        return label_w + min(max(v, 0.0), hi) / hi * plot_w

    body = [_text(8, 16, title, extra="font-weight='600'")]
    top = 30
    ref = x(reference)
    body.append(f"<line x1='{ref:.1f}' y1='{top}' x2='{ref:.1f}' y2='{top + row_h * len(rows)}' "
                f"stroke='#888' stroke-dasharray='3,3'/>")
    for i, r in enumerate(rows):
        cy = top + i * row_h + row_h / 2
        color = {"flagged": FLAGGED, "insufficient_data": MUTED}.get(r.status, NEUTRAL)
        body.append(_text(label_w - 8, cy + 4, r.label, "end",
                          f"fill='{color}'" + (" font-weight='600'" if r.status == "flagged"
                                               else "")))
        if r.low is not None and r.high is not None and math.isfinite(r.low) \
                and math.isfinite(r.high):
            body.append(f"<line x1='{x(r.low):.1f}' y1='{cy:.1f}' x2='{x(r.high):.1f}' "
                        f"y2='{cy:.1f}' stroke='#999'/>")
        if r.value is not None and math.isfinite(r.value):
            body.append(f"<circle cx='{x(r.value):.1f}' cy='{cy:.1f}' r='4' fill='{color}'>"
                        f"<title>{escape(r.label)}: {r.value:.2f}</title></circle>")
        if r.marker is not None and math.isfinite(r.marker):
            body.append(f"<line x1='{x(r.marker):.1f}' y1='{cy - 6:.1f}' x2='{x(r.marker):.1f}' "
                        f"y2='{cy + 6:.1f}' stroke='#222' stroke-width='2'/>")
    base = top + row_h * len(rows) + 14
    for tick in _ticks(hi):
        body.append(_text(x(tick), base, f"{tick:g}", "middle"))
    body.append(_text(label_w + plot_w / 2, base + 18, axis, "middle"))
    return _svg(label_w + plot_w + 30, height, body, title)


def _ticks(hi: float) -> list[float]:
    step = 0.25 if hi <= 1.5 else 0.5 if hi <= 3 else 1.0 if hi <= 6 else max(1, round(hi / 6))
    return [i * step for i in range(int(hi / step) + 1)]


def calibration(bins: Sequence[tuple[float, float, int]],
                title: str = "Calibration on the out-of-time test") -> str:
    """Reliability diagram: per bin (mean score, observed rate, rows), a dot sized by rows,
    against the diagonal of perfect calibration; both axes 0-100%."""
    size, pad = 300, 56
    body = [_text(8, 16, title, extra="font-weight='600'")]

    def px(v: float) -> float:
        return pad + v * size

    def py(v: float) -> float:
        return 30 + size - v * size

    body.append(f"<rect x='{pad}' y='30' width='{size}' height='{size}' fill='none' "
                f"stroke='#ccc'/>")
    body.append(f"<line x1='{px(0)}' y1='{py(0)}' x2='{px(1)}' y2='{py(1)}' stroke='#888' "
                f"stroke-dasharray='3,3'/>")
    most = max((n for _, _, n in bins), default=1)
    pts = []
    for mean, observed, n in bins:
        r = 2.5 + 5 * math.sqrt(n / most)
        pts.append(f"{px(mean):.1f},{py(observed):.1f}")
        body.append(f"<circle cx='{px(mean):.1f}' cy='{py(observed):.1f}' r='{r:.1f}' "
                    f"fill='{NEUTRAL}' fill-opacity='0.8'><title>scored {mean:.1%}, converted "
                    f"{observed:.1%} ({n:,} examples)</title></circle>")
    if len(pts) > 1:
        body.append(f"<polyline points='{' '.join(pts)}' fill='none' stroke='{NEUTRAL}'/>")
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        body.append(_text(px(t), py(0) + 14, f"{t:.0%}", "middle"))
        body.append(_text(pad - 4, py(t) + 4, f"{t:.0%}", "end"))
    body.append(_text(px(0.5), py(0) + 30, "predicted", "middle"))
    body.append(_text(12, py(0.5), "observed", "middle",
                      f"transform='rotate(-90 12 {py(0.5):.1f})'"))
    return _svg(size + pad + 20, size + 80, body, title)


def time_series(series: dict[str, Sequence[tuple[str, float | None]]], title: str,
                unit: str = "", threshold: float | None = None,
                threshold_label: str = "alarm") -> str:
    """Lines over time (one per named series; x: the points' labels, dates, in order; a None
    value leaves a gap), with an optional dashed threshold line."""
    colors = (NEUTRAL, UP, DOWN, "#8e44ad", "#d35400")
    labels = list(dict.fromkeys(x for pts in series.values() for x, _ in pts))
    values = [v for pts in series.values() for _, v in pts if v is not None]
    width, height, left, top, bottom = 560, 220, 56, 28, 44
    plot_w, plot_h = width - left - 16, height - top - bottom
    hi = max([*values, threshold or 0.0, 1e-9]) * 1.1
    lo = min([*values, 0.0])
    body: list[str] = [_text(left, 16, title, extra="font-weight='600'")]
    if not values:
        body.append(_text(left, top + plot_h / 2, "nothing recorded yet", extra=f"fill='{MUTED}'"))
        return _svg(width, height, body, title)

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(labels) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo if hi > lo else 1))

    for t in (lo, (lo + hi) / 2, hi):
        body += [f"<line x1='{left}' x2='{left + plot_w}' y1='{y(t):.1f}' y2='{y(t):.1f}' "
                 f"stroke='#eeeeee'/>", _text(left - 6, y(t) + 4, f"{t:.3g}{unit}", "end")]
    if threshold is not None:
        body += [f"<line x1='{left}' x2='{left + plot_w}' y1='{y(threshold):.1f}' "
                 f"y2='{y(threshold):.1f}' stroke='{DOWN}' stroke-dasharray='4 3'/>",
                 _text(left + plot_w, y(threshold) - 4, f"{threshold_label} {threshold:g}{unit}",
                       "end", f"fill='{DOWN}'")]
    position = {label: i for i, label in enumerate(labels)}
    for n, (name, pts) in enumerate(series.items()):
        color = colors[n % len(colors)]
        run: list[str] = []
        for label, v in [*pts, ("", None)]:
            if v is None:
                if len(run) > 1:
                    body.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' "
                                f"points='{' '.join(run)}'/>")
                run = []
                continue
            px, py = x(position[label]), y(v)
            run.append(f"{px:.1f},{py:.1f}")
            body.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{color}'>"
                        f"<title>{escape(f'{name} {label}: {v:.4g}{unit}')}</title></circle>")
        body.append(_text(left + 8 + 150 * n, height - 8, name, extra=f"fill='{color}'"))
    body += [_text(left, top + plot_h + 16, _short(labels[0], 20)),
             _text(left + plot_w, top + plot_h + 16, _short(labels[-1], 20), "end")]
    return _svg(width, height, body, title)
