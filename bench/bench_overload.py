"""Goodput under overload and during a hot swap, driven by a separate load-generator process.

1. saturation: `bench/loadgen.py` closed loop with --connections (default 16) for --seconds: the
   answers per second the service sustains (goodput, 200s only);
2. open loop at 1x, 2x and 3x that rate: goodput, p99 of the 200s, answers by status;
3. a hot swap: open loop at half the saturation rate while @champion moves to another version
   (the service polls every second): goodput and refusals during the swap.
The generator's own CPU share is printed with each figure: on this 2-core machine it competes
with the service, so at 3x it takes most of a core.
Target (issue 16): goodput at 3x >= 80% of goodput at 1x; the swap sheds nothing.

Usage: python bench/bench_overload.py [--home DIR] [--leads 20000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import bench_home, free_port, loadgen, record, wait_ok

KEY = "bench-key-" + "b" * 24


def _load(url: str, body: dict, seconds: float, connections: int | None = None,
          rps: float | None = None) -> dict:
    return loadgen(url, body, seconds, KEY, connections, rps)


def _second_version(runtime: Any) -> tuple[int, int]:
    """(champion, another registered conversion version), training one if needed."""
    from core.registry import champion_version, configure, version_records
    from core.settings import LightGBMConfig, Settings, TrainConfig
    from training.pipeline import train_models

    configure(runtime.mlflow_uri)
    champion = champion_version("leadlens-conversion")
    assert champion is not None, "no conversion champion in this home"
    others = [r.version for r in version_records()
              if r.kind == "conversion" and r.version != champion]
    if others:
        return champion, others[-1]
    print("training a second conversion version for the swap", file=sys.stderr)
    other = type(runtime)(Settings(train=TrainConfig(lightgbm=LightGBMConfig(num_leaves=15))),
                          runtime.home, None)
    new = train_models(other, kinds=("conversion",), say=lambda _m: None)
    return champion, new.results["conversion"].version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="a home with promoted models (default: build one)")
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    from serving.lead_features import FeatureSource

    runtime = bench_home(args.home, args.leads, "leadlens-bench-overload-")
    champion, other = _second_version(runtime)
    source = FeatureSource(runtime.warehouse_path, runtime.settings.engagement)
    open_ids = source.open_lead_ids(source.default_as_of())
    source.close()
    body = {"leads": [{"lead_id": open_ids[len(open_ids) // 2]}], "explain": 5}

    config = runtime.home / "bench-overload.yaml"
    config.write_text("serve:\n  poll_seconds: 1\n")
    env = {**os.environ, "LEADLENS_HOME": str(runtime.home), "LEADLENS_API_KEYS": KEY,
           "LEADLENS_CONFIG": str(config)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("BENTOML_CONFIG_OVERRIDES", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (runtime.home / "bench-overload-serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "leadlens", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    figures: dict[str, object] = {"open_leads": len(open_ids)}
    try:
        wait_ok(f"{base}/readyz", proc)
        time.sleep(10)  # both workers build their scored-leads tables
        url = f"{base}/score"
        _load(url, body, 3, connections=args.connections)  # warm-up
        sat = _load(url, body, args.seconds, connections=args.connections)
        figures["saturation_closed_loop"] = sat
        rate = float(sat["goodput_per_s"])  # type: ignore[arg-type]
        print(f"saturation: {rate:.0f} answers/s", file=sys.stderr)
        for x in (1, 2, 3):
            print(f"open loop at {x}x", file=sys.stderr)
            figures[f"open_loop_{x}x"] = {"offered_per_s": round(x * rate),
                                          **_load(url, body, args.seconds, rps=x * rate)}
        g1 = figures["open_loop_1x"]["goodput_per_s"]  # type: ignore[index]
        g3 = figures["open_loop_3x"]["goodput_per_s"]  # type: ignore[index]
        figures["goodput_3x_over_1x"] = round(g3 / g1, 3) if g1 else None

        from mlflow import MlflowClient

        def swap() -> None:
            time.sleep(args.seconds / 4)
            MlflowClient().set_registered_model_alias("leadlens-conversion", "champion",
                                                      str(other))

        print(f"hot swap v{champion} -> v{other} at 0.5x", file=sys.stderr)
        t = threading.Thread(target=swap)
        t.start()
        try:
            during = _load(url, body, args.seconds, rps=0.5 * rate)
        finally:
            t.join()
            MlflowClient().set_registered_model_alias("leadlens-conversion", "champion",
                                                      str(champion))
        served = httpx.get(f"{base}/model", headers={"Authorization": f"Bearer {KEY}"}).json()
        figures["hot_swap_half_saturation"] = {
            "offered_per_s": round(0.5 * rate), **during,
            "version_after": served["models"]["conversion"]["version"]}
    finally:
        proc.terminate()
        proc.wait(30)
    record("overload", figures)


if __name__ == "__main__":
    main()
