"""The model registry as LeadLens reads it: which versions exist, which is `@champion`, and the
one way to turn a registered version into a `ModelBundle`.

Training, promotion, the scorer and the service all load models through `load_version`, so a lead
gets the same score wherever it is scored. Writing (logging, registering) lives in `training/`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.home_store import local_store_home, rebase
from core.model_bundle import META_FILE, ModelBundle, file_sha256, load_bundle
from core.names import BUNDLE_ARTIFACT, CHAMPION, EXPERIMENT, REGISTERED_NAMES, RunTag, VersionTag

log = logging.getLogger("leadlens.registry")

if TYPE_CHECKING:
    from mlflow import MlflowClient


def configure(tracking_uri: str, quick_fail: bool = True) -> None:
    """Point MLflow at the store; with `quick_fail`, an unreachable server fails in seconds,
    not after minutes of retries."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if quick_fail:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(tracking_uri)
    home = local_store_home(tracking_uri)
    if home is not None:
        rebase(home, EXPERIMENT)


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as the registry returns it: aliases, run, tags, creation."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    tags: dict[str, str]
    created: int


def _client() -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient()


def model_versions(name: str) -> list[VersionInfo]:
    """Every registered version of `name`, newest first (empty if the model is unknown)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        return []
    try:
        by_version: dict[str, list[str]] = {}
        for alias, ver in (client.get_registered_model(name).aliases or {}).items():
            by_version.setdefault(str(ver), []).append(alias)
    except MlflowException:
        by_version = {}
    out = [VersionInfo(v.name, int(v.version), tuple(sorted(by_version.get(str(v.version), []))),
                       v.run_id, dict(v.tags or {}), int(v.creation_timestamp or 0))
           for v in found]
    return sorted(out, key=lambda v: -v.version)


def skip_reason(kind: str) -> str | None:
    """Why the latest `leadlens train` that tried this model did not train it (its run's
    skip tag), or None when its latest attempt trained it or none was made."""
    import mlflow

    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return None
    runs = _client().search_runs(
        [exp.experiment_id], filter_string=f"tags.`{RunTag.MODEL}` = '{kind}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].data.tags.get(RunTag.SKIPPED) if runs else None


def champion_version(name: str) -> int | None:
    """The version holding `@champion`, or None when there is none. An unreachable registry
    raises (MlflowException), so callers can tell "no champion" from "cannot ask"."""
    from mlflow.exceptions import MlflowException

    try:
        return int(_client().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_version(name: str, version: int, cache_dir: Path | None = None) -> ModelBundle:
    """Download a registered version's bundle (plain files only), check it against the digest
    registered with it (`bundle.json`, which holds its model files' digests) and load it. A
    cached copy that fails the check is reported, dropped and downloaded again; a download that
    fails it is refused (ValueError naming the file)."""
    import mlflow

    base = Path(cache_dir or tempfile.mkdtemp(prefix="leadlens-model-"))
    dst = base / f"{name}-v{version}"
    try:
        expected = _client().get_model_version(name, str(version)).tags.get(
            VersionTag.BUNDLE_SHA256)
    except Exception as err:  # the registry unreachable: a cached copy still checks itself
        log.warning("cannot read %s v%s's registered digest (%s)", name, version,
                    type(err).__name__)
        expected = None
    folder = dst / "artifacts" / BUNDLE_ARTIFACT
    if folder.exists():
        try:
            _check_digest(folder / META_FILE, expected, name, version)
            bundle = load_bundle(folder)
        except ValueError as err:
            log.warning("cached copy of %s v%s is damaged (%s); downloading it again",
                        name, version, err)
            _discard(dst)
        else:
            return _labelled(bundle, name, version)
    # downloaded into a folder of its own and published by one rename: a poller and a
    # request loading the same version at once never see (or delete) each other's files
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=base))
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}/artifacts/{BUNDLE_ARTIFACT}",
            dst_path=str(tmp))
        _check_digest(tmp / "artifacts" / BUNDLE_ARTIFACT / META_FILE, expected, name, version)
        bundle = load_bundle(tmp / "artifacts" / BUNDLE_ARTIFACT)
        try:
            os.replace(tmp, dst)
        except OSError:  # published by another loader meanwhile: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _labelled(bundle, name, version)


def _labelled(bundle: ModelBundle, name: str, version: int) -> ModelBundle:
    bundle.meta.setdefault("registered_name", name)
    bundle.meta["version"] = int(version)
    return bundle


def _discard(folder: Path) -> None:
    """Remove a damaged cache folder: renamed away first (one atomic step), then deleted."""
    trash = folder.with_name(f".{folder.name}.damaged-{os.getpid()}-{id(folder)}")
    try:
        os.replace(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _check_digest(path: Path, expected: str | None, name: str, version: int) -> None:
    """Refuse a `bundle.json` whose SHA-256 differs from the one registered with the version
    (versions registered before digests were recorded have none to compare)."""
    if expected is None:
        return
    if not path.exists() or file_sha256(path) != expected:
        raise ValueError(f"{path}: its SHA-256 differs from the one registered with {name} "
                         f"v{version} (damaged or tampered): refused")


def _tag_float(v: str | None) -> float | None:
    try:
        f = float(v) if v is not None else math.nan
    except ValueError:
        return None
    return round(f, 4) if math.isfinite(f) else None


@dataclass(frozen=True)
class VersionRecord:
    """One registered version as people are shown it."""

    kind: str
    registered_name: str
    version: int
    aliases: list[str]
    test_roc_auc: float | None
    test_ece: float | None
    until: str | None
    promoted_at: str | None
    forced_reason: str | None
    leakage_flags: str


def version_records() -> list[VersionRecord]:
    """Every registered version of every model, newest first per model: aliases, out-of-time
    metrics, training window, promotion record and leakage flags (the dashboard's model page and
    `leadlens models` show these)."""
    out: list[VersionRecord] = []
    for kind, name in REGISTERED_NAMES.items():
        for v in model_versions(name):
            t = v.tags
            out.append(VersionRecord(
                kind=kind, registered_name=name, version=v.version, aliases=list(v.aliases),
                test_roc_auc=_tag_float(t.get(VersionTag.TEST_ROC_AUC)),
                test_ece=_tag_float(t.get(VersionTag.TEST_ECE)),
                until=t.get(VersionTag.UNTIL),
                promoted_at=t.get(VersionTag.PROMOTED_AT),
                forced_reason=t.get(VersionTag.FORCED_REASON),
                leakage_flags=t.get(VersionTag.LEAKAGE_FLAGS, "none"),
            ))
    return out
