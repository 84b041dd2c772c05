"""A LeadLens home copied to another folder works on its own: its models load from the copy and
new runs write into the copy, never into the original."""

from __future__ import annotations

import shutil
import sqlite3

import mlflow


def _locations(db) -> list[str]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute(
            "SELECT artifact_location FROM experiments WHERE name = 'leadlens' UNION ALL "
            "SELECT artifact_uri FROM runs UNION ALL SELECT storage_location FROM model_versions")]


def test_a_copied_home_reads_and_writes_its_own_artifacts(served_home, tmp_path):
    from core.registry import champion_version, configure, load_version
    from training.tracking import setup

    runtime, _, _ = served_home
    original = runtime.home
    before = sorted(p.name for p in (original / "mlartifacts").iterdir())
    copy = tmp_path / "moved-home"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("bentoml", "serve-*.log"))
    moved = type(runtime)(runtime.settings, copy, None)
    try:
        configure(moved.mlflow_uri)
        locations = _locations(copy / "mlflow.db")
        assert locations and all(str(copy) in loc for loc in locations), locations
        assert all(str(original) in loc for loc in _locations(original / "mlflow.db"))

        version = champion_version("leadlens-conversion")
        assert version is not None
        shutil.move(original / "mlartifacts", tmp_path / "original-artifacts-away")
        try:  # the copy's champion loads with the original's artifacts gone
            bundle = load_version("leadlens-conversion", version, tmp_path / "cache")
        finally:
            shutil.move(tmp_path / "original-artifacts-away", original / "mlartifacts")
        assert bundle.features

        experiment = setup(moved)  # what `leadlens train` does first
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_text("made in the copy", "note.txt")
        assert (copy / "mlartifacts" / run.info.run_id / "artifacts" / "note.txt").exists()
        assert sorted(p.name for p in (original / "mlartifacts").iterdir()) == before
    finally:
        configure(runtime.mlflow_uri)
