"""The replay sees nothing after its origin: rows planted after it (new activities, a later
conversion) change neither what the replayed model is trained or validated on, nor the
features it is judged on, nor its scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from core.settings import Settings, SimulateConfig, TrainConfig
from core.timestamps import data_end
from core.warehouse import Warehouse
from features.engagement import feature_columns
from leadlens.simulator.crm import simulate_crm
from training.fit import select_and_refit
from training.replay import replay_frames

SETTINGS = Settings(train=TrainConfig(search_trials=1))


def _frames(runtime):
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        until = data_end(wh.con)
        return replay_frames(wh.con, SETTINGS, until, list(wh.attribute_types())), until


@pytest.mark.slow
def test_rows_after_the_replay_origin_change_nothing_it_learns_from(tmp_path, crm_loader):
    crm = simulate_crm(SimulateConfig(leads=3000, reps=10, months=12, seed=21))
    raws = {"reps": crm.reps, "leads": crm.leads, "activities": crm.activities}
    clean, until = _frames(crm_loader(tmp_path / "clean", raws))
    origin = clean.origins.replay

    # plant the future: activities and conversions between the origin and the data's end
    leads = crm.leads.copy()
    created = pd.to_datetime(leads["created_at"], utc=True).dt.tz_localize(None)
    won = pd.to_datetime(leads["converted_at"], utc=True).dt.tz_localize(None)
    lost = pd.to_datetime(leads["closed_lost_at"], utc=True).dt.tz_localize(None)
    open_then = (created < origin) & won.isna() & lost.isna()
    picked = leads.index[open_then][:40]
    assert len(picked) == 40
    later = origin + pd.Timedelta(days=5)
    assert later < until
    leads.loc[picked, "converted_at"] = later.isoformat()
    acts = pd.concat([crm.activities, pd.DataFrame({
        "activity_id": [f"FUT{i}" for i in range(len(picked))],
        "lead_id": leads.loc[picked, "lead_id"].to_numpy(),
        "rep_id": leads.loc[picked, "owner_rep_id"].to_numpy(),
        "occurred_at": (origin + pd.Timedelta(days=3)).isoformat(),
        "type": "meeting", "direction": "outbound", "outcome": "held", "amount": np.nan})],
        ignore_index=True)
    planted, until2 = _frames(crm_loader(tmp_path / "planted",
                                         {"reps": crm.reps, "leads": leads, "activities": acts}))
    assert until2 == until and planted.origins == clean.origins

    a, b = clean.sets("replay"), planted.sets("replay")
    for part in ("train", "valid", "refit"):
        assert_frame_equal(getattr(a, part), getattr(b, part), check_dtype=False)
    cols = feature_columns(SETTINGS.engagement, [])
    assert_frame_equal(clean.replay_book[cols], planted.replay_book[cols])
    # ... while what the replay is judged against did change (the planted conversions)
    assert planted.replay_book["label"].sum() > clean.replay_book["label"].sum()

    features = [c for c in cols if c != "source"] + ["source"]
    fitted = [select_and_refit("conversion", s, features, ["source"], SETTINGS.train)[0]
              for s in (a, b)]
    book = clean.replay_book
    assert np.array_equal(fitted[0].predict(book), fitted[1].predict(book))
