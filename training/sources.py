"""Where training reads its examples: the warehouse (`WarehouseData`, DuckDB on one machine) or
Spark for CRMs beyond one machine (`training.spark_source.SparkData`).

A source gives each model its labelled examples with their features and time split
(`Prepared`), the conversion model its replay frames (`training.replay.ReplayFrames`), and the
rows each model is judged on (`TestRows`): in the warehouse a frame; on Spark the full test
population, scored where it lies, while the fit sees a sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import duckdb
import numpy as np
import pandas as pd

from core.settings import Settings
from core.timestamps import data_end
from core.warehouse import Warehouse, attribute_types, single_row
from features.labels import (
    Examples,
    calendar_examples,
    creation_examples,
    dropout_examples,
)
from training.dataset import build_dataset
from training.evaluate import outside_training_range
from training.examples import ONE_MOMENT, TimeSplit, time_split
from training.replay import ReplayFrames, replay_frames
from training.specs import SPECS, ModelSpec

Say = Callable[[str], None]
Predict = Callable[[pd.DataFrame], np.ndarray]

JUDGED_COLUMNS = ("lead_id", "as_of", "label", "source", "team", "lead_age_days")
"""What the evaluation reads of every test row besides the scores (groups and age bands)."""


class NotEnoughData(ValueError):
    """Too few positives or negatives to train (the message gives the counts)."""


class TestRows(Protocol):
    """The rows a model is judged on."""

    @property
    def featured(self) -> pd.DataFrame:
        """Test rows with their features, for the SHAP summary and the leakage audit (all of
        them in the warehouse; a stratified sample on Spark)."""

    def labels(self) -> tuple[int, int]:
        """(positives, negatives) of every test row."""

    def score(self, scorers: dict[str, Predict]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """Every test row's `JUDGED_COLUMNS`, in time order, and each scorer's scores of them."""

    def outside(self, train: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
        """Per numeric feature: the share of test rows outside the training rows' range
        (`training.evaluate.outside_training_range`)."""


@dataclass
class LocalTest:
    """Test rows held in memory, with their features."""

    frame: pd.DataFrame

    @property
    def featured(self) -> pd.DataFrame:
        """`TestRows.featured`."""
        return self.frame

    def labels(self) -> tuple[int, int]:
        """`TestRows.labels`."""
        y = self.frame["label"]
        return int(y.sum()), int(len(y) - y.sum())

    def score(self, scorers: dict[str, Predict]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """`TestRows.score`."""
        return self.frame, {name: np.asarray(f(self.frame)) for name, f in scorers.items()}

    def outside(self, train: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
        """`TestRows.outside`."""
        return outside_training_range(train, self.frame, numeric)


@dataclass
class Prepared:
    """Examples with features and split, shared by the models that learn from them, and the
    rows they are judged on (default: the `test` split of `data`)."""

    examples: Examples
    split: TimeSplit
    data: pd.DataFrame
    test: TestRows | None = None

    def judged(self) -> TestRows:
        """The test rows."""
        if self.test is not None:
            return self.test
        return LocalTest(self.data[self.data["split"] == "test"].reset_index(drop=True))


class TrainingData(Protocol):
    """What `training.pipeline.train_models` reads."""

    @property
    def source(self) -> str:
        """Where the examples come from, logged with them (a warehouse path, an export's URI)."""

    @property
    def holder(self) -> str:
        """What holds the data, in words ("warehouse", "export")."""

    def attribute_types(self) -> dict[str, str]:
        """Lead attribute -> numeric | text."""

    def free_text(self, max_share: float) -> list[str]:
        """Text attributes with more distinct values than `max_share` of the leads that have one
        (`training.pipeline.free_text_attributes`)."""

    def has_activities(self) -> bool:
        """Whether there is an activity log at all."""

    def end(self) -> pd.Timestamp:
        """Where the data ends (`core.timestamps.data_end`): training's default `until`."""

    def prepared(self, spec: ModelSpec, settings: Settings, until: pd.Timestamp,
                 say: Say) -> Prepared:
        """The model's examples with their time split and features; NotEnoughData if none."""

    def replay(self, settings: Settings, until: pd.Timestamp, say: Say) -> ReplayFrames:
        """The conversion model's replay frames (`training.replay`)."""

    def conversion_days(self, lead_ids: pd.Series) -> np.ndarray:
        """Days from creation to conversion of these (converted) leads."""

    def run_params(self) -> dict[str, str]:
        """What the training run logs about the source (engine, sample)."""

    def sample_note(self, examples: str) -> str | None:
        """How the examples of this kind (`ModelSpec.examples`) were sampled for the fit, if
        they were (logged on the model's run)."""


FREE_TEXT_MIN_ROWS = 20
"""Fewer filled values than this say nothing about whether a column is free text."""


def free_text_of(text: list[str], counts: list[tuple[int, int]], max_share: float) -> list[str]:
    """The free-text attributes among `text`, from their (distinct values, filled values)."""
    return [a for a, (distinct, filled) in zip(text, counts, strict=True)
            if filled >= FREE_TEXT_MIN_ROWS and distinct > max_share * filled]


def free_text_attributes(con: duckdb.DuckDBPyConnection, max_share: float) -> list[str]:
    """Text lead attributes with more distinct values than `max_share` of the leads that have
    one (notes, descriptions, names): free text, not a category a model can learn from."""
    text = [a for a, kind in attribute_types(con).items() if kind != "numeric"]
    if not text:
        return []
    # one scan of the leads for every text attribute
    columns = ", ".join(f'count(DISTINCT "{a}"), count("{a}")' for a in text)
    row = single_row(con.execute(f"SELECT {columns} FROM leads"))  # noqa: S608 (columns of this warehouse)
    return free_text_of(text, [(row[2 * i], row[2 * i + 1]) for i in range(len(text))],
                        max_share)


def examples_for(kind: str, con: duckdb.DuckDBPyConnection, settings: Settings,
                 until: pd.Timestamp) -> Examples:
    """The labelled snapshots a model of this kind learns from."""
    which = SPECS[kind].examples
    if which == "touches":
        return dropout_examples(con, settings.train, until)
    if which == "snapshots" and settings.train.conversion_examples == "calendar":
        return calendar_examples(con, settings.train, until)
    return creation_examples(con, settings.train, until)


def split_or_refuse(examples: Examples, settings: Settings, until: pd.Timestamp) -> TimeSplit:
    """The time split of `examples`; NotEnoughData when they cannot be cut."""
    try:
        return time_split(examples.frame, settings.train.split_fractions, until)
    except ValueError as err:
        raise NotEnoughData(str(err)) from None


@dataclass
class WarehouseData:
    """Training data from the warehouse: every example, features computed in DuckDB."""

    wh: Warehouse

    @property
    def source(self) -> str:
        """`TrainingData.source`."""
        return str(self.wh.path)

    holder = "warehouse"

    def attribute_types(self) -> dict[str, str]:
        """`TrainingData.attribute_types`."""
        return self.wh.attribute_types()

    def free_text(self, max_share: float) -> list[str]:
        """`TrainingData.free_text`."""
        return free_text_attributes(self.wh.con, max_share)

    def has_activities(self) -> bool:
        """`TrainingData.has_activities`."""
        return bool(single_row(self.wh.con.execute("SELECT count(*) > 0 FROM activities"))[0])

    def end(self) -> pd.Timestamp:
        """`TrainingData.end`."""
        return data_end(self.wh.con)

    def prepared(self, spec: ModelSpec, settings: Settings, until: pd.Timestamp,
                 say: Say) -> Prepared:
        """`TrainingData.prepared`."""
        con = self.wh.con
        examples = examples_for(spec.kind, con, settings, until)
        if examples.frame.empty:
            left_out = "; ".join(f"{why}: {n:,}" for why, n in examples.excluded.items() if n)
            moments = single_row(con.execute(
                "SELECT count(DISTINCT created_at), count(*), min(created_at) FROM leads"))
            same = (f"; all {moments[1]:,} leads were created at {moments[2]} ({ONE_MOMENT})"
                    if moments[0] == 1 and moments[1] > 1 else "")
            raise NotEnoughData(f"no usable {spec.kind} examples before {until}"
                                + (f" (left out: {left_out})" if left_out else "") + same)
        split = split_or_refuse(examples, settings, until)
        say(f"[{spec.kind}] {len(examples.frame):,} examples; computing features")
        data = build_dataset(con, examples, split, settings.engagement,
                             list(self.attribute_types()))
        return Prepared(examples, split, data)

    def replay(self, settings: Settings, until: pd.Timestamp, say: Say) -> ReplayFrames:
        """`TrainingData.replay`."""
        say("[conversion] snapshots and open books; computing features")
        return replay_frames(self.wh.con, settings, until, list(self.attribute_types()))

    def run_params(self) -> dict[str, str]:
        """`TrainingData.run_params`."""
        return {"engine": "duckdb"}

    def sample_note(self, examples: str) -> str | None:
        """`TrainingData.sample_note`: every example is fitted."""
        return None

    def conversion_days(self, lead_ids: pd.Series) -> np.ndarray:
        """`TrainingData.conversion_days`."""
        won = pd.DataFrame({"lead_id": lead_ids})
        self.wh.con.register("won_ids", won)
        try:
            return np.asarray(self.wh.con.execute("""
                SELECT (epoch(l.converted_at) - epoch(l.created_at)) / 86400.0 AS d
                FROM leads l JOIN won_ids w USING (lead_id)
            """).fetchnumpy()["d"], dtype=float)
        finally:
            self.wh.con.unregister("won_ids")
