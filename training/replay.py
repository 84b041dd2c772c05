"""The replay: pretend today was an earlier day B, train on what was known then, score every lead
open at B, and compare with what happened within the horizon.

The conversion model (calendar examples) is fitted and judged this way. With `U` the data's end
and `H` the horizon:
- a *fit at origin O* judges candidate settings on the open book at `O - H` (the validation
  replay), using only snapshots whose horizon closed by then; the best keeps its rounds and its
  calibration is fitted on that book; it is then refitted on every snapshot whose horizon closed
  by `O`;
- the *replay* is a fit at `B = U - H`, scored on the open book at `B`, labelled by what happened
  up to `U`: its figures are the model's test figures, and the gates and the comparison with the
  baselines use them;
- the *production* model is a fit at `U`.
Nothing after an origin reaches a fit at that origin: a test plants a future row to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from core.settings import Settings
from features.labels import (
    cap_per_lead,
    open_book,
    open_leads_at,
    snapshot_dates,
    tidy_examples,
)
from training.dataset import with_features
from training.fit import ReplaySets

if TYPE_CHECKING:
    from training.sources import TestRows


@dataclass(frozen=True)
class Origins:
    """The three moments of a replay: validation `U - 2H`, replay `U - H`, and `U`."""

    validation: pd.Timestamp
    replay: pd.Timestamp
    until: pd.Timestamp

    @classmethod
    def of(cls, until: pd.Timestamp, horizon_days: int) -> Origins:
        """The origins for data that ends at `until`."""
        h = pd.Timedelta(days=horizon_days)
        return cls(until - 2 * h, until - h, until)


@dataclass
class ReplayFrames:
    """Every labelled snapshot up to `until` and the two open books, with their features."""

    origins: Origins
    snapshots: pd.DataFrame
    validation_book: pd.DataFrame
    replay_book: pd.DataFrame
    cap: int
    test: TestRows | None = None
    """The rows the replay is judged on, when not `replay_book` itself (on Spark: the whole
    book, scored where it lies, while `replay_book` is the sample the production fit sees)."""
    _closed: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict, repr=False)

    def sets(self, at: str) -> ReplaySets:
        """What a fit at `at` ("replay": origin `U - H`, or "until": origin `U`) may see."""
        o = self.origins
        if at == "replay":
            return ReplaySets(self._closed_by(o.validation), self.validation_book,
                              self._closed_by(o.replay))
        if at == "until":
            return ReplaySets(self._closed_by(o.replay), self.replay_book,
                              self._closed_by(o.until))
        raise ValueError(f"unknown origin {at!r}: 'replay' or 'until'")

    def _closed_by(self, origin: pd.Timestamp) -> pd.DataFrame:
        """Snapshots whose whole horizon lies before `origin`, capped per lead within them (the
        cap never looks at a lead's life after the origin); computed once per origin (the
        replay's refit set is the production fit's training set)."""
        if origin not in self._closed:
            part = self.snapshots[self.snapshots["horizon_end"] <= origin]
            self._closed[origin] = cap_per_lead(part, self.cap).reset_index(drop=True)
        return self._closed[origin]


def replay_frames(con: duckdb.DuckDBPyConnection, settings: Settings, until: pd.Timestamp,
                  attributes: list[str],
                  progress: Callable[[int], None] | None = None) -> ReplayFrames:
    """The snapshots and the open books the replay and the production fit need, with features."""
    cfg = settings.train
    origins = Origins.of(until, cfg.horizon_days)
    snaps = open_leads_at(con, cfg, until, snapshot_dates(con, cfg, until))
    books = [open_book(con, cfg, origin).frame
             for origin in (origins.validation, origins.replay)]

    def featured(frame: pd.DataFrame) -> pd.DataFrame:
        return with_features(con, frame, settings.engagement, attributes, progress)

    return ReplayFrames(origins, featured(tidy_examples(snaps)), featured(books[0]),
                        featured(books[1]), cfg.max_snapshots_per_lead)
