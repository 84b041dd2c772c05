"""The hardened service over real HTTP: fuzzed against its own OpenAPI document, metrics that
strangers cannot grow, slow senders, client errors logged as such, the configured date window,
and a graceful stop on SIGTERM. One `leadlens serve` (one worker) for the whole module."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.serving.test_http import KEY, _start, _stop, _wait_ready

AUTH = {"Authorization": f"Bearer {KEY}"}
FUZZ_EXAMPLES = 60
"""Per operation and generation mode (schema-valid and schema-violating): 7 operations x 2 x 60
gives 840 generated requests, plus schemathesis' own probes (over 1,000 in all, about 15 s)."""


@pytest.fixture(scope="module")
def hardened(served_home, tmp_path_factory):
    runtime, _, _ = served_home
    config = tmp_path_factory.mktemp("hardened") / "serve.yaml"
    config.write_text("serve:\n  workers: 1\n  max_concurrency: 2\n  body_timeout_seconds: 1\n"
                      "  drain_seconds: 3\ningest:\n  earliest_date: 2020-01-01\n")
    proc, base = _start(runtime.home, {"LEADLENS_CONFIG": str(config)})
    _wait_ready(base)
    yield proc, base
    _stop(proc)


def test_fuzzed_from_its_openapi_document_no_server_error_and_answers_as_declared(hardened):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import positive_data_acceptance

    _, base = hardened
    doc = httpx.get(f"{base}/docs.json", headers=AUTH).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    score = doc["paths"]["/score"]["post"]["responses"]
    assert {"400", "401", "404", "413", "415", "429", "503"} <= set(score)
    assert score["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}

    schema = schemathesis.openapi.from_dict(doc)
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in ("/healthz", "/livez", "/readyz", "/metrics"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                      database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case) -> None:
                # every default check (no 5xx, status codes, content types and bodies as
                # declared, schema-violating requests refused) except that a schema-valid
                # request is accepted: the service also refuses what a JSON schema cannot say
                # (a lead by id or by its fields, dates outside the window), declared as 400
                response = case.call_and_validate(base_url=base, headers=AUTH,
                                                  excluded_checks=[positive_data_acceptance])
                statuses[response.status_code] += 1

            run()
    assert sum(statuses.values()) >= 500, statuses
    assert 200 in statuses and 400 in statuses
    assert not [s for s in statuses if s >= 500], statuses


def test_strangers_cannot_grow_the_metrics(hardened):
    _, base = hardened
    with httpx.Client(base_url=base) as c:
        for i in range(300):
            assert c.get(f"/made-up/{i}").status_code == 401
            assert c.post(f"/x{i}", json={}).status_code == 401
        assert c.get("/metrics").status_code == 401  # the metrics need a key too
        text = c.get("/metrics", headers=AUTH).text
    assert "made-up" not in text and "/x1" not in text
    import re

    series = [line for line in text.splitlines() if line.startswith("leadlens_http_requests_total")]
    strangers = [line for line in series if 'route="other"' in line and 'status="401"' in line]
    assert len(strangers) == 2, strangers  # methods GET and POST, 600 paths
    routes = {m.group(1) for line in series if (m := re.search(r'route="([^"]*)"', line))}
    assert routes <= {"other", "/score", "/explain", "/dropout_risk", "/reps", "/model", "/next_steps",
                      "/metrics", "/docs.json", "/readyz", "/livez", "/healthz", "/",
                      "/ui/app.js", "/ui/style.css", "/ui/api/leads", "/ui/api/lead",
                      "/ui/api/model", "/ui/api/reps", "/leads/{id}/history",
                      "/ingest/leads", "/ingest/activities", "/ingest/reps"}, routes
    assert len(text) < 50_000


def test_a_slow_sender_gets_408_and_holds_no_slot(hardened):
    _, base = hardened
    port = int(base.rsplit(":", 1)[1])
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n"
                 b'{"leads": ')
    try:
        # max_concurrency is 2: three quick requests while the slow body waits all succeed
        for _ in range(3):
            r = httpx.post(f"{base}/score", json={"leads": [{"lead_id": "L000002"}]},
                           headers=AUTH)
            assert r.status_code == 200
        slow.settimeout(10)
        answer = slow.recv(4096)
    finally:
        slow.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not received within 1 s" in answer


def test_client_errors_are_logged_at_info_without_tracebacks(hardened):
    proc, base = hardened
    r = httpx.post(f"{base}/score", json={"leads": [{"lead_id": "NO-SUCH-LEAD"}]},
                   headers=AUTH)
    assert r.status_code == 404 and isinstance(r.json(), dict)
    r = httpx.post(f"{base}/score", json={"leads": [{"lead_id": "L000002", "zq_field": 1}]},
                   headers=AUTH)
    assert r.status_code == 400
    time.sleep(0.5)
    log = proc.log_path.read_text()
    assert "/score refused: NotFound (404)" in log
    assert "/score failed validation" in log
    assert "Traceback" not in log and "[ERROR]" not in log
    assert "zq_field" not in log and "NO-SUCH-LEAD" not in log


def test_the_configured_date_window_refuses_earlier_dates(hardened):
    _, base = hardened
    body = {"leads": [{"lead_id": "L000002"}], "as_of": "2019-06-01T00:00:00"}
    r = httpx.post(f"{base}/score", json=body, headers=AUTH)
    assert r.status_code == 400
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["as_of"] and "before 2020-01-01" in detail["msg"]


def test_sigterm_turns_readyz_to_503_refuses_new_work_and_finishes_what_is_in_flight(hardened):
    proc, base = hardened
    worker = httpx.get(f"{base}/model", headers=AUTH).json()["worker"]
    heavy = {"leads": [{"lead_id": f"L{i:06d}"} for i in range(1, 1001)], "explain": 20}
    in_flight: list[int] = []
    t = threading.Thread(target=lambda: in_flight.append(
        httpx.post(f"{base}/score", json=heavy, headers=AUTH, timeout=60).status_code))
    t.start()
    time.sleep(0.05)
    os.kill(worker, signal.SIGTERM)
    time.sleep(0.2)
    with httpx.Client(base_url=base, timeout=5) as c:
        assert c.get("/readyz").status_code == 503
        r = c.post("/score", json={"leads": [{"lead_id": "L000002"}]}, headers=AUTH)
        assert r.status_code == 503 and r.headers["connection"] == "close"
        assert "shutting down" in r.json()["error"]
        assert c.get("/livez").status_code == 200
    t.join(60)
    assert in_flight == [200]
    time.sleep(1.5)
    log = proc.log_path.read_text()
    assert "SIGTERM: draining" in log and "drained after" in log
