"""Personal data in free text: a canary email address and phone number planted in an export's
text columns must not reach anything LeadLens writes or answers, through ingest, train,
promote, score and serve (the whole home is searched, byte by byte)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml
from click.testing import CliRunner

from core.free_text import mask_free_text, mask_text
from leadlens.cli import main
from tests.leadlens.test_flat_exports import MAPPING, _export
from tests.serving.test_http import KEY, _start, _stop, _wait_ready

CANARY_EMAIL = "canary.leak7@example.org"
CANARY_PHONE = "+1 555 013 2468"
NEEDLES = (b"canary.leak7", b"555 013 2468", b"013 2468")


def test_masking_catches_written_forms_and_leaves_ids_and_amounts():
    assert mask_text(f"mail {CANARY_EMAIL} or call {CANARY_PHONE}") == \
        "mail [email] or call [phone]"
    for phone in ("(555) 013-2468", "555.013.2468", "+44 20 7946 0958", "020 7946 0958"):
        assert mask_text(f"tel {phone}.") == "tel [phone].", phone
    for kept in ("2025-01-01", "order 1234567890", "ACC-2024-001", "v1.2.3", "12.5"):
        assert mask_text(kept) == kept
    frame = pd.DataFrame({"lead_id": [CANARY_EMAIL, "x"], "notes": [CANARY_EMAIL, "fine"],
                          "n": [1.0, 2.0]})
    masked, counts = mask_free_text(frame, {"lead_id"})
    assert masked["notes"].tolist() == ["[email]", "fine"] and counts == {"notes": 1}
    assert masked["lead_id"].iloc[0] == CANARY_EMAIL  # ids are left to the CRM


def _leaks(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n.decode()}" for n in NEEDLES if n in data]
    return found


def test_a_planted_canary_reaches_nothing(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LEADLENS_HOME", str(home))
    monkeypatch.delenv("LEADLENS_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> str:
        out = runner.invoke(main, list(args), catch_exceptions=False)
        assert out.exit_code == 0, out.output
        return out.output

    frame = _export(2000, seed=11)
    rng = np.random.default_rng(2)
    # free text, mostly unique (a note per lead), the canary in some of it
    frame["Notes"] = [f"spoke on day {i}, follow up" for i in range(len(frame))]
    frame.loc[::97, "Notes"] = f"asked to mail {CANARY_EMAIL} or call {CANARY_PHONE}"
    # a low-cardinality column that is a model input: the canary in one of its categories
    frame["Referrer"] = rng.choice(["partner", "event", f"ask {CANARY_EMAIL}"], len(frame))
    data, spec = tmp_path / "export.csv", tmp_path / "export.yaml"
    frame.to_csv(data, index=False)
    spec.write_text(yaml.safe_dump(MAPPING))

    out = run("ingest", "--source", str(spec), "--leads", str(data))
    assert "email addresses or phone numbers masked in free text: notes" in out
    assert "referrer (" in out
    out = run("train", "--model", "conversion")
    assert "left out as free text" in out and "notes" in out.split("left out as free text")[1]
    run("promote", "--model", "conversion", "--force", "--reason", "canary test")
    new = frame.drop(columns=["Status"]).tail(50)
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    scored = tmp_path / "scored.csv"
    run("score", "--source", str(spec), "--input", str(new_path), "--out", str(scored),
        "--explain", "5")
    assert not any(n in scored.read_bytes() for n in NEEDLES)

    proc, base = _start(home)
    try:
        _wait_ready(base)
        headers = {"Authorization": f"Bearer {KEY}"}
        lead = {"lead_id": "new-1", "created_at": "2024-12-30T10:00:00", "source": "web",
                "attributes": {"industry": "tech", "employees": 120,
                               "referrer": f"ask {CANARY_EMAIL}",
                               "notes": f"call {CANARY_PHONE}"}}
        r = httpx.post(f"{base}/score", headers=headers, timeout=30,
                       json={"leads": [lead], "explain": 10})
        assert r.status_code == 200, r.text
        assert not any(n in r.content for n in NEEDLES), r.text
        r = httpx.post(f"{base}/score", headers=headers, timeout=30,
                       json={"leads": [{"lead_id": "L1940"}], "explain": 10})
        assert r.status_code == 200 and not any(n in r.content for n in NEEDLES)
    finally:
        _stop(proc)
    assert _leaks(home) == []
