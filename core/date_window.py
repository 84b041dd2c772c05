"""The window of believable CRM dates: ingestion quarantines a row outside it, the service
answers 400 for a request timestamp outside it (`ingest.earliest_date`, `ingest.max_days_ahead`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

UTC = datetime.UTC


@dataclass(frozen=True)
class DateWindow:
    """Dates from `earliest` (naive UTC) to `days_ahead` days after now are believed."""

    earliest: datetime.datetime = datetime.datetime(1990, 1, 1)
    days_ahead: float = 1.0

    def latest(self, now: datetime.datetime | None = None) -> datetime.datetime:
        """The latest believable moment (naive UTC) at `now` (default: the clock)."""
        now = now or datetime.datetime.now(UTC).replace(tzinfo=None)
        return now + datetime.timedelta(days=self.days_ahead)

    def problem(self, value: datetime.datetime) -> str | None:
        """Why `value` (naive UTC, or aware) is not believable, or None when it is."""
        naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        if naive < self.earliest:
            return f"before {self.earliest:%Y-%m-%d}: not a plausible CRM date"
        if naive > self.latest():
            return (f"more than {self.days_ahead:g} day(s) in the future: not a plausible CRM "
                    "date")
        return None
