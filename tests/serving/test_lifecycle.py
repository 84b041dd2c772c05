"""The service reads its configuration when a worker starts, not when it is imported, and lets
go of what it holds when it stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from starlette.testclient import TestClient


def test_importing_the_service_reads_no_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADLENS_", "BENTOML_", "MLFLOW_"))}
    env["LEADLENS_CONFIG"] = str(tmp_path / "no-such-config.yaml")  # read it and fail
    done = subprocess.run([sys.executable, "-c", "import serving.service"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no home, no store created by an import


def test_bentoml_overrides_carry_workers_and_concurrency(service_module, served_home):
    from core.settings import ServeConfig, Settings

    runtime = served_home[0]
    rt = type(runtime)(Settings(serve=ServeConfig(workers=3, max_concurrency=17)),
                       runtime.home, None)
    svc = service_module.bentoml_overrides(rt)["services"][service_module.SERVICE_NAME]
    assert svc["workers"] == 3 and svc["traffic"]["max_concurrency"] == 17


def test_shutdown_stops_the_poller_and_closes_the_warehouse(client, service_module):
    """A second app instance started and stopped beside the session's: on shutdown its model
    thread ends and its warehouse connection is closed."""
    live = service_module._LIVE
    serving_state = live["state"]
    try:
        with TestClient(service_module.LeadLens.to_asgi()) as c:
            deadline = time.time() + 120
            while c.get("/readyz").status_code != 200:
                assert time.time() < deadline, "second instance never became ready"
                time.sleep(0.2)
            state = live["state"]
            assert state is not serving_state
            source = state.current.source
            assert source._wh._con is not None
        assert state._stop.is_set()
        assert source._wh._con is None
        threads = [t for t in __import__("threading").enumerate() if t.name == "leadlens-models"]
        assert len(threads) == 1  # only the session's own poller is left
    finally:
        live["state"] = serving_state
