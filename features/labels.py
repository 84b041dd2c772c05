"""Labelled examples: (lead, as_of) snapshots with labels from after as_of.

Shared by training (what the models learn from) and rep judgement (what a rep is measured on),
so a dropout means the same thing in both.

Every example carries `horizon_end`, the end of the span its label looks at. Only examples whose
whole horizon lies before `until` are used: a lead still open when its horizon runs past the data
is censored, not negative. Keeping the early-resolved ones near the data's end as well would
over-represent quick wins there, so selection looks at the horizon only, never at the outcome.
Outcomes at or after `until` are treated as unknown, so `--until` replays what training would
have seen on that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.settings import TrainConfig
from core.warehouse import single_row
from features.engagement import DUCKDB, Dialect

LABEL_SETTINGS = ("horizon_days", "conversion_examples", "dropout_touches",
                  "dropout_window_days")
"""The `train` settings that define what a label means; every model bundle records them."""


class LabelMismatch(LookupError):
    """A model learned its labels under other settings than the config now in force."""


def label_settings(cfg: TrainConfig) -> dict[str, int | str]:
    """What a model's labels meant when it was trained (stored in the bundle's meta)."""
    return {key: getattr(cfg, key) for key in LABEL_SETTINGS}


def check_label_settings(meta: dict, cfg: TrainConfig, name: str) -> dict[str, int | str]:
    """The label settings a bundle was trained with; LabelMismatch when `cfg` says otherwise
    (a model's expectations are only comparable with outcomes counted the same way)."""
    stored = meta.get("labels")
    if stored is None:
        raise LabelMismatch(f"{name} v{meta.get('version', '?')} does not record its label "
                            "settings (trained by an older LeadLens): retrain it")
    now = label_settings(cfg)
    wrong = [f"train.{k} is {now[k]} in the config but {stored.get(k)} in the model"
             for k in LABEL_SETTINGS if stored.get(k) != now[k]]
    if wrong:
        raise LabelMismatch(f"{name} v{meta.get('version', '?')} learned under other label "
                            f"settings: {'; '.join(wrong)}. Retrain (`leadlens train`) or use "
                            "the config it was trained with")
    return stored


@dataclass(frozen=True)
class Examples:
    """Labelled snapshots plus the count of candidate snapshots left out, by reason."""

    frame: pd.DataFrame  # lead_id, as_of, created_at, detail, label, horizon_end
    excluded: dict[str, int]


def _known_sql(until: str) -> str:
    """Leads created before `until` (an SQL literal) with the outcomes known by then."""
    return f"""
    SELECT lead_id, created_at,
           CASE WHEN converted_at < {until} THEN converted_at END AS won_at,
           CASE WHEN closed_lost_at < {until} THEN closed_lost_at END AS lost_at
    FROM leads WHERE created_at < {until}
    """  # noqa: S608 (a timestamp literal)


def calendar_dates(first: pd.Timestamp | None, cfg: TrainConfig,
                   until: pd.Timestamp) -> list[pd.Timestamp]:
    """Calendar snapshot dates: every `snapshot_every_days`, counted back from the last date
    whose whole horizon lies before `until`, down to `first` (the first lead's creation)."""
    if first is None:
        return []
    last = until - pd.Timedelta(days=cfg.horizon_days)
    step = pd.Timedelta(days=cfg.snapshot_every_days)
    dates = []
    d = last
    while d > pd.Timestamp(first):
        dates.append(d)
        d -= step
    return sorted(dates)


def snapshot_dates(con: duckdb.DuckDBPyConnection, cfg: TrainConfig,
                   until: pd.Timestamp) -> list[pd.Timestamp]:
    """`calendar_dates` of the warehouse's leads created before `until`."""
    first = single_row(con.execute("SELECT min(created_at) FROM leads WHERE created_at < $u",
                                   {"u": until.to_pydatetime()}))[0]
    return calendar_dates(None if first is None else pd.Timestamp(first), cfg, until)


EXAMPLE_COLUMNS = ["lead_id", "as_of", "created_at", "detail", "label", "horizon_end"]


def open_leads_sql(cfg: TrainConfig, until: pd.Timestamp, d: Dialect = DUCKDB,
                   dates: str = "snapshot_dates") -> str:
    """Every lead open at each date of the table `dates` (one column, `as_of`; created before it,
    not resolved before it), labelled 1 when it converted within the horizon after the date;
    outcomes at or after `until` are unknown. `detail` is the lead's age in whole days. One
    definition for the warehouse and Spark (`d`)."""
    h = int(cfg.horizon_days)
    return f"""
        WITH known AS ({_known_sql(d.timestamp(until))})
        SELECT k.lead_id, s.as_of, k.created_at,
               CAST(floor((floor({d.epoch('s.as_of')}) - floor({d.epoch('k.created_at')}))
                          / 86400) AS BIGINT) AS detail,
               CASE WHEN k.won_at < s.as_of + INTERVAL {h} DAY THEN 1 ELSE 0 END AS label,
               s.as_of + INTERVAL {h} DAY AS horizon_end
        FROM known k JOIN {dates} s ON k.created_at < s.as_of
        WHERE (k.won_at IS NULL OR k.won_at >= s.as_of)
          AND (k.lost_at IS NULL OR k.lost_at >= s.as_of)
    """  # noqa: S608 (a config int, the dialect's fixed expressions, a table name of ours)


def creation_sql(cfg: TrainConfig, until: pd.Timestamp, d: Dialect = DUCKDB) -> str:
    """One example per lead, as of its creation; label = converted within the horizon
    (`detail` 0); the horizon may run past `until` (callers censor)."""
    h = int(cfg.horizon_days)
    return f"""
        WITH known AS ({_known_sql(d.timestamp(until))})
        SELECT lead_id, created_at AS as_of, created_at, CAST(0 AS BIGINT) AS detail,
               CASE WHEN won_at < created_at + INTERVAL {h} DAY THEN 1 ELSE 0 END AS label,
               created_at + INTERVAL {h} DAY AS horizon_end
        FROM known
        WHERE (won_at IS NULL OR won_at >= created_at)
          AND (lost_at IS NULL OR lost_at >= created_at)
    """  # noqa: S608 (a config int, a timestamp literal)


def dropout_sql(cfg: TrainConfig, until: pd.Timestamp, d: Dialect = DUCKDB) -> str:
    """Outbound touches 1..N on an open lead, as of one second after the touch; label = 1 when
    the rep made no further outbound touch within the window while the lead stayed open, NULL
    when the lead was resolved inside the window first; the window may run past `until`
    (callers leave those out: `dropout_from`). `detail` is the touch number."""
    u = d.timestamp(until)
    return f"""
        WITH known AS ({_known_sql(u)}),
        touches AS (
            SELECT lead_id, occurred_at,
                   row_number() OVER w AS touch_number,
                   lead(occurred_at) OVER w AS next_touch_at
            FROM activities
            WHERE direction = 'outbound' AND occurred_at < {u}
            WINDOW w AS (PARTITION BY lead_id ORDER BY occurred_at, activity_id)
        ),
        cands AS (
            SELECT t.lead_id, k.created_at, t.touch_number,
                   t.occurred_at + INTERVAL 1 SECOND AS as_of,
                   t.occurred_at + INTERVAL {int(cfg.dropout_window_days)} DAY AS window_end,
                   t.next_touch_at, least(k.won_at, k.lost_at) AS resolved_at
            FROM touches t JOIN known k ON k.lead_id = t.lead_id
            WHERE t.touch_number <= {int(cfg.dropout_touches)}
              AND (k.won_at IS NULL OR k.won_at > t.occurred_at)
              AND (k.lost_at IS NULL OR k.lost_at > t.occurred_at)
        )
        SELECT lead_id, as_of, created_at, CAST(touch_number AS BIGINT) AS detail,
               CASE WHEN next_touch_at < window_end THEN 0
                    WHEN resolved_at < window_end THEN NULL
                    ELSE 1 END AS label,
               window_end AS horizon_end
        FROM cands
    """  # noqa: S608 (config ints, a timestamp literal)


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """An example query in the warehouse, in time order."""
    return con.execute(f"SELECT * FROM ({sql}) ORDER BY as_of, lead_id").df()  # noqa: S608 (built here)


def open_leads_at(con: duckdb.DuckDBPyConnection, cfg: TrainConfig, until: pd.Timestamp,
                  dates: list[pd.Timestamp]) -> pd.DataFrame:
    """`open_leads_sql` in the warehouse for `dates`; rows whose horizon runs past `until` are
    kept here (callers censor)."""
    if not dates:
        return pd.DataFrame(columns=EXAMPLE_COLUMNS)
    snaps = pd.DataFrame({"as_of": pd.to_datetime(dates).astype("datetime64[us]")})
    con.register("snapshot_dates", snaps)
    try:
        return _run(con, open_leads_sql(cfg, until))
    finally:
        con.unregister("snapshot_dates")


def cap_per_lead(frame: pd.DataFrame, cap: int) -> pd.DataFrame:
    """At most `cap` snapshots per lead, evenly spaced over the ones it has (in time order)."""
    if frame.empty:
        return frame
    ordered = frame.sort_values(["lead_id", "as_of"], kind="stable")
    i = ordered.groupby("lead_id").cumcount().to_numpy()
    n = ordered.groupby("lead_id")["as_of"].transform("size").to_numpy()
    slot = np.floor(i * cap / n)
    prev = np.floor((i - 1) * cap / n)
    keep = (n <= cap) | (i == 0) | (slot > prev)
    return ordered[keep].sort_values(["as_of", "lead_id"], kind="stable")


def calendar_from(frame: pd.DataFrame, cfg: TrainConfig) -> Examples:
    """Calendar examples from `open_leads_sql`'s rows: capped per lead (a lead's rows must all
    be there: the cap spaces them over the lead's whole open life)."""
    capped = cap_per_lead(frame, cfg.max_snapshots_per_lead)
    return Examples(tidy_examples(capped), {
        "beyond the per-lead cap": len(frame) - len(capped)})


def calendar_examples(con: duckdb.DuckDBPyConnection, cfg: TrainConfig,
                      until: pd.Timestamp) -> Examples:
    """Conversion examples from the population that gets scored: every lead open on each
    calendar snapshot date whatever its age, whole horizon before `until`, capped per lead."""
    return calendar_from(open_leads_at(con, cfg, until, snapshot_dates(con, cfg, until)), cfg)


def open_book(con: duckdb.DuckDBPyConnection, cfg: TrainConfig, origin: pd.Timestamp) -> Examples:
    """Every lead open at `origin`, as of `origin`, labelled by what happened within the horizon
    after it (the replay's test population: outcomes up to `origin + horizon` are read)."""
    end = origin + pd.Timedelta(days=cfg.horizon_days)
    return Examples(tidy_examples(open_leads_at(con, cfg, end, [origin])), {})


def creation_from(frame: pd.DataFrame, until: pd.Timestamp) -> Examples:
    """Creation examples from `creation_sql`'s rows: those whose horizon runs past `until`
    left out and counted."""
    censored = frame["horizon_end"] > until
    return Examples(tidy_examples(frame[~censored]),
                    {"horizon runs past the data": int(censored.sum())})


def creation_examples(con: duckdb.DuckDBPyConnection, cfg: TrainConfig,
                      until: pd.Timestamp) -> Examples:
    """One example per lead, as of its creation; label = converted within the horizon.

    `detail` holds the snapshot age in days (0).
    """
    return creation_from(_run(con, creation_sql(cfg, until)), until)


def dropout_from(frame: pd.DataFrame, until: pd.Timestamp) -> Examples:
    """Dropout examples from `dropout_sql`'s rows: a lead resolved inside the window before any
    further touch leaves the example undefined, a window running past `until` censors it; both
    left out and counted."""
    closed = frame["label"].isna()
    censored = ~closed & (frame["horizon_end"] > until)
    keep = ~closed & ~censored
    return Examples(tidy_examples(frame[keep]), {
        "lead resolved inside the window": int(closed.sum()),
        "window runs past the data": int(censored.sum()),
    })


def dropout_examples(con: duckdb.DuckDBPyConnection, cfg: TrainConfig,
                     until: pd.Timestamp) -> Examples:
    """Outbound touches 1..N on an open lead (`dropout_sql`), the undefined and censored ones
    left out and counted (`dropout_from`)."""
    return dropout_from(_run(con, dropout_sql(cfg, until)), until)


def tidy_examples(frame: pd.DataFrame) -> pd.DataFrame:
    """Examples as every producer returns them: a fresh index, int8 labels, int64 detail,
    microsecond timestamps."""
    out = frame.reset_index(drop=True)
    out["label"] = out["label"].astype("int8")
    out["detail"] = out["detail"].astype("int64")
    for c in ("as_of", "created_at", "horizon_end"):
        out[c] = pd.to_datetime(out[c]).astype("datetime64[us]")
    return out


