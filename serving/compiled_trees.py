"""An optional faster engine for batch scoring: the LightGBM trees compiled to native code.

treelite reads the booster and tl2cgen writes it out as C and builds a shared library with the
machine's C compiler; its raw scores equal LightGBM's (checked to 1e-9 on made-up rows before
it is used). The library is cached under `cache_dir` by the SHA-256 of the model text (compiled
once per model, at its first use) with the library's own SHA-256 beside it, checked before it is
loaded. Without a C compiler, or when treelite is not installed, or when the check fails, the
engine is not used and a log line says why: scoring goes on with native LightGBM. Reasons
(TreeSHAP) always come from LightGBM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np

from core.blend_model import BlendModel
from core.model_bundle import ModelBundle

log = logging.getLogger("leadlens.serving")

TOLERANCE = 1e-9
"""Largest difference from LightGBM's raw score the compiled library may show on the check."""
CHECK_ROWS = 2000

RawScore = Callable[[np.ndarray], np.ndarray]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compiler() -> str | None:
    """The C compiler tl2cgen will use (`CC`, else gcc or cc on the PATH), or None."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    return None


def _build(booster: lgb.Booster, lib: Path, toolchain: str) -> None:
    import tl2cgen
    import treelite

    model = treelite.frontend.from_lightgbm(booster)
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
        built = Path(tmp) / lib.name
        tl2cgen.export_lib(model, toolchain=toolchain, libpath=str(built),
                           params={"parallel_comp": 8}, verbose=False)
        lib.with_suffix(".sha256").write_text(_sha256(built.read_bytes()), encoding="ascii")
        os.replace(built, lib)  # published whole: a concurrent reader sees it or nothing


def compile_trees(booster: lgb.Booster, cache_dir: Path, threads: int = 1) -> RawScore | None:
    """A function giving the booster's raw scores from its compiled library (built and cached
    at the first call for this model), or None with a log line saying why not."""
    toolchain = compiler()
    if toolchain is None:
        log.info("compiled trees not used: no C compiler (gcc or cc) on the PATH; "
                 "scoring with native LightGBM")
        return None
    try:
        import tl2cgen
    except ImportError:
        log.info("compiled trees not used: treelite and tl2cgen are not installed")
        return None
    checksum = _sha256(booster.model_to_string().encode())
    lib = Path(cache_dir) / f"{checksum}.so"
    try:
        if not lib.exists():
            log.info("compiling the model's trees (%s...) with %s", checksum[:12], toolchain)
            _build(booster, lib, toolchain)
        recorded = lib.with_suffix(".sha256").read_text(encoding="ascii").strip()
        if _sha256(lib.read_bytes()) != recorded:
            log.warning("compiled trees not used: %s differs from the digest recorded when it "
                        "was built (damaged); it is rebuilt at the next use", lib)
            lib.unlink(missing_ok=True)
            return None
        predictor = tl2cgen.Predictor(str(lib), nthread=threads)
    except Exception as err:  # any failure: native LightGBM scores instead
        log.warning("compiled trees not used: %s: %s", type(err).__name__, str(err)[:200])
        return None

    lock = threading.Lock()  # a predictor's batch call is not thread-safe (its own pool)

    def raw(x: np.ndarray) -> np.ndarray:
        matrix = tl2cgen.DMatrix(np.ascontiguousarray(x, dtype=np.float64), dtype="float64")
        with lock:
            out = predictor.predict(matrix, pred_margin=True)
        return np.asarray(out, dtype=np.float64).reshape(len(x))

    check = _check_rows(booster)
    gap = float(np.max(np.abs(raw(check) - booster.predict(check, raw_score=True,
                                                           num_threads=1))))
    if not gap <= TOLERANCE:
        log.warning("compiled trees not used: their scores differ from LightGBM's by %.3g on "
                    "made-up rows", gap)
        return None
    return raw


def _check_rows(booster: lgb.Booster) -> np.ndarray:
    """Made-up rows on and around the booster's split thresholds (categories for categorical
    splits, whole codes only, as encoded inputs are), a tenth of the cells missing."""
    rng = np.random.default_rng(0)
    n = booster.num_feature()
    thresholds: list[list[float]] = [[] for _ in range(n)]
    categorical = [False] * n

    def walk(node: dict) -> None:
        if "split_feature" not in node:
            return
        j, t = node["split_feature"], node.get("threshold")
        if node.get("decision_type") == "==":
            categorical[j] = True
            thresholds[j] += [float(c) for c in str(t).split("||") if c.strip().isdigit()]
        elif isinstance(t, (int, float)):
            thresholds[j].append(float(t))
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    x = np.empty((CHECK_ROWS, n))
    for j in range(n):
        ts = np.array(thresholds[j] or [0.0])
        if categorical[j]:
            x[:, j] = rng.choice(np.append(ts, ts.max() + 1), CHECK_ROWS)
        else:
            x[:, j] = ts[rng.integers(0, len(ts), CHECK_ROWS)] + rng.choice(
                [-1e-6, 0.0, 1e-6], CHECK_ROWS)
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def compiled_raw_score(bundle: ModelBundle, cache_dir: Path, threads: int = 1
                       ) -> RawScore | None:
    """The bundle's raw scores through compiled trees (a blend's tree part compiled, its linear
    part as it is), or None when the engine cannot be used (logged)."""
    booster = bundle.booster
    if isinstance(booster, lgb.Booster):
        return compile_trees(booster, cache_dir, threads)
    if isinstance(booster, BlendModel):
        tree = compile_trees(booster.tree, cache_dir, threads)
        if tree is None:
            return None
        w, linear = booster.weight, booster.linear
        return lambda x: w * tree(x) + (1 - w) * linear.predict(x, raw_score=True)
    log.info("compiled trees not used: the model has no trees (a linear model)")
    return None
