from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from core.settings import ConfigError, Settings, load_runtime, load_settings, parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_shipped_yaml_equals_the_built_in_defaults() -> None:
    assert load_settings(REPO / "configs" / "leadlens.yaml") == Settings()


def test_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ingest:\n  max_quarantine_shares: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "ingest.max_quarantine_shares" in str(err.value)
    assert "unknown key" in str(err.value)
    assert str(cfg) in str(err.value)


def test_out_of_range_and_wrong_type_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"ingest\.max_quarantine_share"):
        parse_settings({"ingest": {"max_quarantine_share": 2.0}})
    with pytest.raises(ConfigError, match=r"simulate\.leads"):
        parse_settings({"simulate": {"leads": "many"}})


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"engagement": {"windows_days": [3, 14]}}))
    s = load_settings(cfg)
    assert s.engagement.windows_days == (3, 14)
    assert s.engagement.dormant_days == 30
    assert s.ingest == Settings().ingest


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.ingest.max_quarantine_share = 0.5  # type: ignore[misc]


def test_home_and_config_come_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("simulate:\n  leads: 123\n")
    rt = load_runtime(env={"LEADLENS_HOME": str(tmp_path / "h"), "LEADLENS_CONFIG": str(cfg)})
    assert rt.home == (tmp_path / "h").resolve()
    assert rt.warehouse_path == rt.home / "warehouse.duckdb"  # no snapshot published yet
    assert rt.settings.simulate.leads == 123


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")
