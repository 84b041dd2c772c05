"""Prometheus metrics of the HTTP service, labelled by route (never by the raw path).

BentoML's own traffic metrics label every series by the path a client sent, before any key
check: anyone could grow `/metrics` without bound by asking for made-up paths. These label by
the route template: a known route's path, or `other` for everything else. Under `bentoml serve`
the workers share one view through Prometheus' multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`,
which BentoML sets); in a single process (tests) each `HttpMetrics` has a registry of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

OTHER = "other"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HttpMetrics:
    """Request counts by route, method and status; latency by route; requests in flight and
    requests shed (refused before any work) by reason."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.routes = frozenset(routes)
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # multiprocess mode writes values to files the collector reads; no registry needed
        self._registry = None if self._multiprocess else CollectorRegistry()
        reg = self._registry
        self.requests = Counter("leadlens_http_requests", "Answered requests",
                                ("route", "method", "status"), registry=reg)
        self.latency = Histogram("leadlens_http_request_seconds",
                                 "Seconds from the request's arrival to its answer's start",
                                 ("route",), buckets=BUCKETS, registry=reg)
        self.in_flight = Gauge("leadlens_http_in_flight", "Requests being worked on",
                               multiprocess_mode="livesum", registry=reg)
        self.shed = Counter("leadlens_http_shed", "Requests refused before any work",
                            ("reason",), registry=reg)

    def route(self, path: str) -> str:
        """The label for `path`: itself when it is a route of the service, else `other`."""
        return path if path in self.routes else OTHER

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (every worker's, in multiprocess mode)."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
