"""MLflow writing: the experiment, runs that end KILLED on Ctrl-C or SIGTERM, model logging and
registration. Reading the registry lives in `core.registry`."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

import core
from core.model_bundle import META_FILE, ModelBundle, file_sha256, synthetic_rows
from core.names import BUNDLE_ARTIFACT, EXPERIMENT, RunTag, VersionTag
from core.processes import process_alive
from core.registry import configure
from core.settings import Runtime

ENTRY = Path(core.__file__).with_name("pyfunc_entry.py")


def setup(runtime: Runtime) -> str:
    """Point MLflow at the runtime's store and make sure the experiment exists; returns its id.

    With a local store (the embedded SQLite one, or any `sqlite:`/file URI) the artifacts sit
    under LEADLENS_HOME, never in the current folder.
    """
    configure(runtime.mlflow_uri)
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        reap_orphaned_runs(exp.experiment_id)
        return exp.experiment_id
    remote = runtime.mlflow_uri.split(":", 1)[0] in ("http", "https", "databricks")
    # a tracking server keeps its own artifact store; a local store keeps them in the home
    location = None if remote else runtime.mlflow_artifacts.as_uri()
    runtime.home.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


_STOP = threading.Event()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM and Ctrl-C into KeyboardInterrupt while training, so runs end as KILLED.

    Libraries that catch the interrupt themselves (DuckDB raises "Query interrupted") are
    covered too: any error raised after a stop was requested becomes a KeyboardInterrupt.
    """

    def _raise(signum: int, frame: Any) -> None:
        _STOP.set()
        raise KeyboardInterrupt(f"signal {signum}")

    _STOP.clear()
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        if _STOP.is_set():
            raise KeyboardInterrupt("interrupted") from err
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def tracked_run(name: str, experiment_id: str, nested: bool = False,
                tags: dict[str, str] | None = None) -> Iterator[Any]:
    """A run that ends FINISHED, FAILED on an error, or KILLED on an interrupt; tagged with its
    process and host, so a later command can tell a run killed outright (`reap_orphaned_runs`)."""
    tags = {**(tags or {}), RunTag.PID: str(os.getpid()), RunTag.HOST: socket.gethostname()}
    run = mlflow.start_run(run_name=name, experiment_id=experiment_id, nested=nested, tags=tags)
    try:
        yield run
    except BaseException as err:
        killed = isinstance(err, KeyboardInterrupt) or _STOP.is_set()
        mlflow.end_run("KILLED" if killed else "FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def reap_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark FAILED every RUNNING run started on this host by a process that no longer exists
    (a `leadlens train` killed with SIGKILL, or a machine that lost power); returns their ids.
    Runs of other hosts are left alone: their processes cannot be checked from here."""
    from mlflow import MlflowClient

    client = MlflowClient()
    host, reaped = socket.gethostname(), []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        pid = tags.get(RunTag.PID, "")
        if tags.get(RunTag.HOST) != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, RunTag.REAPED,
                       f"process {pid} ended without closing the run")
        client.set_terminated(run.info.run_id, "FAILED")
        reaped.append(run.info.run_id)
    return reaped


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested config as flat MLflow params (`train.lightgbm.num_leaves`)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else k, v))
        return out
    return {prefix: value if not isinstance(value, (list, tuple)) else list(value)}


def frame_digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """A content digest of the examples used (ids, times, labels): same data, same digest."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def log_examples(frame: pd.DataFrame, name: str, context: str, source: str) -> str:
    """`mlflow.log_input` for the examples of one split: schema, row count and digest, no rows
    (ids, times and labels only; no lead attributes)."""
    from mlflow.data.pandas_dataset import from_pandas

    cols = ["lead_id", "as_of", "label"]
    digest = frame_digest(frame, cols)
    with warnings.catch_warnings():  # a file path matches two equivalent local source types
        warnings.filterwarnings("ignore", message="The specified dataset source")
        schema = frame[cols].head(0).astype({"label": "float64"})
        ds = from_pandas(schema, source=source, name=name, digest=digest,
                         targets="label")
    mlflow.log_input(ds, context=context, tags={"rows": str(len(frame))})
    return digest


def log_and_register(bundle: ModelBundle, work_dir: Path, registered_name: str) -> int:
    """Log the bundle as a pyfunc model (from code, no pickle) and register a new version."""
    import lightgbm

    bundle_dir = bundle.save(work_dir / BUNDLE_ARTIFACT)
    example = synthetic_rows(bundle)
    probs = pd.DataFrame({"probability": bundle.predict(example)})
    signature = infer_signature(example, probs)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(ENTRY),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        code_paths=[str(ENTRY.parent)],
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
        pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"pandas=={pd.__version__}",
                          f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
    )
    version = int(info.registered_model_version)
    # the bundle's own digest, beside it in the registry: `bundle.json` holds the digests of
    # the model files, so the whole bundle is checked at every load (core.registry)
    mlflow.MlflowClient().set_model_version_tag(
        registered_name, str(version), VersionTag.BUNDLE_SHA256,
        file_sha256(bundle_dir / META_FILE))
    return version
