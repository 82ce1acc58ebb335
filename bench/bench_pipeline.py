"""Bench: raw -> quartile labels on each engine beside the floor, measured side by side in one run.

The floor is one hand-written DuckDB query computing the same quartile labels straight from the raw tables (same
validation, window and tie rule; no intermediate tables, no quarantine, no checks). pipeline / floor is what the
model-per-table design costs. Every measurement runs in its own process on the same landing files (written in
chunks by the generator), so each starts cold and its peak RSS is its own. The labels of every engine are
compared row for row with the floor's, so the floor is a fair one.

    .venv/bin/python bench/bench_pipeline.py --logs 3000000          # floor, DuckDB, Spark local
    .venv/bin/python bench/bench_pipeline.py --logs 3000000 --big    # ... and a 30M-log month on DuckDB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crmagent_dagster.sql import run  # noqa: E402

MONTH = "2025-04"
BIG_LOGS = 30_000_000

FLOOR_SQL = """
CREATE OR REPLACE TABLE floor_labels AS
WITH logs AS (
    SELECT NULLIF(TRIM(log_id), '') AS log_id, TRY_STRPTIME(TRIM(sent_at), '%Y-%m-%d %H:%M:%S') AS sent_at,
           NULLIF(TRIM(shop_id), '') AS shop_id, NULLIF(TRIM(plan_id), '') AS plan_id,
           NULLIF(TRIM(template_id), '') AS template_id, NULLIF(TRIM(product_id), '') AS product_id,
           NULLIF(TRIM(voucher_id), '') AS voucher_id, NULLIF(TRIM(user_id), '') AS user_id,
           NULLIF(TRIM(segment), '') AS segment, _source, _row_id, _issue
    FROM raw.delivery_logs WHERE month = $month
),
valid AS (
    SELECT * FROM logs
    WHERE _issue IS NULL AND log_id IS NOT NULL AND shop_id IS NOT NULL AND plan_id IS NOT NULL
      AND template_id IS NOT NULL AND user_id IS NOT NULL AND list_contains($segments, segment)
      AND sent_at IS NOT NULL AND strftime(sent_at, '%Y-%m') = $month
    QUALIFY ROW_NUMBER() OVER (PARTITION BY log_id ORDER BY _source, _row_id) = 1
),
ev AS (
    SELECT DISTINCT e.log_id, e.event_type
    FROM (SELECT NULLIF(TRIM(log_id), '') AS log_id, NULLIF(TRIM(event_type), '') AS event_type,
                 TRY_STRPTIME(TRIM(event_at), '%Y-%m-%d %H:%M:%S') AS event_at
          FROM raw.engagement_events WHERE month = $month AND _issue IS NULL) e
    JOIN valid l ON l.log_id = e.log_id
    WHERE e.event_at BETWEEN l.sent_at AND l.sent_at + INTERVAL 7 DAY
),
scored AS (
    SELECT l.segment, l.shop_id, l.template_id, l.product_id, l.voucher_id,
           coalesce(sum(CASE ev.event_type WHEN 'read' THEN 1 WHEN 'store_voucher_click' THEN 3
                        WHEN 'product_card_click' THEN 4 WHEN 'crm_button_click' THEN 2
                        WHEN 'unsubscribe' THEN -5 ELSE 0 END), 0) AS score
    FROM valid l LEFT JOIN ev ON ev.log_id = l.log_id
    GROUP BY l.log_id, l.segment, l.shop_id, l.template_id, l.product_id, l.voucher_id
),
agg AS (
    SELECT segment, shop_id, template_id, product_id, voucher_id, count(*) AS n_logs,
           sum(score)::DOUBLE / count(*) AS mean_score
    FROM scored GROUP BY ALL
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY segment ORDER BY mean_score DESC, n_logs DESC, shop_id, template_id,
                                 product_id NULLS LAST, voucher_id NULLS LAST) AS r,
           COUNT(*) OVER (PARTITION BY segment) AS n
    FROM agg WHERE n_logs >= $min_samples
)
SELECT segment, shop_id, template_id, product_id, voucher_id,
       CASE WHEN r <= floor(n * 0.25) THEN 'strong' WHEN r > n - floor(n * 0.25) THEN 'weak' ELSE 'middle' END AS label
FROM ranked
"""
LABELS_SQL = """SELECT segment, shop_id, template_id, product_id, voucher_id, performance_label AS label
                FROM core.quartile_labels WHERE month = $month AND performance_label <> 'insufficient_samples'"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children: one measurement each, printing one JSON line -------------------------------------------------------
def _stage_timer(stages: dict[str, float]):
    """`stage(label, fn)` runs fn and adds its seconds to stages[label] (a stage may run once per table/segment)."""
    def stage(label: str, fn) -> None:
        t = time.perf_counter()
        fn()
        stages[label] = stages.get(label, 0.0) + time.perf_counter() - t
    return stage


def _connect(db: Path):
    from crmagent_dagster.resources import warehouse_settings

    return duckdb.connect(str(db), config=warehouse_settings(str(db)))


def _load(conn, landing: Path) -> float:
    from crmagent_dagster.landing import load_landing_month

    start = time.perf_counter()
    load_landing_month(conn, landing, MONTH)
    return time.perf_counter() - start


def child_floor(landing: Path, work: Path) -> dict:
    from crmagent_dagster import pipeline as P

    conn = _connect(work / "floor.duckdb")
    load = _load(conn, landing)
    start = time.perf_counter()
    run(conn, FLOOR_SQL, {"month": MONTH, "segments": list(P.SEGMENT_KEYS),
                          "min_samples": P.LabelSettings().min_samples})
    seconds = time.perf_counter() - start
    run(conn, "COPY floor_labels TO $path (FORMAT parquet)", {"path": str(work / "floor_labels.parquet")})
    return {"load": load, "seconds": seconds}


def child_duckdb(landing: Path, work: Path, name: str) -> dict:
    from crmagent_dagster import pipeline as P

    conn = _connect(work / f"{name}.duckdb")
    load = _load(conn, landing)
    stages: dict[str, float] = {}
    stage, start = _stage_timer(stages), time.perf_counter()

    stage(f"staging ({len(P.STAGED_TABLES)} tables, one transaction)", lambda: P.stage_month(conn, MONTH))
    stage("log engagement (view)", lambda: P.score_logs(conn))
    stage("aggregates", lambda: P.aggregate_engagement(conn, MONTH))
    for segment in P.SEGMENT_KEYS:
        stage("labels (11 segments)", lambda: P.label_segment(conn, MONTH, segment, P.LabelSettings()))
    seconds = time.perf_counter() - start
    _export_labels(conn, work / f"{name}_labels.parquet")
    groups = run(conn, "SELECT count(*) FROM core.quartile_labels WHERE month = $m", {"m": MONTH})[0][0]
    return {"load": load, "seconds": seconds, "stages": stages, "groups": groups}


def _export_labels(conn, path: Path) -> None:
    run(conn, f"CREATE OR REPLACE TEMP TABLE __labels AS {LABELS_SQL}", {"month": MONTH})
    run(conn, "COPY __labels TO $path (FORMAT parquet)", {"path": str(path)})


def child_spark(landing: Path, work: Path) -> dict:
    """The same stages as the Dagster assets run them on Spark local, from the landing files to labels in the lake."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from crmagent_dagster import pipeline as P
    from crmagent_dagster.engines import spark as S

    settings = P.LabelSettings()
    engine = S.SparkEngine(master="local[*]", lake_dir=str(work / "lake"),
                           conf={"spark.driver.memory": "2g", "spark.ui.enabled": "false"})
    spark = engine.session()
    lake = engine.lake(str(work / "spark.duckdb"))
    stages: dict[str, float] = {}
    stage, start = _stage_timer(stages), time.perf_counter()

    stage("raw (reads landing)", lambda: S.load_raw_month(spark, lake, landing, MONTH))
    for table in P.STAGED_TABLES:
        stage("staging", lambda: S.stage_table(spark, lake, table, MONTH))
    stage("log engagement", lambda: (S.write_event_weights(spark, lake),
                                     S.write_model(spark, lake, "core.log_engagement", {"month": MONTH})))
    stage("aggregates", lambda: S.write_model(spark, lake, "core.engagement_aggregates", {"month": MONTH}))
    for segment in P.SEGMENT_KEYS:
        stage("labels (11 segments)", lambda: S.write_model(
            spark, lake, "core.quartile_labels", {"month": MONTH, "segment": segment},
            {"min_samples": settings.min_samples, "strong_share": settings.strong_share,
             "weak_share": settings.weak_share}))
    seconds = time.perf_counter() - start
    labels = (spark.read.parquet(lake.path("core.quartile_labels"))
              .where((F.col("month") == MONTH) & (F.col("performance_label") != "insufficient_samples"))
              .selectExpr("segment", "shop_id", "template_id", "product_id", "voucher_id",
                          "performance_label AS label").toPandas())
    pq.write_table(pa.Table.from_pandas(labels, preserve_index=False), work / "spark_labels.parquet")
    jvm_mb = _descendants_peak_mb()
    spark.stop()
    return {"seconds": seconds, "stages": stages, "jvm_mb": jvm_mb}


def _descendants_peak_mb() -> float:
    """Peak RSS (VmHWM) of this process's live descendants: Spark's JVM, which RUSAGE_CHILDREN cannot see yet."""
    parents, peak = {}, {}
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            hwm = [line for line in (proc / "status").read_text().splitlines() if line.startswith("VmHWM:")]
            peak[int(proc.name)] = int(hwm[0].split()[1]) / 1024 if hwm else 0.0
        except (ValueError, OSError, IndexError):
            continue

    def descends(pid: int) -> bool:
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == os.getpid():
                return True
        return False

    return sum(mb for pid, mb in peak.items() if descends(pid))


def run_child(kind: str, landing: Path, work: Path, name: str | None = None) -> dict:
    """One measurement in a fresh process; its peak RSS (and its children's, Spark's JVM) comes back with it."""
    cmd = [sys.executable, __file__, "--child", kind, "--landing", str(landing), "--work", str(work)]
    if name:
        cmd += ["--name", name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_labels(work: Path, name: str) -> tuple[int, int, int]:
    """(floor rows, engine rows, rows that agree) comparing full rows."""
    with duckdb.connect() as c:
        f = run(c, "SELECT count(*) FROM read_parquet($p)", {"p": str(work / "floor_labels.parquet")})[0][0]
        e = run(c, "SELECT count(*) FROM read_parquet($p)", {"p": str(work / f"{name}_labels.parquet")})[0][0]
        agree = run(c,
            """SELECT count(*) FROM read_parquet($f) f JOIN read_parquet($e) e
               ON e.segment = f.segment AND e.shop_id = f.shop_id AND e.template_id = f.template_id
              AND e.product_id IS NOT DISTINCT FROM f.product_id AND e.voucher_id IS NOT DISTINCT FROM f.voucher_id
              AND e.label = f.label""",
            {"f": str(work / "floor_labels.parquet"), "e": str(work / f"{name}_labels.parquet")})[0][0]
    return f, e, agree


def _fresh(work: Path, name: str) -> None:
    """Each measurement starts from an empty database file (a second run would replace a month already there)."""
    for path in (work / f"{name}.duckdb", work / f"{name}.duckdb.wal"):
        path.unlink(missing_ok=True)
    shutil.rmtree(work / f"{name}.duckdb.tmp", ignore_errors=True)


def paired_runs(landing: Path, work: Path, repeat: int) -> tuple[list[dict], list[dict]]:
    """`repeat` floor/pipeline pairs, the order alternating, so a slow spell of a shared machine (single-thread speed
    here swings by half within seconds) lands on both sides; the ratio is taken within each pair."""
    runs: dict[str, list[dict]] = {"floor": [], "duckdb": []}
    for i in range(repeat):
        for kind in (("floor", "duckdb") if i % 2 == 0 else ("duckdb", "floor")):
            _fresh(work, kind)
            runs[kind].append(run_child(kind, landing, work, kind))
    return runs["floor"], runs["duckdb"]


def _spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """median, and the range when there is more than one value."""
    mid = fmt.format(statistics.median(values))
    return mid if len(values) == 1 else f"{mid} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def measure(logs: int, seed: int, spark: bool, root: Path, repeat: int) -> list[str]:
    from crmagent_dagster.synthetic.month import write_month_in_chunks

    work = root / f"logs{logs}"
    work.mkdir(parents=True)
    start = time.perf_counter()
    written = write_month_in_chunks(MONTH, logs, work / "landing", seed)
    t_gen = time.perf_counter() - start
    landing = work / "landing"
    floors, ducks = paired_runs(landing, work, repeat)
    floor_s, duck_s = [f["seconds"] for f in floors], [d["seconds"] for d in ducks]
    ratios = [d / f for f, d in zip(floor_s, duck_s)]
    floor = {"seconds": statistics.median(floor_s)}
    duck = {"load": statistics.median(d["load"] for d in ducks), "seconds": statistics.median(duck_s)}
    rows = [f"{logs:,} delivery logs ({written.rows['delivery_logs']:,} with planted mess, "
            f"{written.rows['engagement_events']:,} events, {written.parts} part files), seed {seed}; "
            f"generated in chunks in {t_gen:.1f} s; "
            + (f"median (range) of {repeat} floor/pipeline pairs" if repeat > 1 else "one floor/pipeline pair")]
    rows.append(f"  {'':26s} {'load raw':>9s} {'raw->labels (s)':>22s} {'/ floor':>18s} {'peak RSS':>10s}")
    rows.append(f"  {'floor: one SQL query':26s} {statistics.median(f['load'] for f in floors):8.1f}s "
                f"{_spread(floor_s):>22s} {'1x':>18s} "
                f"{max(f['rss_mb'] for f in floors):8,.0f} MB")
    rows.append(f"  {'DuckDB pipeline':26s} {duck['load']:8.1f}s "
                f"{_spread(duck_s):>22s} {_spread(ratios, '{:.2f}x'):>18s} "
                f"{max(d['rss_mb'] for d in ducks):8,.0f} MB")
    for label in ducks[0]["stages"]:
        rows.append(f"    {label:36s} {statistics.median(d['stages'][label] for d in ducks):9.1f}s")
    checks = [("DuckDB", "duckdb")]
    if spark:
        sp = run_child("spark", landing, work)
        rows.append(f"  {'Spark local pipeline':26s} {'(landing)':>9s} {sp['seconds']:21.1f}s "
                    f"{sp['seconds'] / floor['seconds']:17.2f}x {sp['rss_mb']:8,.0f} MB (Python + JVM; one run, "
                    "against the floor's median)")
        for label, seconds in sp["stages"].items():
            rows.append(f"    {label:36s} {seconds:9.1f}s")
        rows.append(f"  {'':26s} Spark / (DuckDB load + pipeline) "
                    f"{sp['seconds'] / (duck['load'] + duck['seconds']):.2f}x")
        checks.append(("Spark", "spark"))
    for label, name in checks:
        f, e, agree = same_labels(work, name)
        rows.append(f"  labels: {label} agrees with the floor on {agree:,} of {f:,} ranked groups ({e:,} from {label})")
        if not (f == e == agree):
            raise SystemExit("\n".join(rows) + f"\n{label} and the floor disagree: the floor is not computing the "
                                               "same labels")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=3_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--big", action="store_true", help=f"also a {BIG_LOGS:,}-log month on DuckDB (about 15 min)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="floor/pipeline pairs per month (alternating order); the 30M month runs one pair")
    ap.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True,
                    help="also the Spark local pipeline (needs pyspark and Java 17+)")
    ap.add_argument("--child", choices=("floor", "duckdb", "spark"), help=argparse.SUPPRESS)
    ap.add_argument("--landing", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--name", default="duckdb", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = {"floor": lambda: child_floor(args.landing, args.work),
                  "duckdb": lambda: child_duckdb(args.landing, args.work, args.name),
                  "spark": lambda: child_spark(args.landing, args.work)}[args.child]()
        result["rss_mb"] = peak_mb() + result.pop("jvm_mb", 0.0)
        print(json.dumps(result))
        return
    # Landing files and database copies take 0.4 GB per 3M logs (4 GB at 30M): gone when the bench ends, however.
    with tempfile.TemporaryDirectory(prefix="crmagent-bench-") as tmp:
        root = Path(tmp)
        out = ["", "crmagent bench: raw -> quartile labels, each engine in its own process"]
        out += measure(args.logs, args.seed, args.spark, root, args.repeat)
        print("\n".join(out), flush=True)
        if args.big:
            print("\n".join(measure(BIG_LOGS, args.seed, False, root, 1)), flush=True)


if __name__ == "__main__":
    main()
