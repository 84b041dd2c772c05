"""A calibrated probability as people read it: never "100.0%" or "0.0%", which no model can
know; the answer (API, CSV) keeps the probability itself."""

from __future__ import annotations

HIGHEST_SHOWN = 0.99
LOWEST_SHOWN = 0.01


def probability_text(p: float | None) -> str:
    """`"> 99%"` above 0.99, `"< 1%"` below 0.01, else one decimal (`"34.2%"`); `-` for none."""
    if p is None or p != p:  # None or NaN
        return "-"
    if p > HIGHEST_SHOWN:
        return "> 99%"
    if p < LOWEST_SHOWN:
        return "< 1%"
    return f"{p * 100:.1f}%"
