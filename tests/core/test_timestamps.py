"""One answer to "what is now?" for the CLI, the service and the rep report."""

from __future__ import annotations

import pandas as pd
import pytest

from core.settings import EngagementConfig
from core.timestamps import data_end, default_as_of, to_utc_naive
from core.warehouse import Warehouse
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
