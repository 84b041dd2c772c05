"""Loading the `@champion` models the answering side serves."""

from __future__ import annotations

from core.model_bundle import ModelBundle
from core.names import REGISTERED_NAMES
from core.registry import champion_version, configure, load_version
from core.settings import Runtime
from serving.scorer import Scorer, feature_labels


class NoChampion(LookupError):
    """No `@champion` version to serve (the message says what to run)."""


def champion_bundle(runtime: Runtime, kind: str) -> ModelBundle:
    """`kind`'s `@champion` bundle, loaded through the shared bundle loader (cached in the home);
    NoChampion saying what to run when there is none."""
    configure(runtime.mlflow_uri)
    name = REGISTERED_NAMES[kind]
    version = champion_version(name)
    if version is None:
        raise NoChampion(f"{name} has no @champion: run `leadlens train` and "
                         "`leadlens promote` first")
    return load_version(name, version, cache_dir=runtime.home / "model-cache")


def load_champion(runtime: Runtime, kind: str, attributes: list[str]) -> Scorer:
    """The scorer for `kind`'s `@champion` (`champion_bundle`)."""
    labels = feature_labels(runtime.settings.engagement, attributes)
    return Scorer(champion_bundle(runtime, kind), runtime.settings.serve, labels)
