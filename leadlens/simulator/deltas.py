"""A world's export as a CRM sends it over a year: an initial export, then monthly deltas.

`initial/` holds everything known at the initial cutoff, `DELTA_MONTHS` months before the
world's. `deltas/01/` to `deltas/12/` each hold the month's new leads and the earlier leads
whose outcome (converted_at or closed_lost_at) was set in the month, as complete rows known at
the month's end; the month's activities; and the month's end in `cutoff.txt`. Every row is
point-in-time: nothing at or after its export's cutoff shows. Upserting the initial export and
then the deltas in order by id (leads by lead_id, activities by activity_id) gives the world's
export at its cutoff. Reps do not change, so only the initial export has them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd

from leadlens.simulator.worlds import (
    DATE_FORMAT,
    DELTA_MONTHS,
    START,
    WorldCRM,
    month_bounds,
    write_truth,
)


@dataclass
class Export:
    """One export: the rows it holds as known at its cutoff, and how many leads are new in it
    and how many are earlier leads whose outcome it sets."""

    name: str  # "initial" or the delta's folder, "deltas/01" ...
    cutoff: pd.Timestamp
    leads: pd.DataFrame
    activities: pd.DataFrame
    new_leads: int
    changed_leads: int


def known_at(leads: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The leads created before `cutoff` as known then: an outcome at or after it is blank."""
    out = leads[leads["created_at"] < cutoff].copy()
    won = out["converted_at"] < cutoff  # a missing time compares False
    out["converted_at"] = out["converted_at"].where(won)
    out["deal_amount"] = out["deal_amount"].where(won)
    out["closed_lost_at"] = out["closed_lost_at"].where(out["closed_lost_at"] < cutoff)
    return out.reset_index(drop=True)


def monthly_exports(crm: WorldCRM, months: int = DELTA_MONTHS) -> list[Export]:
    """The initial export, then one delta for each of the `months` months before the cutoff."""
    bounds = month_bounds(crm.cutoff, months)
    if bounds[0] <= pd.Timestamp(START):
        raise ValueError(f"monthly deltas need more than {months} months of history: the "
                         f"world starts {START} and ends {crm.cutoff.date()}")
    leads, acts = crm.leads, crm.activities
    outcome_at = leads["converted_at"].fillna(leads["closed_lost_at"])
    first = known_at(leads, bounds[0])
    exports = [Export("initial", bounds[0], first,
                      acts[acts["occurred_at"] < bounds[0]].reset_index(drop=True),
                      len(first), 0)]
    for m, (lo, hi) in enumerate(pairwise(bounds), start=1):
        new = (leads["created_at"] >= lo) & (leads["created_at"] < hi)
        changed = (leads["created_at"] < lo) & (outcome_at >= lo) & (outcome_at < hi)
        month_acts = acts[(acts["occurred_at"] >= lo) & (acts["occurred_at"] < hi)]
        exports.append(Export(f"deltas/{m:02d}", hi, known_at(leads[new | changed], hi),
                              month_acts.reset_index(drop=True), int(new.sum()),
                              int(changed.sum())))
    return exports


def write_export(export: Export, folder: Path, reps: pd.DataFrame | None = None) -> None:
    """`leads.csv`, `activities.csv`, `reps.csv` if given, and `cutoff.txt` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    export.leads.to_csv(folder / "leads.csv", index=False, date_format=DATE_FORMAT)
    export.activities.to_csv(folder / "activities.csv", index=False, date_format=DATE_FORMAT)
    if reps is not None:
        reps.to_csv(folder / "reps.csv", index=False)
    (folder / "cutoff.txt").write_text(f"{export.cutoff.isoformat()}\n")


def write_monthly(crm: WorldCRM, out_dir: Path,
                  written: Callable[[Export], None] | None = None) -> list[Export]:
    """Write the initial export, the monthly deltas and the truth at the world's cutoff
    (`truth/`, never read by LeadLens) under `out_dir`; `written(export)` after each export."""
    exports = monthly_exports(crm)
    for export in exports:
        write_export(export, out_dir / export.name,
                     crm.reps if export.name == "initial" else None)
        if written is not None:
            written(export)
    write_truth(crm, out_dir)
    return exports
