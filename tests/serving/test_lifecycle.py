"""The service reads its configuration when a worker starts, not when it is imported, and lets
go of what it holds when it stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def test_importing_the_service_reads_no_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADLENS_", "BENTOML_", "MLFLOW_"))}
    env["LEADLENS_CONFIG"] = str(tmp_path / "no-such-config.yaml")  # read it and fail
    done = subprocess.run([sys.executable, "-c", "import serving.service"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no home, no store created by an import


def test_bentoml_overrides_carry_workers_timeout_and_access_log(service_module, served_home):
    """BentoML gets the worker count, a timeout behind the guard's and the access-log switch;
    never a concurrency limit of its own (the guard's counts a request once its body is in)."""
    from core.settings import ServeConfig, Settings

    runtime = served_home[0]
    rt = type(runtime)(Settings(serve=ServeConfig(workers=3, request_timeout_seconds=20,
                                                  access_log=True)), runtime.home, None)
    svc = service_module.bentoml_overrides(rt)["services"][service_module.SERVICE_NAME]
    assert svc["workers"] == 3 and svc["traffic"]["timeout"] == 25
    assert "max_concurrency" not in svc["traffic"]
    assert svc["logging"]["access"]["enabled"] is True
    assert svc["metrics"]["enabled"] is False


def test_shutdown_stops_the_poller_and_closes_the_warehouse(client, service_module):
    """A second service instance (the class BentoML wraps, beside the session's app: BentoML's
    metrics allow one app per process) loads, then its shutdown hook ends its model thread and
    closes its warehouse connection."""
    import threading

    live = service_module._LIVE
    serving_state = live["state"]
    cls = service_module.LeadLens.inner
    assert getattr(cls.shutdown, "__bentoml_shutdown_hook__", False)  # BentoML calls it
    try:
        svc = cls()
        deadline = time.time() + 120
        while not svc.__is_ready__():
            assert time.time() < deadline, "second instance never became ready"
            time.sleep(0.2)
        source = svc.state.current.source
        assert source._wh._con is not None
        svc.shutdown()
        assert not svc._thread.is_alive()
        assert source._wh._con is None
        assert [t for t in threading.enumerate() if t.name == "leadlens-models"] != []
        assert live.get("state") is None  # the gone instance is not left answering /model
    finally:
        live["state"] = serving_state
