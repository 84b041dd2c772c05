"""The service as users run it: `leadlens serve` in a subprocess, over real HTTP on loopback."""

from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

KEY = "test-key-" + "x" * 24  # the key tests/serving/conftest.py configures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home: Path, extra_env: dict[str, str] | None = None):
    port = _free_port()
    env = {**os.environ, "LEADLENS_HOME": str(home), "LEADLENS_API_KEYS": KEY,
           "BENTOML_HOME": str(home / "bentoml"), **(extra_env or {})}
    if "MLFLOW_TRACKING_URI" not in (extra_env or {}):
        env.pop("MLFLOW_TRACKING_URI", None)
    # the log goes to a file: an undrained pipe would stall the server once it fills
    log = home / f"serve-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "leadlens", "serve", "--port", str(port)],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    proc.log_path = log  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            httpx.get(f"{base}/livez", timeout=1)
            return proc, base
        except httpx.HTTPError:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the service did not start")


def _stop(proc) -> str:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.log_path.read_text()


def _wait_ready(base: str) -> None:
    """Until every worker is ready: each probe is a new connection, which either of the
    service's worker processes may take, so 20 ready answers in a row mean both are."""
    deadline, streak = time.time() + 120, 0
    while streak < 20:
        assert time.time() < deadline, "never ready"
        ok = httpx.get(f"{base}/readyz").status_code == 200
        streak = streak + 1 if ok else 0
        time.sleep(0.02 if ok else 0.3)


def test_served_over_http_same_answers_and_limits(served_home, client, tmp_path):
    runtime, _, _ = served_home
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  max_concurrency: 2\n")
    proc, base = _start(runtime.home, {"LEADLENS_CONFIG": str(config)})
    try:
        assert base.startswith("http://127.0.0.1:")
        _wait_ready(base)
        auth = {"Authorization": f"Bearer {KEY}"}
        body = {"leads": [{"lead_id": "L000002"}], "explain": 3}
        over_http = httpx.post(f"{base}/score", json=body, headers=auth).json()
        in_process = client.post("/score", json=body, headers=auth).json()
        assert over_http["results"][0]["score"] == in_process["results"][0]["score"]
        assert httpx.post(f"{base}/score", json=body).status_code == 401

        # beyond max_concurrency, requests are refused at once with 429, never 5xx
        heavy = {"leads": [{"lead_id": "L000002"}] * 1000, "explain": 20}
        with cf.ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda _: httpx.post(f"{base}/score", json=heavy,
                                                       headers=auth, timeout=120).status_code,
                                  range(12)))
        assert set(codes) <= {200, 429}, codes
        assert 429 in codes and 200 in codes
    finally:
        log = _stop(proc)
    assert "zq-SECRET" not in log


def test_starts_from_the_bentoml_store_when_mlflow_is_down(served_home, client):
    runtime, _, _ = served_home
    assert client.get("/readyz").status_code == 200  # the in-process service stored its models
    proc, base = _start(runtime.home, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
                                       "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"})
    try:
        _wait_ready(base)
        auth = {"Authorization": f"Bearer {KEY}"}
        info = httpx.get(f"{base}/model", headers=auth).json()
        assert info["origin"] == "bentoml store"
        r = httpx.post(f"{base}/score", json={"leads": [{"lead_id": "L000002"}]}, headers=auth)
        assert r.status_code == 200
    finally:
        log = _stop(proc)
    assert "MLflow was unreachable" in log


def test_not_ready_until_models_load(tmp_path, served_home):
    import shutil

    runtime, _, _ = served_home
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(runtime.warehouse_path, home / "warehouse.duckdb")  # data, but no models
    proc, base = _start(home)
    try:
        time.sleep(2)
        assert httpx.get(f"{base}/livez").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 503
        r = httpx.post(f"{base}/score", json={"leads": [{"lead_id": "L000002"}]},
                       headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 503
    finally:
        _stop(proc)


def test_hot_swap_under_load_fails_no_request(served_home, tmp_path):
    from mlflow import MlflowClient

    from core.registry import champion_version, configure
    from core.settings import LightGBMConfig, Settings, TrainConfig
    from training.pipeline import train_models

    runtime, _, _ = served_home
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  poll_seconds: 0.5\n")
    proc, base = _start(runtime.home, {"LEADLENS_CONFIG": str(config)})
    auth = {"Authorization": f"Bearer {KEY}"}
    codes: list[int] = []
    versions: set[int] = set()
    stop = False

    def load() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop:
                r = c.post(f"{base}/score", json={"leads": [{"lead_id": "L000003"}],
                                                  "explain": 2}, headers=auth)
                codes.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["results"][0]["model_version"])

    try:
        _wait_ready(base)
        configure(runtime.mlflow_uri)
        before = champion_version("leadlens-conversion")
        worker = cf.ThreadPoolExecutor(2)
        futures = [worker.submit(load) for _ in range(2)]
        other = type(runtime)(Settings(train=TrainConfig(lightgbm=LightGBMConfig(
            num_leaves=15))), runtime.home, None)
        new = train_models(other, kinds=("conversion",), say=lambda _m: None)
        version = new.results["conversion"].version
        MlflowClient().set_registered_model_alias("leadlens-conversion", "champion",
                                                  str(version))
        deadline = time.time() + 60
        while version not in versions and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        stop = True
        for f in futures:
            f.result()
        served = httpx.get(f"{base}/model", headers=auth).json()
        assert served["models"]["conversion"]["version"] == version
        assert versions == {before, version}
        assert codes and set(codes) == {200}, sorted(set(codes))
    finally:
        stop = True
        MlflowClient().set_registered_model_alias("leadlens-conversion", "champion",
                                                  str(before))
        _stop(proc)
