"""`bentoml build` packages a deployable Bento: every module the service imports is inside it,
the training code is not, and its API is the service's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROOMS = ("core", "ingest", "features", "reps", "training", "serving", "leadlens")


@pytest.mark.slow
def test_bentoml_build_packages_what_the_service_imports(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "True"}
    done = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", "bentofile.yaml",
                           "."], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "leadlens").glob("*/bento.yaml"))
    assert len(bentos) == 1
    root = bentos[0].parent
    src = root / "src"

    # the project modules a running service imports, asked of a fresh interpreter
    probe = ("import json, sys, serving.service; print(json.dumps(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in {ROOMS!r})))")
    imported = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env,
                                         capture_output=True, text=True, check=True).stdout)
    assert "serving.service" in imported and not any(m.startswith("training") for m in imported)
    for module in imported:
        rel = Path(*module.split("."))
        assert (src / rel.with_suffix(".py")).is_file() or (src / rel / "__init__.py").is_file(), \
            f"{module} is imported by the service but missing from the Bento"
    assert not (src / "training").exists() and not (src / "tests").exists()
    assert (src / "serving" / "ui" / "index.html").is_file()

    info = yaml.safe_load((root / "bento.yaml").read_text())
    assert info["service"] == "serving.service:LeadLens"
    api = yaml.safe_load((root / "apis" / "openapi.yaml").read_text())
    assert {"/score", "/explain", "/dropout_risk", "/reps"} <= set(api["paths"])
