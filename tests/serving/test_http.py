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
           **(extra_env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "leadlens", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            httpx.get(f"{base}/livez", timeout=1)
            return proc, base
        except httpx.HTTPError:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the service did not start")


def _stop(proc) -> str:
    proc.terminate()
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def _wait_ready(base: str) -> None:
    deadline = time.time() + 90
    while httpx.get(f"{base}/readyz").status_code != 200:
        assert time.time() < deadline, "never ready"
        time.sleep(0.3)


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
