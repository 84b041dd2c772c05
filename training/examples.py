"""The time split of training examples: leads by creation time, one split per lead."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.names import VersionTag

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TimeSplit:
    """Leads split by creation time: train before `valid_from`, validation before `test_from`,
    test from `test_from` on. Each lead sits in one split only."""

    valid_from: pd.Timestamp
    test_from: pd.Timestamp
    until: pd.Timestamp

    def assign(self, examples: pd.DataFrame) -> pd.Series:
        """Split name per example row, by its lead's creation time."""
        created = examples["created_at"]
        split = pd.Series("test", index=examples.index, dtype="object")
        split[created < self.test_from] = "validation"
        split[created < self.valid_from] = "train"
        return split

    def as_params(self) -> dict[str, str]:
        """The split's boundaries as version tags and run parameters (text)."""
        return {VersionTag.VALID_FROM: str(self.valid_from),
                VersionTag.TEST_FROM: str(self.test_from), VersionTag.UNTIL: str(self.until)}


ONE_MOMENT = ("an export dated with one `created_at.value` cannot be split by time; "
              "`created_at.spread` dates rows in file order")


def time_split(examples: pd.DataFrame, fractions: tuple[float, float, float],
               until: pd.Timestamp) -> TimeSplit:
    """Cut the leads (not the rows) at creation-time quantiles."""
    created = examples.drop_duplicates("lead_id")["created_at"].sort_values()
    if created.empty:
        raise ValueError("no examples to split")
    n = len(created)
    valid_from = created.iloc[min(n - 1, int(n * fractions[0]))]
    test_from = created.iloc[min(n - 1, int(n * (fractions[0] + fractions[1])))]
    if not created.iloc[0] < valid_from < test_from:
        first, last = created.iloc[0], created.iloc[-1]
        raise ValueError(
            f"the {n:,} leads' creation times ({first} to {last}) cannot be cut into train, "
            f"validation and test periods at {fractions}: too many leads share one creation "
            f"time ({ONE_MOMENT})")
    return TimeSplit(pd.Timestamp(valid_from), pd.Timestamp(test_from), until)
