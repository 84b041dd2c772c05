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
import pandas as pd

from core.settings import TrainConfig

LABEL_SETTINGS = ("horizon_days", "snapshot_ages_days", "dropout_touches", "dropout_window_days")
"""The `train` settings that define what a label means; every model bundle records them."""


class LabelMismatch(LookupError):
    """A model learned its labels under other settings than the config now in force."""


def label_settings(cfg: TrainConfig) -> dict[str, int | list[int]]:
    """What a model's labels meant when it was trained (stored in the bundle's meta)."""
    out: dict[str, int | list[int]] = {}
    for key in LABEL_SETTINGS:
        value = getattr(cfg, key)
        out[key] = list(value) if isinstance(value, tuple) else int(value)
    return out


def check_label_settings(meta: dict, cfg: TrainConfig, name: str) -> dict[str, int | list[int]]:
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


_KNOWN_LEADS = """
    SELECT lead_id, created_at,
           CASE WHEN converted_at < $until THEN converted_at END AS won_at,
           CASE WHEN closed_lost_at < $until THEN closed_lost_at END AS lost_at
    FROM leads WHERE created_at < $until
"""


def conversion_examples(con: duckdb.DuckDBPyConnection, cfg: TrainConfig, until: pd.Timestamp,
                        ages_days: tuple[int, ...] | None = None) -> Examples:
    """Each lead at each snapshot age while still open; label = converted within the horizon.

    `detail` holds the snapshot age in days.
    """
    ages = ages_days if ages_days is not None else cfg.snapshot_ages_days
    values = ", ".join(f"({int(a)})" for a in ages)
    frame = con.execute(f"""
        WITH known AS ({_KNOWN_LEADS}),
        snaps AS (
            SELECT k.*, a.age, k.created_at + a.age * INTERVAL 1 DAY AS as_of,
                   k.created_at + a.age * INTERVAL 1 DAY + {cfg.horizon_days} * INTERVAL 1 DAY
                       AS horizon_end
            FROM known k CROSS JOIN (VALUES {values}) a(age)
        ),
        open_snaps AS (
            SELECT * FROM snaps
            WHERE as_of < $until
              AND (won_at IS NULL OR won_at >= as_of) AND (lost_at IS NULL OR lost_at >= as_of)
        )
        SELECT lead_id, as_of, created_at, age AS detail,
               CASE WHEN won_at < horizon_end THEN 1 ELSE 0 END AS label, horizon_end
        FROM open_snaps
        ORDER BY as_of, lead_id
    """, {"until": until.to_pydatetime()}).df()  # noqa: S608 (ages and horizon: ints; until bound)
    censored = frame["horizon_end"] > until
    return Examples(_tidy(frame[~censored]), {"horizon runs past the data": int(censored.sum())})


def dropout_examples(con: duckdb.DuckDBPyConnection, cfg: TrainConfig,
                     until: pd.Timestamp) -> Examples:
    """Outbound touches 1..N on an open lead, as of one second after the touch; label = 1 when
    the rep made no further outbound touch within the window while the lead stayed open.

    A lead resolved inside the window before any further touch leaves the example undefined; it
    is left out and counted. `detail` holds the touch number.
    """
    frame = con.execute(f"""
        WITH known AS ({_KNOWN_LEADS}),
        touches AS (
            SELECT lead_id, occurred_at,
                   row_number() OVER w AS touch_number,
                   lead(occurred_at) OVER w AS next_touch_at
            FROM activities
            WHERE direction = 'outbound' AND occurred_at < $until
            WINDOW w AS (PARTITION BY lead_id ORDER BY occurred_at, activity_id)
        ),
        cands AS (
            SELECT t.lead_id, k.created_at, t.touch_number,
                   t.occurred_at + INTERVAL 1 SECOND AS as_of,
                   t.occurred_at + {cfg.dropout_window_days} * INTERVAL 1 DAY AS window_end,
                   t.next_touch_at, least(k.won_at, k.lost_at) AS resolved_at
            FROM touches t JOIN known k USING (lead_id)
            WHERE t.touch_number <= {cfg.dropout_touches}
              AND (k.won_at IS NULL OR k.won_at > t.occurred_at)
              AND (k.lost_at IS NULL OR k.lost_at > t.occurred_at)
        )
        SELECT lead_id, as_of, created_at, touch_number AS detail,
               CASE WHEN next_touch_at < window_end THEN 0
                    WHEN resolved_at < window_end THEN NULL
                    ELSE 1 END AS label,
               window_end AS horizon_end
        FROM cands
        ORDER BY as_of, lead_id
    """, {"until": until.to_pydatetime()}).df()  # noqa: S608 (config ints; until bound)
    closed = frame["label"].isna()
    censored = ~closed & (frame["horizon_end"] > until)
    keep = ~closed & ~censored
    return Examples(_tidy(frame[keep]), {
        "lead resolved inside the window": int(closed.sum()),
        "window runs past the data": int(censored.sum()),
    })


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    out["label"] = out["label"].astype("int8")
    out["detail"] = out["detail"].astype("int64")
    for c in ("as_of", "created_at", "horizon_end"):
        out[c] = pd.to_datetime(out[c]).astype("datetime64[us]")
    return out


