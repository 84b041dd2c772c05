from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.settings import IngestConfig, Runtime, Settings
from core.warehouse import Warehouse
from ingest.load import ingest_frames

REPS_CSV = """rep_id,team,hired_at,monthly_quota
R1,east,2023-01-01,10000
R2,west,2023-06-01,12000
"""

LEADS_CSV = """lead_id,created_at,owner_rep_id,source,converted_at,closed_lost_at,deal_amount,industry,company_size,email
L1,2025-01-01,R1,web,2025-02-01T10:00:00Z,,5000,software,50,a@example.com
L2,2025-01-02T09:00:00+02:00,R1,referral,,,,finance,120,b@example.com
L3,2025-01-03 08:30:00,R2,event,,2025-03-01,,retail,8,c@example.com
"""

ACTIVITIES_CSV = """activity_id,lead_id,rep_id,occurred_at,type,direction,outcome,amount
A1,L1,R1,2025-01-02T09:00:00Z,call,outbound,no_answer,
A2,L1,,2025-01-03T09:00:00Z,email,inbound,replied,
A3,L1,R1,2025-01-05T09:00:00Z,proposal,outbound,sent,5000
A4,L2,R1,2025-01-04T09:00:00Z,email,,sent,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def crm_files(tmp_path: Path) -> dict[str, Path]:
    return {
        "reps": write(tmp_path / "reps.csv", REPS_CSV),
        "leads": write(tmp_path / "leads.csv", LEADS_CSV),
        "activities": write(tmp_path / "activities.csv", ACTIVITIES_CSV),
    }


@pytest.fixture
def warehouse(tmp_path: Path):
    with Warehouse(tmp_path / "home" / "warehouse.duckdb") as wh:
        yield wh


@pytest.fixture
def ingest_config() -> IngestConfig:
    return IngestConfig()


def load_crm(home: Path, crm: Any) -> Runtime:
    """A runtime whose home holds a real DuckDB warehouse with `crm` ingested."""
    raws = crm if isinstance(crm, dict) else {
        "reps": crm.reps, "leads": crm.leads, "activities": crm.activities}
    home.mkdir(parents=True, exist_ok=True)
    with Warehouse(home / "warehouse.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), home / "quarantine", raws)
    return Runtime(settings=Settings(), home=home, config_path=None)


@pytest.fixture(scope="session")
def crm_loader():
    """`load_crm(home, crm) -> Runtime`: ingest a CRM into a real warehouse under `home`."""
    return load_crm
