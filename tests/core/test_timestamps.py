"""One answer to "what is now?" for the CLI, the service and the rep report."""

from __future__ import annotations

import pandas as pd
import pytest

from core.settings import EngagementConfig
from core.timestamps import data_end, default_as_of, to_utc_naive
from core.warehouse import Warehouse
from core.warehouse_snapshots import current_warehouse
from ingest.load import ingest_files
from leadlens.cli.common import as_of_or_default


def test_to_utc_naive_converts_offsets_and_keeps_naive_values():
    assert to_utc_naive("2025-03-01T10:00:00+02:00") == pd.Timestamp("2025-03-01 08:00:00")
    assert to_utc_naive("2025-03-01 08:00") == pd.Timestamp("2025-03-01 08:00:00")
    with pytest.raises(ValueError):
        to_utc_naive("next tuesday")


def test_cli_and_service_default_to_the_same_as_of(tmp_path, crm_files, ingest_config):
    from serving.lead_features import FeatureSource

    path = tmp_path / "home" / "warehouse.duckdb"
    with Warehouse(path) as wh:
        ingest_files(wh, ingest_config, tmp_path / "q", **crm_files)
        # the latest timestamp is a resolution (2025-03-01), after the last activity
        assert data_end(wh.con) == pd.Timestamp("2025-03-01")
        expected = default_as_of(wh.con)
    assert expected == pd.Timestamp("2025-03-01 00:00:01")
    assert as_of_or_default(None, path) == expected
    source = FeatureSource(path, EngagementConfig())
    try:
        assert source.default_as_of() == expected
    finally:
        source.close()
    assert as_of_or_default("2025-02-01T00:00:00Z", path) == pd.Timestamp("2025-02-01")


def test_a_recorded_cutoff_is_where_the_data_ends(tmp_path, crm_files, ingest_config):
    from core.timestamps import export_cutoff, latest_timestamp, record_cutoff

    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_files(wh, ingest_config, tmp_path / "q", **crm_files)
        assert export_cutoff(wh.con) is None
        with pytest.raises(ValueError, match="the latest is 2025-03-01 00:00:00"):
            record_cutoff(wh.con, pd.Timestamp("2025-02-15"))
        assert export_cutoff(wh.con) is None
        record_cutoff(wh.con, pd.Timestamp("2025-03-31"))
        assert latest_timestamp(wh.con) == pd.Timestamp("2025-03-01")
        assert data_end(wh.con) == pd.Timestamp("2025-03-31")
        assert default_as_of(wh.con) == pd.Timestamp("2025-03-31")  # strictly before it counts
    path = tmp_path / "w.duckdb"
    assert as_of_or_default(None, path) == pd.Timestamp("2025-03-31")
    # a row newer than the cutoff (pushed by the CRM since the export) counts
    with Warehouse(path) as wh:
        wh.con.execute("UPDATE activities SET occurred_at = TIMESTAMP '2025-04-02 10:00:00' "
                       "WHERE activity_id = (SELECT min(activity_id) FROM activities)")
        assert data_end(wh.con) == pd.Timestamp("2025-04-02 10:00:00")
        assert default_as_of(wh.con) == pd.Timestamp("2025-04-02 10:00:01")


def test_ingest_as_of_records_the_cutoff_and_refuses_an_impossible_one(tmp_path, crm_files,
                                                                        monkeypatch):
    from click.testing import CliRunner

    from leadlens.cli import main

    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    args = ["ingest", "--leads", str(crm_files["leads"]), "--activities",
            str(crm_files["activities"]), "--reps", str(crm_files["reps"])]
    out = runner.invoke(main, [*args, "--as-of", "2025-01-15"])
    assert out.exit_code == 1 and "--as-of not recorded (the rows were loaded)" in out.output
    out = runner.invoke(main, [*args, "--as-of", "2025-04-01T00:00:00Z"])
    assert out.exit_code == 0, out.output
    assert "Export cutoff: 2025-04-01 00:00:00" in out.output
    assert as_of_or_default(None, current_warehouse(tmp_path / "home")) == \
        pd.Timestamp("2025-04-01")


def test_data_cutoff_setting_records_the_cutoff_and_as_of_wins(tmp_path, crm_files,
                                                                 monkeypatch):
    from click.testing import CliRunner

    from core.settings import ConfigError, parse_settings
    from leadlens.cli import main

    with pytest.raises(ConfigError, match=r"data\.cutoff"):
        parse_settings({"data": {"cutoff": "end of March"}})
    config = tmp_path / "leadlens.yaml"
    config.write_text("data:\n  cutoff: 2025-04-02\n")  # YAML reads a bare date as a date
    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    args = ["--config", str(config), "ingest", "--leads", str(crm_files["leads"]),
            "--activities", str(crm_files["activities"]), "--reps", str(crm_files["reps"])]
    out = runner.invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "Export cutoff: 2025-04-02 00:00:00" in out.output
    out = runner.invoke(main, [*args, "--as-of", "2025-04-03"])
    assert "Export cutoff: 2025-04-03 00:00:00" in out.output
    assert as_of_or_default(None, current_warehouse(tmp_path / "home")) == \
        pd.Timestamp("2025-04-03")
