"""The UCI bank marketing data (real, CC BY 4.0) through the whole product: ingest with the
shipped mapping, train, promote, score, serve one request, and the LightGBM / logistic
regression comparison. AUC floors are the measured figures (README) minus a small margin.

The full file is vendored gzipped in `tests/data/bank_marketing/` (CC BY 4.0, attribution
beside it); LEADLENS_BANK_MARKETING points the test at another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from leadlens.cli import main

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "configs" / "sources" / "bank_marketing.yaml"
CONFIG = REPO / "configs" / "bank_marketing.yaml"
SAMPLE = REPO / "tests" / "data" / "bank_marketing" / "bank-additional-every10th.csv"
FULL = REPO / "tests" / "data" / "bank_marketing" / "bank-additional-full.csv.gz"


def _full_file() -> Path:
    path = Path(os.environ.get("LEADLENS_BANK_MARKETING", FULL))
    if not path.is_file():
        pytest.fail(f"the bank marketing data is missing at {path} (it is vendored at {FULL}; "
                    "LEADLENS_BANK_MARKETING overrides the path)")
    return path


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The full file ingested, trained and promoted through the CLI in a fresh home."""
    home = tmp_path_factory.mktemp("bank-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LEADLENS_HOME", str(home))
    mp.setenv("LEADLENS_CONFIG", str(CONFIG))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()

    def run(*args: str, status: int = 0):
        out = runner.invoke(main, list(args), catch_exceptions=False)
        assert out.exit_code == status, out.output
        return out.output

    outputs = {
        "ingest": run("ingest", "--source", str(MAPPING), "--leads", str(_full_file())),
        "train": run("train"),
        "promote": run("promote"),
    }
    yield home, run, outputs
    mp.undo()


def _test_auc(output: str, name: str) -> tuple[float, float]:
    line = next(x for x in output.splitlines() if x.strip().startswith(name))
    lgb = float(line.split("test AUC ")[1].split(" ")[0])
    logistic = float(line.split("(logistic ")[1].split(",")[0])
    return lgb, logistic


def test_whole_path_on_the_full_file(bank, tmp_path):
    _home, run, out = bank
    assert "leads       read    41,188  loaded    41,188" in out["ingest"]
    assert "left out as leaky: duration" in out["ingest"]
    # no activity log: the dropout models are skipped, not failed
    assert "dropout: not trained (the warehouse holds no activity log" in out["train"]
    conv, conv_lr = _test_auc(out["train"], "leadlens-conversion")
    quality, _ = _test_auc(out["train"], "leadlens-lead-quality")
    assert conv >= 0.69 and quality >= 0.63  # measured 0.710 and 0.660 on the last 20%
    # validation (the 10% before the test) prefers LightGBM to the regression, the blend of
    # the two more; the blend holds up on the drifted test (LightGBM alone: 0.612)
    chosen = next(x for x in out["train"].splitlines() if x.startswith("[conversion] validation"))
    assert chosen.endswith("serving blend"), chosen
    assert conv >= conv_lr - 0.01
    assert "leadlens-conversion: v1 is now @champion" in out["promote"]
    assert ("dropout: no versions to promote; skipped (the warehouse holds no activity log"
            in out["promote"])

    # batch scoring of new calls in the export's own format (no outcome column)
    new = pd.read_csv(SAMPLE, sep=";", dtype=str).tail(200).drop(columns=["y"])
    new_path = tmp_path / "new calls.csv"
    new.to_csv(new_path, sep=";", index=False)
    scored_path = tmp_path / "scored.csv"
    run("score", "--source", str(MAPPING), "--input", str(new_path), "--out", str(scored_path),
        "--explain", "3")
    scored = pd.read_csv(scored_path)
    assert len(scored) == 200 and scored["score"].between(0, 1).all()
    assert scored["score"].nunique() > 10
    assert not scored["reason_1"].str.contains("duration", case=False).any()


def test_served_over_http(bank):
    from tests.serving.test_http import KEY, _start, _stop, _wait_ready

    home, _run, _out = bank
    proc, base = _start(home, {"LEADLENS_CONFIG": str(CONFIG)})
    try:
        _wait_ready(base)
        headers = {"Authorization": f"Bearer {KEY}"}
        r = httpx.post(f"{base}/score", headers=headers, timeout=30,
                       json={"leads": [{"lead_id": "bank-41000"}], "explain": 3})
        assert r.status_code == 200, r.text
        res = r.json()["results"][0]
        assert 0 <= res["score"] <= 1 and len(res["reasons"]) == 3
        # no activity log, so no dropout model: a clear 404, not a crash
        r = httpx.post(f"{base}/dropout_risk", headers=headers, timeout=30,
                       json={"leads": [{"lead_id": "bank-41000"}]})
        assert r.status_code == 404 and "no dropout model" in r.text
        # the real cause, as training recorded it
        assert "the warehouse holds no activity log" in r.text
        model = httpx.get(f"{base}/model", headers=headers, timeout=30).json()
        assert set(model["models"]) == {"conversion"}
        assert any("dropout" in n for n in model["notes"])
    finally:
        _stop(proc)


def test_lightgbm_against_logistic_regression(bank):
    _home, run, _out = bank
    table = run("evaluate", "--folds", "5")
    rows = {}
    for line in [x for x in table.splitlines() if x.startswith("| ")][1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = float(cells[2].split(" ")[0])
    cv_lgb, cv_lr = rows[("5-fold random CV", "lightgbm")], rows[("5-fold random CV", "logistic")]
    time_lgb, time_lr = rows[("time split", "lightgbm")], rows[("time split", "logistic")]
    # measured with the regularised defaults: time split 0.647 vs 0.756 (see the README)
    assert cv_lgb >= 0.79 and cv_lr >= 0.775 and cv_lgb > cv_lr
    assert time_lgb >= 0.62 and time_lr >= 0.73
    # the gap the modeling notes warn about: random CV flatters time-ordered data
    assert cv_lgb - time_lgb > 0.08


def test_leakage_audit_flags_duration_when_a_user_keeps_it(tmp_path, monkeypatch):
    mapping = yaml.safe_load(MAPPING.read_text())
    mapping["exclude"]["leaky"] = []
    leaky_mapping = tmp_path / "bank_with_duration.yaml"
    leaky_mapping.write_text(yaml.safe_dump(mapping))
    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEADLENS_CONFIG", str(CONFIG))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    out = runner.invoke(main, ["ingest", "--source", str(leaky_mapping), "--leads",
                               str(_full_file())], catch_exceptions=False)
    assert out.exit_code == 0 and "leaky" not in out.output
    out = runner.invoke(main, ["train", "--model", "conversion"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("  leadlens-conversion v1"))
    assert "possible leakage: duration" in line
