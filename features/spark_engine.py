"""Engagement features on Apache Spark, for CRMs larger than one machine.

The features are the warehouse's own query (`features.engagement.feature_sql`) generated for
the Spark SQL dialect: one definition, two engines. The query reads the session's `leads` and
`activities` views (contract tables checked as `leadlens ingest` checks them:
`ingest.spark_tables`) and a set of (lead_id, as_of) pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from core.settings import EngagementConfig
from features.catalog import engagement_features
from features.engagement import SPARK, feature_columns, feature_sql, open_leads_condition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def open_pairs(spark: SparkSession, as_of: pd.Timestamp, which: str = "open") -> DataFrame:
    """(pair_id, lead_id, as_of) for the leads created at or before `as_of` (`open`: not yet
    converted or lost then), by the warehouse's own condition (`select_pairs`)."""
    if which not in ("open", "all"):
        raise ValueError(f"--leads must be 'open' or 'all', not {which!r}")
    literal = SPARK.timestamp(as_of)
    cond = open_leads_condition(literal, which)
    return spark.sql(f"SELECT monotonically_increasing_id() AS pair_id, lead_id, "  # noqa: S608 (a formatted timestamp)
                     f"{literal} AS as_of FROM leads WHERE {cond}")


def spark_features(spark: SparkSession, attributes: dict[str, str], pairs: DataFrame,
                   cfg: EngagementConfig, keep_pair_id: bool = False) -> DataFrame:
    """The features of every (lead_id, as_of) of `pairs` (with a unique `pair_id`): lead_id,
    as_of, then the catalog's features and the lead attributes (`attributes`: name -> numeric
    or text), typed as the warehouse's path types them (numeric as double, the rest as text);
    with `keep_pair_id`, `pair_id` first.

    The pairs are materialised first: their ids are read in several places of the query and
    again to join the leads back, and an id made by `monotonically_increasing_id` after a
    shuffle is not the same when recomputed."""
    from pyspark.sql import functions as F

    pairs = pairs.select("pair_id", "lead_id", "as_of").localCheckpoint(eager=True)
    pairs.createOrReplaceTempView("pair_input")
    names = list(attributes)
    computed = spark.sql(feature_sql(cfg, names, SPARK, ordered=False))
    numeric = {f.name for f in engagement_features(cfg) if f.kind == "numeric"}
    numeric |= {a for a, k in attributes.items() if k == "numeric"}
    out = computed.join(pairs, "pair_id")
    ids = ["pair_id"] if keep_pair_id else []
    return out.select(*ids, "lead_id", "as_of", *[
        F.col(f"`{c}`").cast("double" if c in numeric else "string").alias(c)
        for c in feature_columns(cfg, names)])
