"""A small HTTP/1.1 load generator, run as its own process so it never shares the server's
interpreter: closed loop (N connections, each sends its next request when the last is answered)
or open loop (a request every 1/rps seconds on whichever connection is free, new connections
opened as needed, so a slow server faces a growing queue as real clients would).

A request on a kept-alive connection the server closed while it was idle is sent again once on
a new connection (what HTTP clients do); any other failure counts as an error. Prints one JSON
object: requests sent, answers by status, errors (connection failures and timeouts), goodput
(200 answers per second), p50/p99 of the 200 answers in ms, and the generator's own CPU seconds
and share of one core (to judge whether it was the bottleneck).

Usage: python bench/loadgen.py URL --body JSON --header "Authorization: Bearer K"
       [--connections 8 | --rps 300] [--seconds 20] [--timeout 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from urllib.parse import urlsplit


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer


async def _open(host: str, port: int) -> _Conn:
    reader, writer = await asyncio.open_connection(host, port)
    return _Conn(reader, writer)


async def _exchange(conn: _Conn, request: bytes) -> tuple[int, bool]:
    """Send one request, read one answer: (status, keep the connection)."""
    conn.writer.write(request)
    await conn.writer.drain()
    status_line = await conn.reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while True:
        line = await conn.reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length:
        await conn.reader.readexactly(length)
    return status, keep


def _request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}",
            "Content-Type: application/json", f"Content-Length: {len(body)}", *headers]
    return host, port, ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Tally:
    def __init__(self) -> None:
        self.status: Counter[int] = Counter()
        self.errors = 0
        self.ok_ms: list[float] = []


async def _one(pool: list[_Conn], host: str, port: int, request: bytes, tally: _Tally,
               timeout: float) -> None:
    conn = pool.pop() if pool else None
    start = time.perf_counter()
    try:
        if conn is not None:
            try:
                status, keep = await asyncio.wait_for(_exchange(conn, request), timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                # the server closed this idle keep-alive connection before our request
                # reached it: resend once on a new connection, as HTTP clients do
                conn.writer.close()
                conn = None
        if conn is None:
            conn = await asyncio.wait_for(_open(host, port), timeout)
            status, keep = await asyncio.wait_for(_exchange(conn, request), timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        tally.errors += 1
        if conn is not None:
            conn.writer.close()
        return
    tally.status[status] += 1
    if status == 200:
        tally.ok_ms.append((time.perf_counter() - start) * 1000)
    if keep:
        pool.append(conn)
    else:
        conn.writer.close()


async def _closed(host: str, port: int, request: bytes, connections: int, seconds: float,
                  timeout: float, tally: _Tally) -> int:
    end = time.perf_counter() + seconds
    sent = 0

    async def worker() -> None:
        nonlocal sent
        pool: list[_Conn] = []
        while time.perf_counter() < end:
            sent += 1
            await _one(pool, host, port, request, tally, timeout)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return sent


async def _paced(host: str, port: int, request: bytes, rps: float, seconds: float,
                 timeout: float, tally: _Tally) -> int:
    pool: list[_Conn] = []
    tasks: set[asyncio.Task] = set()
    start = time.perf_counter()
    n = int(rps * seconds)
    for i in range(n):
        delay = start + i / rps - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(pool, host, port, request, tally, timeout))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    for conn in pool:
        conn.writer.close()
    return n


def run(url: str, body: bytes, headers: list[str], connections: int | None, rps: float | None,
        seconds: float, timeout: float) -> dict[str, object]:
    """Drive the load and return the figures (see the module docstring)."""
    host, port, request = _request(url, body, headers)
    tally = _Tally()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    if rps:
        sent = asyncio.run(_paced(host, port, request, rps, seconds, timeout, tally))
    else:
        sent = asyncio.run(_closed(host, port, request, connections or 1, seconds, timeout,
                                   tally))
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ok = sorted(tally.ok_ms)

    def pct(q: float) -> float | None:
        return round(ok[min(len(ok) - 1, int(q * len(ok)))], 2) if ok else None

    return {"sent": sent, "seconds": round(wall, 2),
            "status": {str(k): v for k, v in sorted(tally.status.items())},
            "errors": tally.errors, "goodput_per_s": round(len(ok) / wall, 1),
            "ok_p50_ms": pct(0.50), "ok_p99_ms": pct(0.99),
            "generator_cpu_s": round(cpu, 2), "generator_core_share": round(cpu / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--body", default="{}")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--connections", type=int)
    ap.add_argument("--rps", type=float)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    print(json.dumps(run(args.url, args.body.encode(), args.header, args.connections, args.rps,
                         args.seconds, args.timeout)))


if __name__ == "__main__":
    main()
