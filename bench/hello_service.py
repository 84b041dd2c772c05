"""The peer for serving benchmarks: a minimal BentoML 1.4 service (BentoML's default settings,
two workers) that validates a small pydantic body and answers a constant, so the figures of
`bench/bench_serve.py` can be read against what BentoML itself costs on this machine.

Run: bentoml serve bench.hello_service:Hello --port 3300 (from the repository root)
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel


class Lead(BaseModel):
    """One lead by id, as `/score` takes it."""

    lead_id: str


@bentoml.service(name="hello", workers=2, http={"host": "127.0.0.1"})
class Hello:
    """Answers every lead with a constant score."""

    @bentoml.api
    def score(self, leads: list[Lead], explain: int = 0) -> dict:
        """A constant answer per lead (no model, no features)."""
        return {"results": [{"lead_id": lead.lead_id, "score": 0.5} for lead in leads]}
