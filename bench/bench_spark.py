"""The engagement features of a big CRM on DuckDB (one machine) and on Spark `local[2]`.

For each size (default 10M and 50M activities, about 10 per lead), a contract export is made
up as Parquet (leads and activities, vectorised; open and closed leads over two years), then
the features of every lead open at the export's end are computed from those files by each
engine in a process of its own, written as Parquet:
- DuckDB: the warehouse's feature query (`features.engagement.feature_sql`) over views of the
  Parquet files;
- Spark: the same query generated for Spark SQL (`features.spark_engine.spark_features`),
  master `local[2]`.
Printed: wall time and peak memory of each (the process tree's resident memory, sampled every
0.2 s: for Spark the Python driver, the JVM and its Python workers), activities per second
and per core, and from those figures where a Spark cluster overtakes this machine: the cores
Spark needs to match DuckDB's throughput here, and the CRM size at which DuckDB's peak memory
(scaled linearly) would outgrow this machine's RAM.

Part 2 (`--scores`): batch scores of the 1M-lead CRM on both engines with one champion (trained
and forced into `@champion` on a 100k-lead CRM made the same way: the engines are compared, not
the model): `leadlens score --open` on the warehouse against `leadlens score --engine spark` on
the Parquet files, both with 3 reasons: wall time of each, and the largest score difference,
grades, reasons and percentiles compared lead by lead.

Usage: python bench/bench_spark.py [--activities 10000000 50000000] [--work DIR] [--scores]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import leadlens, record, timed, with_peak_memories

PER_LEAD = 10
"""Activities per lead, on average (Poisson)."""
START = np.datetime64("2024-01-01T00:00:00", "s")
DAYS = 730
AS_OF = "2026-01-01T00:00:00"


def make_export(folder: Path, activities: int, seed: int = 7) -> None:
    """A contract export of about `activities` activities as Parquet, in chunks of leads."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_leads = activities // PER_LEAD
    chunk = 250_000
    writers: dict[str, pq.ParquetWriter] = {}
    day = np.timedelta64(86400, "s")
    kinds = np.array(["call", "email", "meeting", "proposal"])
    with tqdm(total=n_leads, desc=f"making {activities:,} activities", unit="lead",
              file=sys.stderr) as bar:
        for lo in range(0, n_leads, chunk):
            n = min(chunk, n_leads - lo)
            ids = np.char.add("L", np.arange(lo, lo + n).astype(str))
            created = START + (rng.uniform(0, DAYS, n) * 86400).astype("timedelta64[s]")
            life = (rng.exponential(120, n) * 86400).astype("timedelta64[s]")
            ends = created + life
            fate = rng.random(n)
            closed = ends < START + DAYS * day
            converted = np.where(closed & (fate < 0.2), ends, np.datetime64("NaT"))
            lost = np.where(closed & (fate >= 0.2), ends, np.datetime64("NaT"))
            leads = pa.table({
                "lead_id": ids, "created_at": created.astype("datetime64[us]"),
                "owner_rep_id": np.char.add("R", rng.integers(0, 500, n).astype(str)),
                "source": rng.choice(["web", "referral", "event", "outbound", "partner"], n),
                "converted_at": converted.astype("datetime64[us]"),
                "closed_lost_at": lost.astype("datetime64[us]"),
                "deal_amount": np.where(~np.isnat(converted), 5000.0, np.nan),
                "industry": rng.choice(["saas", "retail", "finance", "health"], n),
                "company_size": rng.lognormal(3.5, 1.2, n).round()})
            k = rng.poisson(PER_LEAD, n)
            owner = np.repeat(np.arange(n), k)
            span = np.minimum(ends, START + DAYS * day) - created
            at = created[owner] + (rng.random(len(owner)) * span[owner].astype(float)
                                   ).astype("timedelta64[s]")
            kind = kinds[rng.integers(0, 4, len(owner))]
            inbound = rng.random(len(owner)) < 0.2
            acts = pa.table({
                "activity_id": np.char.add(np.char.add("A", str(lo) + "-"),
                                           np.arange(len(owner)).astype(str)),
                "lead_id": ids[owner], "rep_id": leads["owner_rep_id"].to_numpy()[owner],
                "occurred_at": at.astype("datetime64[us]"), "type": kind,
                "direction": np.where(inbound, "inbound", "outbound"),
                "outcome": np.where(kind == "call", rng.choice(["connected", "no_answer"],
                                                                len(owner)),
                                    np.where(kind == "meeting", "held", "")),
                "amount": np.where(kind == "proposal", 5000.0, np.nan)})
            for name, table in (("leads", leads), ("activities", acts)):
                if name not in writers:
                    writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
                writers[name].write_table(table, row_group_size=1_000_000)
            bar.update(n)
    for w in writers.values():
        w.close()


def run_duckdb(data: Path, out: Path) -> dict[str, float]:
    """The feature query on DuckDB over views of the Parquet files, written as Parquet."""
    import duckdb

    from core.settings import EngagementConfig
    from features.engagement import feature_sql, open_leads_condition

    cfg = EngagementConfig()
    con = duckdb.connect()
    for t in ("leads", "activities"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / t}.parquet')")  # noqa: S608 (bench paths)
    con.execute("CREATE TABLE pair_input AS SELECT row_number() OVER () AS pair_id, lead_id, "  # noqa: S608 (a fixed timestamp)
                f"TIMESTAMP '{AS_OF}' AS as_of FROM leads "
                f"WHERE {open_leads_condition(f'TIMESTAMP {chr(39)}{AS_OF}{chr(39)}')}")
    sql = feature_sql(cfg, ["industry", "company_size"], ordered=False)
    con.execute(f"COPY (SELECT pi.lead_id, f.* EXCLUDE (pair_id) FROM ({sql}) f "  # noqa: S608 (the feature query)
                f"JOIN pair_input pi USING (pair_id)) TO '{out}' (FORMAT parquet)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()  # noqa: S608 (a bench path)
    return {"rows": int(rows[0][0])}


def run_spark(data: Path, out: Path, memory: str) -> dict[str, float]:
    """The same features on Spark local[2] (`features.spark_engine`), written as Parquet."""
    import pandas as pd

    from core.settings import EngagementConfig, SparkConfig
    from core.spark_session import spark_session
    from features.spark_engine import open_pairs, spark_features

    spark = spark_session(SparkConfig(master="local[2]", shuffle_partitions=16,
                                      driver_memory=memory))
    # the engines compared on the same typed files: the contract checks are ingest's work,
    # not the features' (DuckDB's side reads the files unchecked too)
    spark.read.parquet(str(data / "leads.parquet")).createOrReplaceTempView("leads")
    spark.read.parquet(str(data / "activities.parquet")).createOrReplaceTempView("activities")
    feats = spark_features(spark, {"industry": "text", "company_size": "numeric"},
                           open_pairs(spark, pd.Timestamp(AS_OF)), EngagementConfig())
    feats.write.mode("overwrite").parquet(str(out))
    rows = spark.read.parquet(str(out)).count()
    spark.stop()
    return {"rows": rows}


def parity(duck_out: Path, spark_out: Path) -> dict[str, int]:
    """Leads whose features differ between the engines' outputs, per column (numbers beyond a
    relative 1e-9 or a null on one side only; text not equal): zero everywhere is parity."""
    import duckdb

    from core.settings import EngagementConfig
    from features.catalog import engagement_features

    con = duckdb.connect()
    con.execute(f"CREATE VIEW d AS SELECT * FROM read_parquet('{duck_out}')")  # noqa: S608 (bench paths)
    con.execute(f"CREATE VIEW s AS SELECT * FROM read_parquet('{spark_out}/*.parquet')")  # noqa: S608 (bench paths)
    kinds = {f.name: f.kind for f in engagement_features(EngagementConfig())}
    kinds |= {"industry": "categorical", "company_size": "numeric"}
    checks = []
    for name, kind in kinds.items():
        a, b = f'd."{name}"', f's."{name}"'
        differ = (f"(({a} IS NULL) <> ({b} IS NULL)) OR abs(CAST({a} AS DOUBLE) - "
                  f"CAST({b} AS DOUBLE)) > 1e-9 * greatest(1, abs(CAST({a} AS DOUBLE)))"
                  if kind == "numeric" else f"{a} IS DISTINCT FROM {b}")
        checks.append(f'count(*) FILTER (WHERE {differ}) AS "{name}"')
    row = con.execute(f"SELECT count(*) AS joined, {', '.join(checks)} FROM d JOIN s "  # noqa: S608 (catalog names)
                      "USING (lead_id)").fetchall()[0]
    names = ["joined", *kinds]
    return dict(zip(names, (int(v) for v in row), strict=True))


def measure(engine: str, data: Path, out: Path, memory: str) -> dict[str, float]:
    """Run one engine in a process of its own: wall time, peak tree memory, rows written."""
    cmd = [sys.executable, __file__, "--child", engine, "--data", str(data), "--out", str(out),
           "--spark-memory", memory]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    output, (peak, _) = with_peak_memories(child)
    if child.returncode != 0:
        raise RuntimeError(f"{engine} failed (exit {child.returncode})")
    return {**json.loads(output.strip().splitlines()[-1]),
            "seconds": round(time.perf_counter() - start, 1), "peak_gib": round(peak, 2)}


def _timed_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """The wall time of `leadlens ARGS` (`_common.leadlens`)."""
    with timed() as t:
        leadlens(home, *args, env=env)
    return t["seconds"]


def scores_part(work: Path, memory: str) -> dict[str, object]:
    """Scores of the 1M-lead CRM on DuckDB and on Spark with one champion, compared."""
    import pandas as pd

    small, big = work / "crm-1000000-seed8", work / "crm-10000000"
    for folder, n in ((small, 1_000_000), (big, 10_000_000)):
        if not (folder / "activities.parquet").exists():
            make_export(folder, n, seed=8 if n == 1_000_000 else 7)
    trained, scoring = work / "home-trained", work / "home-scoring"
    as_of = ["--as-of", AS_OF]
    print("training a champion on the 100k-lead CRM", file=sys.stderr)
    leadlens(trained, "ingest", "--leads", str(small / "leads.parquet"), "--activities",
             str(small / "activities.parquet"), *as_of)
    leadlens(trained, "train")
    leadlens(trained, "promote", "--model", "conversion", "--force", "--reason",
             "bench: the engines are compared, not the model")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{trained / 'mlflow.db'}"}
    config = work / "spark.yaml"
    config.write_text(f"spark:\n  master: local[2]\n  driver_memory: {memory}\n")
    print("scoring the 1M-lead CRM on both engines", file=sys.stderr)
    ingest_s = _timed_cli(scoring, "ingest", "--leads", str(big / "leads.parquet"),
                          "--activities", str(big / "activities.parquet"), *as_of, env=env)
    duck_s = _timed_cli(scoring, "score", "--open", *as_of, "--explain", "3", "--out",
                        str(work / "scores-duckdb.parquet"), env=env)
    spark_s = _timed_cli(scoring, "--config", str(config), "score", "--engine", "spark",
                         "--data", str(big), *as_of, "--explain", "3", "--out",
                         str(work / "scores-spark"), env=env)
    d = pd.read_parquet(work / "scores-duckdb.parquet").set_index("lead_id").sort_index()
    s = pd.read_parquet(work / "scores-spark").set_index("lead_id").sort_index()
    if not d.index.equals(s.index):
        raise RuntimeError(f"different books: {len(d):,} against {len(s):,} leads")
    rel = (s["score"] - d["score"]).abs() / d["score"].abs().clip(lower=1e-12)
    reasons = [f"reason_{k}" for k in (1, 2, 3)]
    figures = {
        "leads_scored": len(d), "ingest_seconds": round(ingest_s, 1),
        "duckdb_score_seconds": round(duck_s, 1), "spark_score_seconds": round(spark_s, 1),
        "largest_relative_score_difference": float(rel.max()),
        "grades_differing": int((s["grade"] != d["grade"]).sum()),
        "reasons_differing": int((s[reasons].fillna("") != d[reasons].fillna("")).any(
            axis=1).sum()),
        "percentiles_differing_by_more_than_0.1": int(
            ((s["percentile"] - d["percentile"]).abs() > 0.1 + 1e-9).sum())}
    print(json.dumps(figures, indent=1))
    record("spark_scores", figures)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--activities", type=int, nargs="+", default=[10_000_000, 50_000_000])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--spark-memory", default="8g")
    ap.add_argument("--child", choices=["duckdb", "spark"], default=None)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--scores", action="store_true",
                    help="only part 2: the 1M-lead CRM's scores on both engines")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        run = run_duckdb if args.child == "duckdb" else (
            lambda d, o: run_spark(d, o, args.spark_memory))
        print(json.dumps(run(args.data, args.out)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-spark-"))
    if args.scores:
        scores_part(work, args.spark_memory)
        return
    cores = os.cpu_count() or 2
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    runs: list[dict[str, object]] = []
    for n in args.activities:
        data = work / f"crm-{n}"
        if not (data / "activities.parquet").exists():
            make_export(data, n)
        figures: dict[str, object] = {"activities": n, "leads": n // PER_LEAD}
        for engine in ("duckdb", "spark"):
            print(f"{engine} on {n:,} activities", file=sys.stderr)
            figures[engine] = measure(engine, data, work / f"{engine}-{n}.parquet",
                                      args.spark_memory)
        d, s = figures["duckdb"], figures["spark"]
        assert isinstance(d, dict) and isinstance(s, dict)
        if d["rows"] != s["rows"]:
            raise RuntimeError(f"the engines scored different books: {d['rows']} vs {s['rows']}")
        same = parity(work / f"duckdb-{n}.parquet", work / f"spark-{n}.parquet")
        differing = {k: v for k, v in same.items() if k != "joined" and v}
        figures["parity"] = {"leads_compared": same["joined"], "columns": len(same) - 1,
                             "columns_that_differ": differing}
        if same["joined"] != d["rows"] or differing:
            raise RuntimeError(f"the engines disagree: {figures['parity']}")
        duck_rate, spark_core = n / d["seconds"], n / s["seconds"] / 2
        figures["duckdb_activities_per_s"] = round(duck_rate)
        figures["spark_activities_per_s_per_core"] = round(spark_core)
        # a cluster of k Spark cores (ideal scaling) matches DuckDB on this machine when
        # k * spark_core = duck_rate
        figures["spark_cores_to_match_duckdb_here"] = round(duck_rate / spark_core, 1)
        figures["duckdb_gib_per_million_activities"] = round(d["peak_gib"] / (n / 1e6), 3)
        figures["duckdb_activities_at_this_ram"] = round(ram / d["peak_gib"] * n)
        figures["machine"] = {"cores": cores, "ram_gib": round(ram, 1)}
        print(json.dumps(figures, indent=1))
        record("spark", figures)
        runs.append(figures)
    if len(runs) >= 2:
        print(json.dumps(crossover(runs[0], runs[-1], ram), indent=1))


def crossover(small: dict, big: dict, ram_gib: float) -> dict[str, object]:
    """Where a cluster overtakes this machine, from the marginal figures between two sizes
    (fixed costs such as Spark's start-up cancel out): the Spark cores (ideal scaling) that
    match DuckDB's throughput here, and the size at which DuckDB's peak memory, growing at
    its measured rate, reaches this machine's RAM (beyond it DuckDB spills to disk)."""
    extra = big["activities"] - small["activities"]
    duck_s = big["duckdb"]["seconds"] - small["duckdb"]["seconds"]
    spark_s = big["spark"]["seconds"] - small["spark"]["seconds"]
    if duck_s <= 0 or spark_s <= 0:  # sizes too close (or too small) to time the difference
        return {"note": "the larger size took no longer: give sizes further apart"}
    duck_rate, spark_core = extra / duck_s, extra / spark_s / 2
    slope = (big["duckdb"]["peak_gib"] - small["duckdb"]["peak_gib"]) / extra
    base = big["duckdb"]["peak_gib"] - slope * big["activities"]
    out = {"marginal_duckdb_activities_per_s": round(duck_rate),
           "marginal_spark_activities_per_s_per_core": round(spark_core),
           "spark_cores_to_match_duckdb_here": round(duck_rate / spark_core, 1),
           "duckdb_gib_per_million_activities": round(slope * 1e6, 3),
           "duckdb_activities_at_this_ram": round((ram_gib - base) / slope) if slope > 0
           else None}
    # Spark's fixed cost (start-up, planning) and the size from which a cluster of k cores
    # (ideal scaling) finishes first: N / duck_rate > fixed + N / (k * spark_core)
    fixed = small["spark"]["seconds"] - small["activities"] / (2 * spark_core)
    out["spark_fixed_seconds"] = round(fixed, 1)
    for k in (16, 64, 256):
        gap = 1 / duck_rate - 1 / (k * spark_core)
        out[f"cluster_{k}_cores_faster_from_activities"] = round(fixed / gap) if gap > 0 else None
    record("spark_crossover", out)
    return out


if __name__ == "__main__":
    main()
