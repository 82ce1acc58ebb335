"""Bench: generation, raw -> quartile labels, and the floor, measured side by side in one run.

The floor is one hand-written DuckDB query computing the same quartile labels straight from the
raw tables (same validation, window and tie rule, no intermediate tables, no quarantine, no
checks). The ratio pipeline / floor is what the model-per-table design costs. The bench also
checks that both give identical labels, so the floor is a fair one.

    .venv/bin/python bench/bench_pipeline.py --logs 3000000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets import engagement, raw, segments, staging  # noqa: E402
from crmagent_dagster import pipeline as P  # noqa: E402
from crmagent_dagster.landing import load_landing_month, write_landing_month  # noqa: E402
from crmagent_dagster.resources import CRMWarehouse, LogSource  # noqa: E402
from crmagent_dagster.sql import run  # noqa: E402
from crmagent_dagster.synthetic.month import generate_month  # noqa: E402

MONTH = "2025-04"

FLOOR_SQL = """
CREATE OR REPLACE TABLE floor_labels AS
WITH logs AS (
    SELECT NULLIF(TRIM(log_id), '') AS log_id, TRY_STRPTIME(TRIM(sent_at), '%Y-%m-%d %H:%M:%S') AS sent_at,
           NULLIF(TRIM(shop_id), '') AS shop_id, NULLIF(TRIM(plan_id), '') AS plan_id,
           NULLIF(TRIM(template_id), '') AS template_id, NULLIF(TRIM(product_id), '') AS product_id,
           NULLIF(TRIM(voucher_id), '') AS voucher_id, NULLIF(TRIM(user_id), '') AS user_id,
           NULLIF(TRIM(segment), '') AS segment, _row_id
    FROM raw.delivery_logs WHERE month = $month
),
valid AS (
    SELECT * FROM logs
    WHERE log_id IS NOT NULL AND shop_id IS NOT NULL AND plan_id IS NOT NULL AND template_id IS NOT NULL
      AND user_id IS NOT NULL AND list_contains($segments, segment) AND sent_at IS NOT NULL
      AND strftime(sent_at, '%Y-%m') = $month
    QUALIFY ROW_NUMBER() OVER (PARTITION BY log_id ORDER BY _row_id) = 1
),
ev AS (
    SELECT DISTINCT e.log_id, e.event_type
    FROM (SELECT NULLIF(TRIM(log_id), '') AS log_id, NULLIF(TRIM(event_type), '') AS event_type,
                 TRY_STRPTIME(TRIM(event_at), '%Y-%m-%d %H:%M:%S') AS event_at
          FROM raw.engagement_events WHERE month = $month) e
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


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=3_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dagster", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the same month end to end through Dagster (includes generation)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crmagent-bench-"))
    settings = P.LabelSettings()

    t_gen, month = timed(lambda: generate_month(MONTH, args.logs, args.seed))
    mem_gen = peak_mb()
    conn = duckdb.connect(str(work / "bench.duckdb"))
    t_raw, _ = timed(lambda: [P.load_raw_table(conn, t, MONTH, P.with_lineage(f, "bench")) for t, f in month.tables.items()])
    # The same month as landing Parquet files, read in place by DuckDB (the path real exports take).
    write_landing_month(month.tables, work / "landing", MONTH)
    with duckdb.connect(str(work / "landing.duckdb")) as lconn:
        t_landing, _ = timed(lambda: load_landing_month(lconn, work / "landing", MONTH))

    def pipeline():
        for table in P.STAGED_TABLES:
            P.stage_table(conn, table, MONTH)
        P.score_logs(conn, MONTH)
        P.aggregate_engagement(conn, MONTH)
        for segment in P.SEGMENT_KEYS:
            P.label_segment(conn, MONTH, segment, settings)

    t_pipe, _ = timed(pipeline)
    t_floor, _ = timed(lambda: run(conn, FLOOR_SQL, {"month": MONTH, "segments": list(P.SEGMENT_KEYS),
                                                     "min_samples": settings.min_samples}))
    mem_pipe = peak_mb()
    labelled, agree = run(conn,
        """SELECT count(*), count(*) FILTER (WHERE f.label = q.performance_label)
           FROM floor_labels f JOIN core.quartile_labels q ON q.month = $month AND q.segment = f.segment
             AND q.shop_id = f.shop_id AND q.template_id = f.template_id
             AND q.product_id IS NOT DISTINCT FROM f.product_id AND q.voucher_id IS NOT DISTINCT FROM f.voucher_id""",
        {"month": MONTH})[0]
    n_floor = run(conn, "SELECT count(*) FROM floor_labels")[0][0]
    groups, weak = run(conn, "SELECT count(*), count(*) FILTER (WHERE performance_label = 'weak') "
                             "FROM core.quartile_labels")[0]
    conn.close()

    t_dag = None
    if args.dagster:
        res = {"duckdb": CRMWarehouse(database=str(work / "dagster.duckdb")),
               "log_source": LogSource(landing_dir=str(work / "none"), synthetic_logs=args.logs, seed=args.seed,
                                       synthetic_when_no_landing=True)}
        monthly = [raw.raw_month, staging.staged_month, engagement.log_engagement, engagement.engagement_aggregates]

        def through_dagster():
            assert dg.materialize(monthly, partition_key=MONTH, resources=res, raise_on_error=True).success
            for segment in P.SEGMENT_KEYS:
                assert dg.materialize(monthly + [segments.quartile_labels], selection=[segments.quartile_labels],
                                      partition_key=f"{MONTH}|{segment}", resources=res).success

        t_dag, _ = timed(through_dagster)

    rows = month.tables["delivery_logs"].height
    print(f"\ncrmagent bench: {rows:,} delivery logs, {month.tables['engagement_events'].height:,} events, seed {args.seed}")
    print(f"  generate month            {t_gen:7.2f} s   ({rows / t_gen / 1e6:.2f} M logs/s)   peak RSS {mem_gen:,.0f} MB")
    print(f"  load raw tables           {t_raw:7.2f} s   (generator frames)")
    print(f"  load landing Parquet      {t_landing:7.2f} s   (read in place, one transaction; / frames {t_landing / t_raw:.2f} x)")
    print(f"  pipeline raw -> labels    {t_pipe:7.2f} s   (12 models, quarantine, 11 segment partitions)")
    print(f"  floor: one SQL query      {t_floor:7.2f} s   (same labels, straight from raw)")
    print(f"  ratio pipeline / floor    {t_pipe / t_floor:7.2f} x")
    if t_dag is not None:
        print(f"  through Dagster, e2e      {t_dag:7.2f} s   (generate + raw + pipeline + 12 runs' bookkeeping)")
        print(f"  ratio Dagster e2e / (generate + raw + pipeline)  {t_dag / (t_gen + t_raw + t_pipe):.2f} x")
    print(f"  peak RSS                  {peak_mb():,.0f} MB (after pipeline: {mem_pipe:,.0f} MB)")
    print(f"  labelled groups           {groups:,} ({weak:,} weak); floor agrees on {agree:,} of {labelled:,} "
          f"(floor ranked {n_floor:,})")
    if agree != labelled or labelled != n_floor:
        raise SystemExit("floor and pipeline disagree: the floor is not computing the same labels")


if __name__ == "__main__":
    main()
