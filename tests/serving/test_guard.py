"""The guard's admission rules, driven through its ASGI interface in front of an app whose
requests finish when the test says so (the live service is tested over HTTP in test_http.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.guard import Guard, Limits

KEY = b"guard-key-" + b"g" * 20
OTHER_KEY = b"other-key-" + b"o" * 20


class App:
    """An ASGI app that reads the body and answers 200: at once, except for `/score` and
    `/reps`, which wait until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        self.started += 1
        if scope["path"] in ("/score", "/reps"):
            await self.release.wait()
        body = b'{"ok": true}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _scope(path: str, key: bytes | None = KEY, method: str = "POST",
           length: int | None = None) -> dict:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "path": path, "method": method, "headers": headers}


async def _call(guard: Guard, scope: dict,
                chunks: list[bytes | None] | None = None) -> tuple[int, dict, dict]:
    """Send one request with its body in `chunks` (None: the client sends nothing more and
    waits). Returns (status, headers, body)."""
    chunks = [b"{}"] if chunks is None else chunks
    sent: list[dict] = []
    queue = list(chunks)

    async def receive() -> dict:
        part = queue.pop(0)
        if part is None:
            await asyncio.sleep(3600)  # a client that never sends the rest
        return {"type": "http.request", "body": part, "more_body": bool(queue)}

    async def send(message: dict) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    is_json = dict(start["headers"]).get(b"content-type") == b"application/json"
    return start["status"], dict(start["headers"]), json.loads(body) if is_json else {}


def _guard(app: App, **limits: Any) -> Guard:
    return Guard(app, keys=(KEY, OTHER_KEY), limits=Limits(**limits),
                 api_paths=("/score", "/quick"), expensive=("/reps",))


def test_beyond_max_concurrency_429_before_the_body_is_read():
    async def scenario() -> None:
        app = App()
        guard = _guard(app, max_concurrency=2)
        held = [asyncio.create_task(_call(guard, _scope("/score"))) for _ in range(2)]
        while app.started < 2:
            await asyncio.sleep(0.01)
        consumed: list[bool] = []

        async def receive() -> dict:  # the guard must not read a refused request's body
            consumed.append(True)
            return {"type": "http.request", "body": b"{}", "more_body": False}

        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await guard(_scope("/score"), receive, send)
        assert sent[0]["status"] == 429 and not consumed
        assert (b"retry-after", b"1") in sent[0]["headers"]
        assert guard.active == 2
        app.release.set()
        assert [(await t)[0] for t in held] == [200, 200]
        assert guard.active == 0
        assert (await _call(guard, _scope("/quick")))[0] == 200  # slots are given back

    asyncio.run(scenario())


def test_a_slow_body_holds_no_slot_and_gets_408():
    async def scenario() -> None:
        app = App()
        guard = _guard(app, max_concurrency=1, body_timeout_seconds=0.3)
        # a client that sends half its body and stops
        slow = asyncio.create_task(_call(guard, _scope("/score"), [b'{"leads"', None]))
        await asyncio.sleep(0.05)
        assert guard.reading == 1 and guard.active == 0
        assert (await _call(guard, _scope("/quick")))[0] == 200  # the slot stayed free
        status, headers, body = await slow
        assert status == 408 and "not received within 0.3 s" in body["error"]
        assert headers[b"connection"] == b"close"
        assert guard.reading == 0 and app.bodies == [b"{}"]  # the app never saw the slow one

    asyncio.run(scenario())


def test_expensive_routes_are_bounded_per_key():
    async def scenario() -> None:
        app = App()
        guard = _guard(app, max_expensive_per_key=1)
        first = asyncio.create_task(_call(guard, _scope("/reps")))
        while app.started < 1:
            await asyncio.sleep(0.01)
        status, _, body = await _call(guard, _scope("/reps"))
        assert status == 429 and "this API key" in body["error"]
        # another key, or a cheap route with the same key, is not held back
        other = asyncio.create_task(_call(guard, _scope("/reps", key=OTHER_KEY)))
        assert (await _call(guard, _scope("/quick")))[0] == 200
        # a large body makes any route expensive
        big = b'{"x": "' + b"a" * 70_000 + b'"}'
        status, _, _ = await _call(guard, _scope("/score", length=len(big)), [big])
        assert status == 429
        app.release.set()
        assert (await first)[0] == 200 and (await other)[0] == 200

    asyncio.run(scenario())


def test_no_answer_within_the_request_timeout_is_504():
    async def scenario() -> None:
        app = App()
        guard = _guard(app, request_timeout_seconds=0.2)
        status, _, body = await _call(guard, _scope("/score"))
        assert status == 504 and "0.2 s" in body["error"]
        assert guard.active == 0

    asyncio.run(scenario())


def test_while_draining_readyz_and_new_work_get_503_and_livez_still_answers():
    async def scenario() -> None:
        app = App()
        guard = _guard(app)
        guard.drain.draining = True
        for path in ("/readyz", "/score"):
            status, headers, _ = await _call(guard, _scope(path))
            assert status == 503 and headers[b"connection"] == b"close"
        status, _, _ = await _call(guard, _scope("/livez", method="GET"))
        assert status == 200

    asyncio.run(scenario())


def test_metrics_are_labelled_by_route_whatever_paths_clients_invent():
    async def scenario() -> Guard:
        app = App()
        app.release.set()
        guard = _guard(app)
        for i in range(300):
            await _call(guard, _scope(f"/made-up/{i}", key=None))  # 401s, no key
            await _call(guard, _scope(f"/made-up/{i}"))  # with a key: the app's answer
        await _call(guard, _scope("/score"))
        return guard

    guard = asyncio.run(scenario())
    text = guard.metrics.exposition().decode()
    assert "made-up" not in text
    assert 'route="other",status="401"' in text
    assert 'leadlens_http_requests_total{method="POST",route="/score",status="200"} 1.0' in text
    series = [line for line in text.splitlines() if line.startswith("leadlens_http_requests_total")]
    assert len(series) == 3, series  # other/401, other/200, /score/200


@pytest.mark.parametrize("path", ["/score", "/metrics"])
def test_every_answer_carries_the_security_headers(path):
    async def scenario() -> dict:
        app = App()
        app.release.set()
        return (await _call(_guard(app), _scope(path, method="GET" if path == "/metrics"
                                                 else "POST")))[1]

    headers = asyncio.run(scenario())
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"frame-ancestors 'none'" in headers[b"content-security-policy"]
