"""The CRM worlds: each writes a valid export and the truth for every lead open at its cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from core.settings import IngestConfig
from core.timestamps import record_cutoff
from core.warehouse import Warehouse
from features.engagement import select_pairs
from ingest.load import ingest_frames
from leadlens.cli import main
from leadlens.simulator.worlds import WORLDS, build_world, world


@pytest.mark.parametrize("name", list(WORLDS))
def test_each_world_is_a_valid_export_with_truth_for_its_open_book(tmp_path, name):
    crm = build_world(world(name, leads=600, reps=6), draws=20)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        summary = ingest_frames(wh, IngestConfig(), tmp_path / "q",
                                {"reps": crm.reps, "leads": crm.leads,
                                 "activities": crm.activities})
        assert not summary.quarantine_files, summary.quarantine_files  # nothing set aside
        record_cutoff(wh.con, crm.cutoff)  # nothing at or after the cutoff
        open_ids = set(select_pairs(wh.con, crm.cutoff, "open")["lead_id"])
    assert set(crm.truth["lead_id"]) == open_ids and len(open_ids) > 20
    assert crm.truth["p_true"].between(0, 1).all() and crm.truth["p_true"].std() > 0


def test_the_truth_follows_what_drives_the_world():
    """In the stage world a lead that reached a proposal is worth more than a new one; in the
    rep-skill world the truth differs far more between reps than in the attributes world."""
    staged = build_world(world("stage_dormancy", leads=1500), draws=40)
    acts = staged.activities
    proposed = set(acts.loc[acts["type"] == "proposal", "lead_id"])
    t = staged.truth.assign(proposed=staged.truth["lead_id"].isin(proposed))
    assert t.groupby("proposed")["p_true"].mean().diff().iloc[-1] > 0.1

    def rep_spread(name: str) -> float:
        crm = build_world(world(name, leads=1500), draws=40)
        owner = crm.leads.set_index("lead_id")["owner_rep_id"]
        by_rep = crm.truth.assign(rep=crm.truth["lead_id"].map(owner)).groupby("rep")["p_true"]
        return float(np.std(by_rep.mean()))

    assert rep_spread("rep_skill") > 2 * rep_spread("attributes")


def test_simulate_world_from_the_cli(tmp_path):
    out = CliRunner().invoke(main, ["simulate", "--world", "small", "--leads", "300",
                                    "--out", str(tmp_path / "w")])
    assert out.exit_code == 0, out.output
    assert "Simulated world small: 300 leads" in out.output
    truth = pd.read_csv(tmp_path / "w" / "truth" / "open_leads.csv")
    assert list(truth.columns) == ["lead_id", "p_true"] and len(truth) > 0
    bad = CliRunner().invoke(main, ["simulate", "--world", "mars", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown world 'mars'" in bad.output
