"""A graceful stop on SIGTERM: keep answering for a while, refusing new work, then stop.

Uvicorn's own handler stops accepting at once while the listening socket (held by BentoML's
arbiter) stays open, so new requests used to hang in its backlog and `/readyz` kept saying 200.
Here the worker first turns `/readyz` to 503 and answers new work with 503 (`Connection: close`)
for `serve.drain_seconds`, or until nothing is in flight after the first second, then hands the
signal on to uvicorn, which lets the requests still in flight finish. A second SIGTERM stops at
once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("leadlens.serving")

MIN_DRAIN_SECONDS = 1.0
"""Even with nothing in flight, stay 503 this long so a balancer polling /readyz sees it."""


class Drain:
    """The draining flag of one worker and the SIGTERM hook that raises it."""

    def __init__(self, seconds: float, in_flight: Callable[[], int]) -> None:
        self.seconds = seconds
        self.in_flight = in_flight
        self.draining = False
        self._installed = False

    def install(self) -> None:
        """Chain onto the current SIGTERM handler (uvicorn's). Only from the main thread with
        a running loop (under `bentoml serve`); elsewhere (a test client's thread) a no-op."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        loop = asyncio.get_running_loop()

        def on_term(signum: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: stop now
                previous(signum, frame)
                return
            self.draining = True
            log.warning("SIGTERM: draining for up to %.1f s (/readyz 503, new work refused, "
                        "%d request(s) in flight)", self.seconds, self.in_flight())
            loop.call_soon_threadsafe(lambda: loop.create_task(self._finish(previous, signum)))

        signal.signal(signal.SIGTERM, on_term)

    async def _finish(self, previous: Any, signum: int) -> None:
        start = time.monotonic()
        while True:
            waited = time.monotonic() - start
            if waited >= self.seconds or (waited >= min(MIN_DRAIN_SECONDS, self.seconds)
                                          and self.in_flight() == 0):
                break
            await asyncio.sleep(0.05)
        log.warning("drained after %.1f s; stopping (%d request(s) still in flight finish "
                    "first)", time.monotonic() - start, self.in_flight())
        previous(signum, None)
