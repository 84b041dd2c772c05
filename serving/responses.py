"""ASGI wrappers around the app's `send` and `receive`: the one error shape (4xx bodies rewritten
without anything the client sent), security headers on every answer, and a body read ahead of the
app handed back to it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def reply(send: Send, status: int, message: str,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """An answer in the one error shape: `{"error": message}`."""
    await json_reply(send, status, {"error": message}, extra)


async def json_reply(send: Send, status: int, payload: Any,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """`payload` as a JSON answer (the handlers the guard routes to answer this way)."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def sanitize_errors(body: bytes, known_fields: frozenset[str]) -> bytes:
    """A 400 body with only what is safe to return: error types, messages, and field paths in
    which any name the service does not define (a submitted key) is replaced by `<unknown>`."""
    try:
        data = json.loads(body)
    except ValueError:
        return json.dumps({"error": "invalid request"}).encode()
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]  # BentoML wraps the message of an exception raised in a handler in a list
    details = data.get("detail") if isinstance(data, dict) else None
    if not isinstance(details, list):
        message = data.get("error") if isinstance(data, dict) else None
        return json.dumps({"error": message if isinstance(message, str) else
                           "invalid request"}).encode()
    clean = []
    for d in details:
        if not isinstance(d, dict):
            continue
        loc = [p if isinstance(p, int) or p in known_fields else "<unknown>"
               for p in d.get("loc", [])]
        clean.append({"loc": loc, "type": d.get("type"), "msg": d.get("msg")})
    return json.dumps({"error": "invalid request", "detail": clean}).encode()


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
"""On every response: the dashboard runs no inline script or style, is never framed, and no
answer is sniffed as another type or leaks its address in a Referer."""


_SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def with_security_headers(send: Send) -> Send:
    """`send` that adds `SECURITY_HEADERS` to the response start (replacing any the app set)."""

    async def secured(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers") or []
                       if k.lower() not in _SECURITY_NAMES]
            message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
        await send(message)

    return secured


def replay(parts: list[bytes], receive: Receive) -> Receive:
    """`receive` for the app: the body already read, in one message, then `receive` itself."""
    replayed = False

    async def limited() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}
        return await receive()

    return limited


def sanitizing(send: Send, known_fields: frozenset[str]) -> Send:
    """`send` for the app: a 4xx reply is held until complete, then sent sanitised in the one
    error shape (`{"error": message, "detail": [...]}`; BentoML wraps a handler's message in
    a one-element list)."""
    held: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def tracking_send(message: dict[str, Any]) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and 400 <= message.get("status", 0) < 500:
            held = message  # rewrite the body once it is complete
            return
        if held is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = sanitize_errors(b"".join(chunks), known_fields)
            headers = [(k, v) for k, v in held.get("headers", [])
                       if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return tracking_send
