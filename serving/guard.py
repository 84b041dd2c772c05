"""ASGI guard in front of the service: API keys, size and time limits, load shedding, draining
and the HTTP metrics.

BentoML has no authentication and no request-size limit, and its concurrency limit counts a
request from its first byte, so a client sending its body slowly holds a slot. Keys come from
`LEADLENS_API_KEYS` (comma-separated) or the file named by `LEADLENS_API_KEYS_FILE` (one per
line) and are sent as `Authorization: Bearer KEY`; they are compared in constant time. The probes
(`/livez`, `/readyz`) and CORS preflight pass without a key, and so does the dashboard's static
page (it holds no data: everything it shows comes from endpoints behind the key).

In order, cheapest first: draining (503), key (401), media type (415), announced size (413),
then admission: a worker works on at most `serve.max_concurrency` requests and each key on at
most `serve.max_expensive_per_key` expensive ones; beyond that 429 with `Retry-After`, before a
byte of the body is read. The body must arrive within `serve.body_timeout_seconds` (408) and is
read before the request takes a slot; the answer must start within
`serve.request_timeout_seconds` (504). Error bodies never echo what was sent.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.drain import Drain
from serving.http_metrics import HttpMetrics
from serving.openapi import patched_docs
from serving.responses import Receive, Send, replay, reply, sanitizing, with_security_headers

WRITE_KEYS_ENV = "LEADLENS_WRITE_KEYS"
WRITE_KEYS_FILE_ENV = "LEADLENS_WRITE_KEYS_FILE"
WRITE_PREFIX = "/ingest/"
"""Paths that write (the CRM's pushes): they take write keys only, never read keys."""
KEYS_ENV = "LEADLENS_API_KEYS"
KEYS_FILE_ENV = "LEADLENS_API_KEYS_FILE"
log = logging.getLogger("leadlens.serving")
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LARGE_BODY_BYTES = 64 * 1024
"""A body above this makes a request expensive (hundreds of leads, or described leads)."""
READERS_PER_SLOT = 4
"""Bodies being received at once, per slot of `max_concurrency`, before new ones get 429."""
RETRY_AFTER = [(b"retry-after", b"1")]

Scope = dict[str, Any]


class ApiKeyError(ValueError):
    """No usable API key configuration (the message says how to set one)."""


def load_keys(env: dict[str, str] | None = None, var: str = KEYS_ENV,
              file_var: str = KEYS_FILE_ENV, required: bool = True) -> tuple[bytes, ...]:
    """The accepted keys from `var` (comma-separated) and the file named by `file_var`; raises
    if none are configured and `required` (the service never runs open)."""
    env = dict(os.environ) if env is None else env
    keys: list[str] = []
    if env.get(var):
        keys += [k.strip() for k in env[var].split(",")]
    if env.get(file_var):
        path = Path(env[file_var])
        try:
            keys += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except OSError as err:
            raise ApiKeyError(f"{file_var}={path}: cannot read it ({err.strerror})") from None
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys and required:
        raise ApiKeyError(f"no API keys: set {var} (comma-separated) or {file_var}")
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ApiKeyError(f"{len(short)} key(s) in {var}/{file_var} shorter than 16 characters")
    return tuple(k.encode() for k in keys)


def matching_key(given: bytes, keys: Iterable[bytes]) -> int | None:
    """The index of the key `given` equals, or None; constant time (every key is compared)."""
    found: int | None = None
    for i, k in enumerate(keys):
        if hmac.compare_digest(given, k):
            found = i
    return found


@dataclass(frozen=True)
class Limits:
    """What one worker accepts (from the `serve` section of the config)."""

    max_body_bytes: int = 2_000_000
    max_concurrency: int = 64
    max_expensive_per_key: int = 2
    body_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 60.0
    drain_seconds: float = 5.0


TEMPLATES = (("/leads/", "/history", "/leads/{id}/history"),)
"""Routes with one path parameter: (prefix, suffix, template). A request's path is matched
once, then routed and measured by its template; the parameter is in `scope["path_params"]`."""


def templated(scope: Scope) -> Scope:
    """`scope` with a templated path replaced by its template (and the parameter kept)."""
    path = scope.get("path", "")
    for prefix, suffix, template in TEMPLATES:
        if path.startswith(prefix) and path.endswith(suffix):
            value = path[len(prefix):len(path) - len(suffix)]
            if value and "/" not in value:
                return {**scope, "path": template, "path_params": {"id": value}}
    return scope


class Guard:
    """ASGI middleware: see the module docstring for the checks, in the order they run."""

    def __init__(self, app: Any, keys: tuple[bytes, ...], limits: Limits,
                 known_fields: frozenset[str] = frozenset(),
                 routes: dict[str, Any] | None = None,
                 public: dict[str, Any] | None = None,
                 api_paths: Iterable[str] = (),
                 expensive: Iterable[str] = ()) -> None:
        self.app = app
        self.keys = keys
        self.limits = limits
        self.known_fields = known_fields
        self.routes = {"/metrics": self._metrics_app, **(routes or {})}  # behind the key
        self.public = public or {}  # the dashboard's page and assets: no data, no key
        self.expensive = frozenset(expensive)
        self.metrics = HttpMetrics({*self.routes, *self.public, *OPEN_PATHS, *api_paths,
                                    *self.expensive, "/docs.json"})
        self.active = 0  # requests being worked on (body read, slot taken)
        self.reading = 0  # bodies being received
        self.expensive_by_key: Counter[int] = Counter()
        self.drain = Drain(limits.drain_seconds, lambda: self.active)
        self.write_keys: tuple[bytes, ...] = ()
        """Keys for the write paths (`WRITE_PREFIX`); none: pushing is off."""
        self.extra_metrics: Callable[[], str] | None = None
        """More gauges for `/metrics` (the latest monitoring report's), in text format."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the checks (see the module docstring), then hand the request on."""
        self.drain.install()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = templated(scope)
        route = self.metrics.route(scope.get("path", ""))
        send = self._measured(with_security_headers(send), route, scope.get("method", ""))
        await self._checked(scope, receive, send, route)

    async def _checked(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        path = scope.get("path", "")
        if self.drain.draining and path != "/livez":
            self.metrics.shed.labels("draining").inc()
            await reply(send, 503, "shutting down: retry on another instance",
                        [(b"connection", b"close"), *RETRY_AFTER])
            return
        if path in self.public:
            await self.public[path](scope, receive, send)
            return
        if path in OPEN_PATHS or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key = await self._key(path, headers, send)
        if key is None:
            return
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if (scope.get("method") in BODY_METHODS and path not in self.routes
                and media != b"application/json"):
            # never guess: text/plain, XML, forms and uploads are not parsed as JSON
            await reply(send, 415, "send the body as JSON (Content-Type: application/json)")
            return
        length = headers.get(b"content-length")
        announced = int(length) if length is not None and length.isdigit() else 0
        if announced > self.limits.max_body_bytes:
            await reply(send, 413, f"request body larger than {self.limits.max_body_bytes} "
                                   "bytes")
            return
        expensive = path in self.expensive or announced > LARGE_BODY_BYTES
        refusal = self._refusal(key if expensive else None)
        if refusal:
            await self._shed(send, refusal)
            return
        if scope.get("method") in BODY_METHODS:
            if self.reading >= READERS_PER_SLOT * self.limits.max_concurrency:
                await self._shed(send, "readers")
                return
            self.reading += 1
            try:
                parts = await self._read_body(receive, send)
            finally:
                self.reading -= 1
            if parts is None:
                return
            receive = replay(parts, receive)
            refusal = self._refusal(key if expensive else None)  # it may have filled meanwhile
            if refusal:
                await self._shed(send, refusal)
                return
        await self._admitted(scope, receive, send, key if expensive else None)

    async def _key(self, path: str, headers: dict[bytes, bytes], send: Send) -> int | None:
        """The index of the request's key, or None once 401 (no or unknown key) or 403 (a
        read key on a write path) has been sent."""
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        bearer = token.strip() if scheme.lower() == b"bearer" else None
        if not path.startswith(WRITE_PREFIX):
            key = matching_key(bearer, self.keys) if bearer is not None else None
            if key is None:
                await reply(send, 401, "missing or invalid API key (Authorization: Bearer KEY)",
                            [(b"www-authenticate", b'Bearer realm="leadlens"')])
            return key
        key = self._write_key(bearer)
        if key is None:
            read_key = bearer is not None and matching_key(bearer, self.keys) is not None
            await reply(send, 403 if read_key else 401,
                        "pushing data needs a write key (LEADLENS_WRITE_KEYS); read keys cannot "
                        "write" if self.write_keys else
                        "pushing data is off: no write keys (LEADLENS_WRITE_KEYS)",
                        [(b"www-authenticate", b'Bearer realm="leadlens-write"')])
        return key

    def _write_key(self, bearer: bytes | None) -> int | None:
        """The write key's index (after the read keys': per-key limits keep them apart)."""
        found = matching_key(bearer, self.write_keys) if bearer is not None else None
        return None if found is None else len(self.keys) + found

    def _refusal(self, expensive_key: int | None) -> str | None:
        if self.active >= self.limits.max_concurrency:
            return "busy"
        if (expensive_key is not None
                and self.expensive_by_key[expensive_key] >= self.limits.max_expensive_per_key):
            return "key_busy"
        return None

    async def _shed(self, send: Send, reason: str) -> None:
        self.metrics.shed.labels(reason).inc()
        message = ("too many expensive requests in flight for this API key" if reason ==
                   "key_busy" else "busy: too many requests in flight")
        await reply(send, 429, f"{message}; retry shortly", RETRY_AFTER)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send,
                        expensive_key: int | None) -> None:
        """Work on the request in a slot, within the request timeout."""
        path = scope.get("path", "")
        started = False

        async def tracking(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.active += 1
        self.metrics.in_flight.inc()
        if expensive_key is not None:
            self.expensive_by_key[expensive_key] += 1
        try:
            async with asyncio.timeout(self.limits.request_timeout_seconds):
                if path in self.routes:
                    await self.routes[path](scope, receive, tracking)
                elif path == "/docs.json":
                    await self.app(scope, receive, patched_docs(tracking))
                else:
                    await self.app(scope, receive, sanitizing(tracking, self.known_fields))
        except TimeoutError:
            if not started:
                await reply(send, 504, "no answer within serve.request_timeout_seconds "
                                       f"({self.limits.request_timeout_seconds:g} s)")
        except Exception:  # a bug must answer 500 and reach the log, never hang the client
            log.exception("%s %s failed", scope.get("method"), path)
            if not started:
                await reply(send, 500, "internal error; the service log says more")
        finally:
            self.active -= 1
            self.metrics.in_flight.dec()
            if expensive_key is not None:
                self.expensive_by_key[expensive_key] -= 1

    async def _read_body(self, receive: Receive, send: Send) -> list[bytes] | None:
        """The whole request body in parts, or None once an error reply has been sent."""
        parts: list[bytes] = []
        received = 0
        deadline = time.monotonic() + self.limits.body_timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.metrics.shed.labels("slow_body").inc()
                await reply(send, 408, "request body not received within "
                                       f"{self.limits.body_timeout_seconds:g} s",
                            [(b"connection", b"close")])
                return None
            if message["type"] != "http.request":
                return None  # the client went away: nobody to answer
            received += len(message.get("body", b""))
            if received > self.limits.max_body_bytes:
                await reply(send, 413, f"request body larger than {self.limits.max_body_bytes} "
                                       "bytes")
                return None
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                return parts

    def _measured(self, send: Send, route: str, method: str) -> Send:
        """`send` that counts the answer by route, method and status, and its latency."""
        start = time.perf_counter()
        method = method if method in METHODS else "other"

        async def measured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route, method, str(message["status"])).inc()
                self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            await send(message)

        return measured

    async def _metrics_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await reply(send, 405, "use GET")
            return
        body = await asyncio.to_thread(self.metrics.exposition)
        if self.extra_metrics is not None:
            body += (await asyncio.to_thread(self.extra_metrics)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
