"""Promotion gates on a real MLflow store: first champion, a worse candidate refused with its
reasons, rollback, and a forced promotion that records why."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from core.names import VersionTag
from core.registry import champion_version, load_version, model_versions, version_records
from core.settings import LightGBMConfig, PromoteConfig, Settings, TrainConfig
from training.pipeline import train_models
from training.promote import PromotionError, promote


def _blocking(d) -> list[str]:
    return [r for r in d.reasons if not r.startswith("note:")]


def test_promotion_lifecycle(trained):
    runtime, report = trained
    first = report.results["conversion"].version

    d = promote(runtime, "conversion")
    assert d.promoted and _blocking(d) == ["passed every gate"]
    assert any(r.startswith("note: judged on ") and "positives and" in r for r in d.reasons)
    assert champion_version("leadlens-conversion") == first
    # a replay-trained candidate is judged by its replay: the figure training reported
    assert d.candidate_metrics["roc_auc"] == pytest.approx(
        report.results["conversion"].metrics["lightgbm"]["roc_auc"], abs=1e-4)
    assert promote(runtime, "conversion").reasons == [f"v{first} already holds @champion"]

    # a deliberately weak candidate: two leaves, three rounds
    weak_settings = Settings(train=TrainConfig(
        search_trials=0, linear_candidate=False,
        lightgbm=LightGBMConfig(num_leaves=2, max_rounds=3, early_stopping_rounds=1)))
    weak_rt = type(runtime)(weak_settings, runtime.home, None)
    weak = train_models(weak_rt, kinds=("conversion",), say=lambda _m: None)
    second = weak.results["conversion"].version
    assert second == first + 1

    d = promote(runtime, "conversion")
    assert not d.promoted and d.candidate == second and d.champion == first
    assert any("worse than the champion's" in r for r in d.reasons), d.reasons
    assert d.champion_metrics["roc_auc"] > d.candidate_metrics["roc_auc"]
    # the champion learned the outcomes of this test's window (same data end): it is compared
    # by its own replay, never rescored on answers it has seen
    assert d.champion_on_own_replay and "on its own replay" in d.summary()
    assert d.champion_metrics == load_version("leadlens-conversion", first).meta["test_metrics"]
    assert champion_version("leadlens-conversion") == first

    # absolute gates: an AUC floor no model reaches blocks even the first choice
    strict = type(runtime)(Settings(promote=PromoteConfig.model_validate(
        {"min_auc": {"conversion": 0.99}})), runtime.home, None)
    d = promote(strict, "conversion", version=second)
    assert any("below the floor 0.99" in r for r in d.reasons)

    # forcing needs a reason and records it on the version
    with pytest.raises(PromotionError, match="--reason"):
        promote(runtime, "conversion", force=True)
    d = promote(runtime, "conversion", force=True, reason="demo of a forced move")
    assert d.promoted and d.forced
    tags = MlflowClient().get_model_version("leadlens-conversion", str(second)).tags
    assert tags[VersionTag.FORCED_REASON] == "demo of a forced move"
    assert tags[VersionTag.PROMOTED_FROM] == str(first)
    # what the dashboard's model page and `leadlens models` read back
    shown = {(r.registered_name, r.version): r for r in version_records()}
    assert shown[("leadlens-conversion", second)].forced_reason == "demo of a forced move"
    assert shown[("leadlens-conversion", second)].aliases == ["champion"]

    # rollback to the first version: absolute gates only
    d = promote(runtime, "conversion", version=first)
    assert d.promoted and "rollback" in d.reasons[-1]
    assert champion_version("leadlens-conversion") == first
    listed = {v.version: v.aliases for v in model_versions("leadlens-conversion")}
    assert listed[first] == ("champion",) and listed[second] == ()


def test_promote_errors_name_the_problem(trained):
    runtime, _ = trained
    with pytest.raises(PromotionError, match="has no version 99"):
        promote(runtime, "dropout", version=99)
    with pytest.raises(PromotionError, match="unknown model"):
        promote(runtime, "churn")


def test_noise_gates_refuse_a_candidate_credibly_below_logistic_regression():
    """The gate reads the interval stored at training: entirely below zero refuses; an
    interval that crosses zero passes; calibration is judged by its interval, and only with
    enough positives."""
    import numpy as np

    from core.settings import PromoteConfig
    from training.promote import Decision, _noise_gates

    gates = PromoteConfig(max_ece=0.05, min_positives_ece=30)
    y = np.array([0, 1])

    def judge(noise: dict, ece: float = 0.02) -> list[str]:
        d = Decision("leadlens-conversion", 2, 1, promoted=False)
        _noise_gates(d, gates, noise, {"ece": ece, "roc_auc": 0.8}, y)
        return d.reasons

    base = {"auc_vs_logistic": -0.014, "auc_vs_logistic_low": -0.026,
            "auc_vs_logistic_high": -0.003, "ece_low": 0.01, "ece_high": 0.04,
            "positives": 159, "negatives": 2607}
    worse = judge(base)
    assert worse[0] == "note: judged on 159 positives and 2607 negatives"
    assert any("credibly below the logistic baseline's: difference -0.0140 (90% interval "
               "-0.0260 to -0.0030)" in r for r in worse)
    assert all(r.startswith("note:") for r in judge({**base, "auc_vs_logistic_high": 0.004}))
    # an ECE whose interval lies above the ceiling blocks; one that reaches under it does not
    assert any("even at the low end of its 90% interval (0.0600)" in r for r in judge(
        {**base, "auc_vs_logistic_high": 0.01, "ece_low": 0.06}, ece=0.08))
    assert all(r.startswith("note:") for r in judge(
        {**base, "auc_vs_logistic_high": 0.01, "ece_low": 0.04}, ece=0.08))
    few = judge({**base, "auc_vs_logistic_high": 0.01, "ece_low": 0.2, "positives": 12},
                ece=0.3)
    assert any("calibration not judged: 12 positives" in r for r in few)
    assert all(r.startswith("note:") for r in few)


def test_a_run_killed_outright_is_reaped_and_its_version_never_promoted(trained):
    """`kill -9` during training leaves the run RUNNING: the next command marks it FAILED
    (its process is gone) and promotion refuses its version, even forced."""
    import os
    import socket
    import subprocess
    import sys

    from core.names import RunTag
    from training.tracking import setup

    runtime, _report = trained
    experiment_id = setup(runtime)
    client = MlflowClient()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    run = client.create_run(experiment_id, tags={RunTag.PID: gone.stdout.strip(),
                                                 RunTag.HOST: socket.gethostname(),
                                                 RunTag.MODEL: "dropout"})
    name = "leadlens-dropout"
    source = model_versions(name)[0]
    orphan = client.create_model_version(
        name, client.get_model_version(name, str(source.version)).source, run.info.run_id)
    try:
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        setup(runtime)  # what every train and promote runs first
        reaped = client.get_run(run.info.run_id)
        assert reaped.info.status == "FAILED"
        assert "ended without closing the run" in reaped.data.tags[RunTag.REAPED]
        with pytest.raises(PromotionError, match="ended FAILED, not FINISHED"):
            promote(runtime, "dropout", version=int(orphan.version), force=True,
                    reason="should not matter")
        # a live process's run is left alone
        alive = client.create_run(experiment_id, tags={RunTag.PID: str(os.getpid()),
                                                       RunTag.HOST: socket.gethostname()})
        setup(runtime)
        assert client.get_run(alive.info.run_id).info.status == "RUNNING"
        client.set_terminated(alive.info.run_id, "FINISHED")
    finally:
        client.delete_model_version(name, orphan.version)


def test_every_load_checks_the_registered_digest_and_rebuilds_a_damaged_cache(trained, tmp_path,
                                                                            caplog):
    from core.registry import load_version
    from training.tracking import setup

    runtime, report = trained
    setup(runtime)
    name, version = "leadlens-lead-quality", report.results["lead_quality"].version
    client = MlflowClient()
    digest = client.get_model_version(name, str(version)).tags[VersionTag.BUNDLE_SHA256]
    assert len(digest) == 64
    first = load_version(name, version, cache_dir=tmp_path)
    cached = next(tmp_path.rglob("bundle.json"))
    cached.write_text(cached.read_text().replace('"kind"', '"kind" ', 1))
    caplog.set_level("WARNING", logger="leadlens.registry")
    again = load_version(name, version, cache_dir=tmp_path)  # damaged cache: downloaded again
    assert again.features == first.features
    assert "is damaged" in caplog.text and "downloading it again" in caplog.text
    client.set_model_version_tag(name, str(version), VersionTag.BUNDLE_SHA256, "0" * 64)
    try:
        with pytest.raises(ValueError, match=r"bundle\.json: its SHA-256 differs from the one "
                                             r"registered with leadlens-lead-quality"):
            load_version(name, version, cache_dir=tmp_path / "fresh")
    finally:
        client.set_model_version_tag(name, str(version), VersionTag.BUNDLE_SHA256, digest)


def test_loaders_of_one_version_at_once_do_not_trip_over_each_other(trained, tmp_path):
    """The service's poller and a request can load the same version into the model cache at
    the same moment: each downloads into a folder of its own and publishes it by one rename."""
    from concurrent.futures import ThreadPoolExecutor

    from core.registry import load_version
    from training.tracking import setup

    runtime, report = trained
    setup(runtime)
    version = report.results["dropout"].version
    with ThreadPoolExecutor(4) as pool:
        bundles = list(pool.map(lambda _i: load_version("leadlens-dropout", version,
                                                        cache_dir=tmp_path), range(8)))
    assert all(b.features == bundles[0].features for b in bundles)
    assert [p.name for p in tmp_path.iterdir()] == [f"leadlens-dropout-v{version}"]


def test_the_calibration_ceiling_does_not_keep_a_champion_further_off():
    """A candidate refused on calibration alone is let through when the champion, on the same
    test leads, is above the ceiling too (the low end of its interval); not otherwise."""
    import numpy as np

    from training.promote import Decision, _noise_gates

    gates = PromoteConfig(max_ece=0.05, min_positives_ece=30)
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.02, 0.3, 4000)
    y = (rng.random(4000) < p_true).astype(float)
    refusal = ("calibration error 0.0850 is above the ceiling 0.05 even at the low end of its "
               "90% interval (0.0727)")

    noise = {"auc_vs_logistic": 0.01, "auc_vs_logistic_low": -0.01,
             "auc_vs_logistic_high": 0.03, "ece_low": 0.0727, "ece_high": 0.1,
             "positives": int(y.sum()), "negatives": int(len(y) - y.sum())}

    def judge(champion_scores: np.ndarray, positives_y: np.ndarray = y) -> list[str]:
        cm = {"ece": 0.085, "roc_auc": 0.8}
        d = Decision("leadlens-conversion", 10, 9, promoted=False, candidate_metrics=cm)
        _noise_gates(d, gates, noise, cm, positives_y, lambda: champion_scores)
        return d.reasons

    further_off = judge(np.clip(p_true * 1.8, 0, 1))  # the base rate moved: scores too high
    assert _blocking_text(further_off) == []
    assert any("the champion v9 is further off on these leads" in r for r in further_off)
    assert _blocking_text(judge(p_true)) == [refusal]  # a calibrated champion: still refused
    # above the ceiling but not as far off as the candidate: still refused
    assert _blocking_text(judge(np.clip(p_true * 1.45, 0, 1))) == [refusal]
    few = np.zeros(4000)
    few[:10] = 1  # too few positives to judge the champion's calibration: still refused
    assert _blocking_text(judge(np.full(4000, 0.5), few)) == [refusal]
    # without a newer candidate (no champion scores given), the ceiling refuses as before
    d = Decision("leadlens-conversion", 10, 9, promoted=False)
    _noise_gates(d, gates, noise, {"ece": 0.085, "roc_auc": 0.8}, y)
    assert _blocking_text(d.reasons) == [refusal]


def _blocking_text(reasons: list[str]) -> list[str]:
    return [r for r in reasons if not r.startswith("note:")]
