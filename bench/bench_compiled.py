"""Batch scoring with compiled trees against native LightGBM, side by side on one core.

The served conversion model of a demo home (built here, or `--home`) scores `--rows` rows
(the open leads' design matrix repeated) with `Booster.predict(num_threads=1)` and with the
tl2cgen library (`nthread=1`); prints rows/s of each, the ratio, the largest difference, and
the compile time. Target (issue 18): >= 2x native on 1M rows, identical to 1e-9.

Usage: python bench/bench_compiled.py [--home DIR] [--rows 1000000]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import bench_trees, record, tree_bench_parser


def main() -> None:
    args = tree_bench_parser(__doc__, 1_000_000).parse_args()

    from serving.compiled_trees import compile_trees

    _runtime, trees, x = bench_trees(args, "leadlens-bench-compiled-")
    t = time.perf_counter()
    raw = compile_trees(trees, Path(tempfile.mkdtemp(prefix="leadlens-compiled-")))
    compile_s = time.perf_counter() - t
    assert raw is not None, "compiled trees unavailable (see the log line)"
    native, compiled = [], []
    for _ in range(3):  # median of three
        t = time.perf_counter()
        a = trees.predict(x, raw_score=True, num_threads=1)
        native.append(len(x) / (time.perf_counter() - t))
        t = time.perf_counter()
        b = raw(x)
        compiled.append(len(x) / (time.perf_counter() - t))
    n, c = float(np.median(native)), float(np.median(compiled))
    record("compiled", {"rows": len(x), "trees": trees.num_trees(),
                        "native_rows_per_s_one_core": int(n),
                        "compiled_rows_per_s_one_core": int(c), "ratio": round(c / n, 2),
                        "max_abs_difference": float(np.max(np.abs(a - b))),
                        "compile_seconds": round(compile_s, 1)})


if __name__ == "__main__":
    main()
