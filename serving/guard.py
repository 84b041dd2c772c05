"""ASGI guard in front of the service: API keys and the request size limit.

BentoML has neither built in. Keys come from `LEADLENS_API_KEYS` (comma-separated) or the file
named by `LEADLENS_API_KEYS_FILE` (one per line) and are sent as `Authorization: Bearer KEY`;
they are compared in constant time. The probes (`/livez`, `/readyz`) and CORS preflight pass
without a key, and so does the dashboard's static page (it holds no data: everything it shows
comes from endpoints behind the key). Bodies larger than the limit get 413, whether or not they
announce their length; a body that is not `application/json` gets 415.
Error bodies never echo what was sent.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

KEYS_ENV = "LEADLENS_API_KEYS"
KEYS_FILE_ENV = "LEADLENS_API_KEYS_FILE"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ApiKeyError(ValueError):
    """No usable API key configuration (the message says how to set one)."""


def load_keys(env: dict[str, str] | None = None) -> tuple[bytes, ...]:
    """The accepted keys; raises if none are configured (the service never runs open)."""
    env = dict(os.environ) if env is None else env
    keys: list[str] = []
    if env.get(KEYS_ENV):
        keys += [k.strip() for k in env[KEYS_ENV].split(",")]
    if env.get(KEYS_FILE_ENV):
        path = Path(env[KEYS_FILE_ENV])
        try:
            keys += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except OSError as err:
            raise ApiKeyError(f"{KEYS_FILE_ENV}={path}: cannot read it ({err.strerror})") from None
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise ApiKeyError(f"no API keys: set {KEYS_ENV} (comma-separated) or {KEYS_FILE_ENV}")
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ApiKeyError(f"{len(short)} API key(s) shorter than 16 characters")
    return tuple(k.encode() for k in keys)


def key_matches(given: bytes, keys: Iterable[bytes]) -> bool:
    """Constant-time comparison against every key (no early exit on the first match)."""
    ok = False
    for k in keys:
        ok |= hmac.compare_digest(given, k)
    return ok


async def _reply(send: Send, status: int, message: str, extra: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
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


class Guard:
    """ASGI middleware: 401 without a valid key, 413 above the body limit, and 400 bodies
    stripped of anything the client sent."""

    def __init__(self, app: Any, keys: tuple[bytes, ...], max_body_bytes: int,
                 known_fields: frozenset[str] = frozenset(),
                 routes: dict[str, Any] | None = None,
                 public: dict[str, Any] | None = None) -> None:
        self.app = app
        self.keys = keys
        self.max_body = max_body_bytes
        self.known_fields = known_fields
        self.routes = routes or {}  # small extra endpoints (GET /model), behind the key
        self.public = public or {}  # the dashboard's page and assets: no data, no key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key and the body size, then hand the request to a route or the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        path = scope.get("path", "")
        if path in self.public:
            await self.public[path](scope, receive, send)
            return
        if path in OPEN_PATHS or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not key_matches(token.strip(), self.keys):
            await _reply(send, 401, "missing or invalid API key (Authorization: Bearer KEY)",
                         [(b"www-authenticate", b'Bearer realm="leadlens"')])
            return
        if path in self.routes:
            await self.routes[path](scope, receive, send)
            return
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope.get("method") in BODY_METHODS and media != b"application/json":
            # never guess: text/plain, XML, forms and uploads are not parsed as JSON
            await _reply(send, 415, "send the body as JSON (Content-Type: application/json)")
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _reply(send, 413, f"request body larger than {self.max_body} bytes")
            return
        # read the whole body first (it is small by construction), so an oversized one is
        # refused before the app sees a byte of it
        parts = await self._read_body(receive, send)
        if parts is None:
            return
        await self.app(scope, _replay(parts, receive), _sanitizing(send, self.known_fields))

    async def _read_body(self, receive: Receive, send: Send) -> list[bytes] | None:
        """The whole request body in parts, or None once an error reply has been sent."""
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await _reply(send, 400, "request ended early")
                return None
            received += len(message.get("body", b""))
            if received > self.max_body:
                await _reply(send, 413, f"request body larger than {self.max_body} bytes")
                return None
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                return parts


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


def _with_security_headers(send: Send) -> Send:
    """`send` that adds `SECURITY_HEADERS` to the response start (replacing any the app set)."""

    async def secured(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers") or []
                       if k.lower() not in _SECURITY_NAMES]
            message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
        await send(message)

    return secured


def _replay(parts: list[bytes], receive: Receive) -> Receive:
    """`receive` for the app: the body already read, in one message, then `receive` itself."""
    replayed = False

    async def limited() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}
        return await receive()

    return limited


def _sanitizing(send: Send, known_fields: frozenset[str]) -> Send:
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
