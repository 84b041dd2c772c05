from __future__ import annotations

import pytest

from core.settings import IngestConfig, Runtime, Settings, SimulateConfig
from core.warehouse import Warehouse
from ingest.load import ingest_frames
from leadlens.simulator.crm import simulate_crm

KEY = "test-key-" + "x" * 24


@pytest.fixture(scope="session")
def served_home(tmp_path_factory):
    """A home with a warehouse and promoted conversion and dropout models."""
    import os

    from training.pipeline import train_models
    from training.promote import promote

    home = tmp_path_factory.mktemp("serve-home")
    crm = simulate_crm(SimulateConfig(leads=8000, reps=16, months=12, seed=4,
                                      weak_rep_share=0.25))  # some reps to flag
    with Warehouse(home / "warehouse.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), home / "q",
                      {"reps": crm.reps, "leads": crm.leads, "activities": crm.activities})
    runtime = Runtime(Settings(), home, None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    report = train_models(runtime, say=lambda _m: None)
    for kind in ("conversion", "dropout"):
        assert promote(runtime, kind).promoted
    return runtime, report, crm


@pytest.fixture(scope="session")
def service_module(served_home):
    """serving.service imported with this home and a test key (it reads both at import)."""
    import os

    runtime, _, _ = served_home
    os.environ["LEADLENS_HOME"] = str(runtime.home)
    os.environ["LEADLENS_API_KEYS"] = KEY
    os.environ["BENTOML_HOME"] = str(runtime.home / "bentoml")
    os.environ.pop("LEADLENS_CONFIG", None)
    import serving.service as module

    return module


@pytest.fixture(scope="session")
def client(service_module):
    """The real BentoML app in-process, with models loaded."""
    import time

    from starlette.testclient import TestClient

    app = service_module.LeadLens.to_asgi()
    with TestClient(app, raise_server_exceptions=False) as c:
        deadline = time.time() + 120
        while c.get("/readyz").status_code != 200:
            assert time.time() < deadline, "service never became ready"
            time.sleep(0.2)
        yield c


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {KEY}"}
