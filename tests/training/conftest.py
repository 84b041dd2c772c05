from __future__ import annotations

import pytest

from core.settings import SimulateConfig
from leadlens.simulator.crm import SimulatedCRM, simulate_crm
from tests.conftest import load_crm


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
