from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_frames
from features.settings import IngestConfig, Runtime, Settings, SimulateConfig
from features.simulate import SimulatedCRM, simulate_crm
from features.warehouse import Warehouse


def load_crm(home: Path, crm: SimulatedCRM | dict[str, pd.DataFrame]) -> Runtime:
    """A runtime whose home holds a real DuckDB warehouse with `crm` ingested."""
    raws = crm if isinstance(crm, dict) else {
        "reps": crm.reps, "leads": crm.leads, "activities": crm.activities}
    home.mkdir(parents=True, exist_ok=True)
    with Warehouse(home / "warehouse.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), home / "quarantine", raws)
    return Runtime(settings=Settings(), home=home, config_path=None)


@pytest.fixture(scope="session")
def crm_loader():
    """`load_crm(home, crm) -> Runtime`: ingest a CRM into a real warehouse under `home`."""
    return load_crm


@pytest.fixture(scope="session")
def mid_crm() -> SimulatedCRM:
    """A mid-size simulated CRM: enough leads for stable out-of-time metrics."""
    return simulate_crm(SimulateConfig(leads=30_000, reps=40, months=18, seed=11))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mid_crm):
    """All three models trained once on the mid-size CRM, in a real MLflow SQLite store."""
    from training.pipeline import train_models

    runtime = load_crm(tmp_path_factory.mktemp("trained-home"), mid_crm)
    report = train_models(runtime, say=lambda _m: None)
    return runtime, report
