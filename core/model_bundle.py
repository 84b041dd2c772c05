"""A trained LeadLens model as plain files, and the one loader every reader goes through.

A bundle is a folder with the native LightGBM text model (`model.txt`), the calibrator and the
input schema (`bundle.json`). Nothing is pickled, so loading a bundle from the registry never runs
code from it. Training writes bundles; the scorer, promotion and reports read them with
`load_bundle`, so a lead gets the same score wherever it is scored.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from core.blend_model import BLEND_FILE, BlendModel
from core.linear_model import LINEAR_FILE, LinearModel
from core.values import is_missing

BUNDLE_FORMAT = 1
MODEL_FILE = "model.txt"
META_FILE = "bundle.json"
MODEL_FILES = (MODEL_FILE, LINEAR_FILE, BLEND_FILE)
"""Every file a bundle's booster may be stored in (LightGBM, linear, blend weight)."""
CHECK_ROWS = 8
"""Made-up rows whose raw scores a bundle records at saving and must reproduce at loading."""


@dataclass(frozen=True)
class Calibrator:
    """A strictly increasing map from the booster's raw score (log-odds) to a probability.

    Knots `x`, `y` (centered isotonic regression: linear between knots, flat outside them),
    blended with a small share `platt_weight` of a logistic curve on the raw score (`platt`:
    slope, intercept). The blend keeps every distinct raw score distinct, so ranks and reasons
    survive calibration, and no score is exactly 0 or 1. Plain arrays, never a pickle; a bundle
    written before the blend existed has no `platt` and maps through the knots alone.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    platt: tuple[float, float] | None = None
    platt_weight: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities for raw scores (log-odds)."""
        p = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.platt is None or self.platt_weight <= 0:
            return p
        slope, intercept = self.platt
        w = self.platt_weight
        return (1.0 - w) * p + w * expit(slope * np.asarray(raw, dtype=np.float64) + intercept)

    def to_json(self) -> dict[str, Any]:
        """The calibrator as the bundle stores it."""
        return {"x": list(self.x), "y": list(self.y),
                "platt": list(self.platt) if self.platt is not None else None,
                "platt_weight": self.platt_weight}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        """Read a stored calibrator; a malformed one raises ValueError naming what is wrong."""
        x, y = tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"])
        if not x or len(x) != len(y) or any(b < a for a, b in pairwise(x)) \
                or any(b < a for a, b in pairwise(y)) or not all(0.0 <= v <= 1.0 for v in y):
            raise ValueError("calibrator knots must be non-empty, sorted and within [0, 1]")
        platt = data.get("platt")
        weight = float(data.get("platt_weight", 0.0))
        if platt is not None and (len(platt) != 2 or float(platt[0]) <= 0 or
                                  not 0.0 <= weight < 1.0):
            raise ValueError("calibrator logistic part must have a positive slope and a "
                             "weight in [0, 1)")
        return cls(x, y, (float(platt[0]), float(platt[1])) if platt is not None else None,
                   weight)


def encode(frame: pd.DataFrame, features: tuple[str, ...] | list[str],
           categories: dict[str, tuple[str, ...]], what: str = "model") -> np.ndarray:
    """The float64 design matrix: numeric columns as they are, categoricals as vocabulary codes
    (an unseen or missing category becomes missing). Raises on a missing column."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"{what} input lacks columns: {', '.join(missing)}")
    if len(frame) <= 64:  # a lead or a few per request: plain Python beats pandas machinery
        out = np.empty((len(frame), len(features)), dtype=np.float64)
        table = frame[list(features)].to_numpy(dtype=object)
        for j, name in enumerate(features):
            if name in categories:
                lookup = _vocabulary_index(categories[name])
                out[:, j] = [np.nan if is_missing(v) else lookup.get(str(v), np.nan)
                             for v in table[:, j]]
            else:
                out[:, j] = [_to_float(v) for v in table[:, j]]
        return out
    # filled column by column, so column-major: ten times faster to fill than row-major for
    # large batches, and LightGBM predicts from it directly (about 4% slower than row-major)
    out = np.empty((len(frame), len(features)), dtype=np.float64, order="F")
    for j, name in enumerate(features):
        col = frame[name]
        if name in categories:
            codes = pd.Index(categories[name]).get_indexer(col.astype("string").fillna("\0"))
            out[:, j] = np.where(codes < 0, np.nan, codes)
        elif col.dtype.kind in "fiub":
            out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy(
                na_value=np.nan)
    return out


def _to_float(v: object) -> float:
    """A cell as float64, missing or unreadable as NaN (like `pd.to_numeric(errors="coerce")`)."""
    if is_missing(v):
        return np.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # an integer beyond a double: unreadable
        return np.nan


@functools.lru_cache(maxsize=256)
def _vocabulary_index(vocab: tuple[str, ...]) -> dict[str, float]:
    return {v: float(i) for i, v in enumerate(vocab)}


OUTSIDE_RANGE_SHARE = 0.2
"""Above this share of rows outside the training range, answers warn (scoring) and training
calls an input clock-like."""


def coverage_warning(coverage: dict[str, float]) -> str | None:
    """A sentence when too many scored leads lie outside the training range, else None."""
    over = {k: v for k, v in coverage.items() if v > OUTSIDE_RANGE_SHARE}
    if not over:
        return None
    return ("scores are extrapolated for many leads: " + ", ".join(
        f"{v:.0%} outside the training range of {k}" for k, v in over.items())
        + "; retrain on more recent or longer history")


@dataclass
class ModelBundle:
    """A fitted booster (LightGBM, or a logistic regression in its shape) with its input schema
    and calibrator."""

    kind: str
    booster: lgb.Booster | LinearModel | BlendModel
    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    calibrator: Calibrator
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def categorical(self) -> tuple[str, ...]:
        """The input features encoded as categories, in feature order."""
        return tuple(f for f in self.features if f in self.categories)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The float64 design matrix for `frame` (see `encode`)."""
        return encode(frame, self.features, self.categories, self.kind)

    def raw_score(self, x: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Log-odds from the booster for a design matrix."""
        # a dense matrix in, an ndarray out (LightGBM's return type also covers sparse input)
        return cast(np.ndarray, self.booster.predict(x, raw_score=True, num_threads=num_threads))

    def predict(self, frame: pd.DataFrame, num_threads: int = 0) -> np.ndarray:
        """Calibrated probabilities, one per row of `frame`."""
        return self.calibrator(self.raw_score(self.matrix(frame), num_threads))

    def contributions(self, x: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Exact SHAP values in log-odds (TreeSHAP for LightGBM), shape (rows, features + 1); the
        last column is the base value, and each row sums to the raw score."""
        # a dense matrix in, an ndarray out (LightGBM's return type also covers sparse input)
        return cast(np.ndarray, self.booster.predict(x, pred_contrib=True,
                                                     num_threads=num_threads))

    def coverage(self, frame: pd.DataFrame) -> dict[str, float]:
        """Per input whose training range the bundle records (lead age, days since the last
        touch): the share of `frame`'s rows outside it (missing values count as inside)."""
        if not len(frame):
            return {}
        return {name: float(flags.mean()) for name, flags in self.outside(frame).items()}

    def outside(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per input whose training range the bundle records and `frame` holds: whether each
        row lies outside it (missing values count as inside)."""
        out = {}
        for name, (low, high) in self.meta.get("training_range", {}).items():
            if name in frame.columns:
                values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
                out[name] = (values < low) | (values > high)
        return out

    def save(self, directory: Path) -> Path:
        """Write `model.txt` and `bundle.json` into `directory` (created if needed); returns it."""
        directory.mkdir(parents=True, exist_ok=True)
        for stale in MODEL_FILES:  # a folder reused for another model type
            (directory / stale).unlink(missing_ok=True)
        self.booster.save_model(str(directory / MODEL_FILE))
        check = synthetic_rows(self, CHECK_ROWS)
        meta = {
            "format": BUNDLE_FORMAT,
            "model": model_type(self.booster),
            "kind": self.kind,
            "features": list(self.features),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "calibrator": self.calibrator.to_json(),
            "meta": self.meta,
            # checked at load: each model file's digest, and the raw scores of made-up rows
            "integrity": {"sha256": {f: file_sha256(directory / f) for f in MODEL_FILES
                                     if (directory / f).exists()},
                          "check_scores": [float(v) for v in self.raw_score(self.matrix(check))]},
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str),
                                           encoding="utf-8")
        return directory


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_files(directory: Path, integrity: dict[str, Any]) -> None:
    """Refuse a bundle whose model files differ from those saved, naming the file: checked
    before any is parsed (a truncated LightGBM file can abort the process)."""
    for name, digest in (integrity.get("sha256") or {}).items():
        if name not in MODEL_FILES:
            raise ValueError(f"{directory}: unknown file {name!r} in the integrity record")
        path = directory / name
        if not path.exists() or file_sha256(path) != digest:
            raise ValueError(f"{path}: its SHA-256 differs from the one recorded when the "
                             "model was saved (damaged or tampered): refused")


def _check_scores(directory: Path, bundle: ModelBundle, integrity: dict[str, Any]) -> None:
    """Refuse a bundle whose raw scores on the made-up check rows differ from those recorded
    at saving (a tampered model that still parses)."""
    stored = integrity.get("check_scores")
    if stored is not None:
        again = bundle.raw_score(bundle.matrix(synthetic_rows(bundle, CHECK_ROWS)))
        if len(again) != len(stored) or not np.allclose(again, stored, rtol=1e-9, atol=1e-12):
            raise ValueError(f"{directory}: scores on the stored check rows differ from those "
                             "recorded when the model was saved: refused")


def model_type(booster: lgb.Booster | LinearModel | BlendModel) -> str:
    """How `bundle.json` names the booster's type: lightgbm, linear or blend."""
    if isinstance(booster, LinearModel):
        return "linear"
    return "blend" if isinstance(booster, BlendModel) else "lightgbm"


def synthetic_rows(bundle: ModelBundle, n: int = 3) -> pd.DataFrame:
    """Made-up input rows (signature, input example, validation): never real lead rows."""
    data: dict[str, Any] = {}
    for j, f in enumerate(bundle.features):
        if f in bundle.categories:
            vocab = bundle.categories[f] or ("unknown",)
            data[f] = pd.array([vocab[i % len(vocab)] for i in range(n)], dtype=object)
        else:
            data[f] = np.arange(n, dtype=np.float64) + float(j % 3)
    return pd.DataFrame(data)


CHILD_PARSE_TIMEOUT = 120


def _parses_in_child(model_file: Path) -> None:
    """Parse a LightGBM model file in a child process first. LightGBM aborts the whole process
    on some damaged files ("terminate called"); a bundle without recorded digests (made before
    they were recorded) has nothing else to vouch for its files. ValueError if the child fails."""
    import subprocess
    import sys

    code = "import sys, lightgbm; lightgbm.Booster(model_file=sys.argv[1])"
    try:
        done = subprocess.run([sys.executable, "-c", code, str(model_file)],  # noqa: S603 (fixed code)
                              capture_output=True, timeout=CHILD_PARSE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{model_file}: LightGBM did not parse it within "
                         f"{CHILD_PARSE_TIMEOUT} s in a child process: refused") from None
    if done.returncode != 0:
        how = (f"killed by signal {-done.returncode}" if done.returncode < 0
               else f"exit status {done.returncode}")
        raise ValueError(f"{model_file}: LightGBM could not parse it in a child process "
                         f"({how}): refused")


def load_bundle(directory: Path) -> ModelBundle:
    """Read a bundle folder written by `ModelBundle.save`; raises ValueError if it is unusable."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{directory}: not a LeadLens model bundle ({err})") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{directory}: bundle format {meta.get('format')!r}, "
                         f"this LeadLens reads format {BUNDLE_FORMAT}")
    _check_files(directory, meta.get("integrity") or {})
    if not meta.get("integrity") and meta.get("model", "lightgbm") != "linear":
        _parses_in_child(directory / MODEL_FILE)
    booster: lgb.Booster | LinearModel | BlendModel
    if meta.get("model", "lightgbm") == "linear":
        booster = LinearModel.load(directory / LINEAR_FILE)
    elif meta.get("model") == "blend":
        booster = BlendModel.load(directory, MODEL_FILE)
    else:
        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
    features = tuple(meta["features"])
    if tuple(booster.feature_name()) != features:
        raise ValueError(f"{directory}: the booster's features differ from the bundle schema")
    bundle = ModelBundle(
        kind=meta["kind"],
        booster=booster,
        features=features,
        categories={k: tuple(v) for k, v in meta["categories"].items()},
        calibrator=Calibrator.from_json(meta["calibrator"]),
        meta=meta.get("meta", {}),
    )
    _check_scores(directory, bundle, meta.get("integrity") or {})
    return bundle
