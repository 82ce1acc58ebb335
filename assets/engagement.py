"""Stage 3, engagement: the Appendix A score per delivery, then averaged per template group."""

import dagster as dg

from crmagent_dagster.engines import spark_stages
from crmagent_dagster.partitions import DUCKDB_POOL, monthly_partitions
from crmagent_dagster.pipeline import aggregate_engagement, score_logs
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.segments import EVENT_WEIGHTS
from crmagent_dagster.sql import frame_markdown, preview_markdown, run

MIN_SCORE = sum(w for w in EVENT_WEIGHTS.values() if w < 0)
MAX_SCORE = sum(w for w in EVENT_WEIGHTS.values() if w > 0)


def _one(conn, sql: str, month: str):
    return run(conn, sql, {"month": month})[0]


@dg.asset(
    key=["core", "log_engagement"],
    deps=[dg.AssetKey(["staging", "delivery_logs"]), dg.AssetKey(["staging", "engagement_events"])],
    partitions_def=monthly_partitions,
    group_name="engagement",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    metadata={"dagster/table_name": "core.log_engagement"},
    check_specs=[
        dg.AssetCheckSpec("one_row_per_delivery", asset=["core", "log_engagement"],
                          description="Exactly one scored row per staged delivery."),
        dg.AssetCheckSpec("score_in_range", asset=["core", "log_engagement"],
                          description=f"Every score lies in [{MIN_SCORE}, {MAX_SCORE}]."),
    ],
)
def log_engagement(context: dg.AssetExecutionContext, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Score = read 1 + store/voucher click 3 + product card 4 + CRM button 2 - unsubscribe 5, within 7 days.

    A view over the staged deliveries and events (dbt_like_sql/core/log_engagement.sql); materializing it
    (re)defines the view and checks the month through it."""
    month = context.partition_key
    if duckdb.on_spark:  # --- Spark engine (engines/spark_stages.py); the month is copied into DuckDB ---
        s = spark_stages.log_engagement(duckdb, month)
        rows, staged, lo, hi, mean, late, distribution = s.rows, s.staged, s.lo, s.hi, s.mean, s.late, s.distribution
    else:
        with duckdb.get_connection() as conn:
            score_logs(conn)
            staged = _one(conn, "SELECT count(*) FROM staging.delivery_logs WHERE month = $month", month)[0]
            # One pass over the view for the month gives the checks and the distribution.
            by_score = conn.sql(
                "SELECT engagement_score, count(*) AS deliveries, sum(n_late_events) AS late "
                "FROM core.log_engagement WHERE month = $month GROUP BY 1 ORDER BY 1", params={"month": month}).pl()
        rows = int(by_score["deliveries"].sum())
        lo, hi = (by_score["engagement_score"].min(), by_score["engagement_score"].max()) if rows else (None, None)
        mean = float((by_score["engagement_score"] * by_score["deliveries"]).sum() / rows) if rows else None
        late = int(by_score["late"].sum())
        distribution = frame_markdown(by_score.select("engagement_score", "deliveries"))
    in_range = rows == 0 or (MIN_SCORE <= lo and hi <= MAX_SCORE)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "mean_score": mean, "late_events_ignored": late,
                  "score_distribution": dg.MetadataValue.md(distribution), "engine": duckdb.engine},
        check_results=[
            dg.AssetCheckResult(check_name="one_row_per_delivery", passed=rows == staged,
                                metadata={"scored": rows, "staged": staged}),
            dg.AssetCheckResult(check_name="score_in_range", passed=in_range, metadata={"min": lo, "max": hi}),
        ],
    )


@dg.asset(
    key=["core", "engagement_aggregates"],
    deps=[dg.AssetKey(["core", "log_engagement"])],
    partitions_def=monthly_partitions,
    group_name="engagement",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    metadata={"dagster/table_name": "core.engagement_aggregates"},
    check_specs=[
        dg.AssetCheckSpec("unique_groups", asset=["core", "engagement_aggregates"],
                          description="One row per merchant x template x product x segment x voucher."),
        dg.AssetCheckSpec("deliveries_conserved", asset=["core", "engagement_aggregates"],
                          description="Group sample counts add up to the scored deliveries."),
    ],
)
def engagement_aggregates(context: dg.AssetExecutionContext, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Mean engagement and sample count per merchant x template x product x segment x voucher."""
    month = context.partition_key
    if duckdb.on_spark:  # --- Spark engine (engines/spark_stages.py); the month is copied into DuckDB ---
        a = spark_stages.engagement_aggregates(duckdb, month)
        rows, dup, summed, scored, per_segment = a.rows, a.duplicates, a.summed, a.scored, a.per_segment
    else:
        with duckdb.get_connection() as conn:
            rows = aggregate_engagement(conn, month)
            dup = _one(conn, "SELECT count(*) - count(DISTINCT aggregate_id) FROM core.engagement_aggregates "
                             "WHERE month = $month", month)[0]
            summed = _one(conn, "SELECT coalesce(sum(n_logs), 0) FROM core.engagement_aggregates WHERE month = $month",
                          month)[0]
            scored = _one(conn, "SELECT count(*) FROM core.log_engagement WHERE month = $month", month)[0]
            per_segment = preview_markdown(
                conn, "SELECT segment, count(*) AS groups, sum(n_logs) AS deliveries, round(avg(mean_score), 3) AS mean_score, "
                      "round(median(n_logs)) AS median_group_size FROM core.engagement_aggregates WHERE month = $month "
                      "GROUP BY 1 ORDER BY groups DESC", {"month": month})
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "per_segment": dg.MetadataValue.md(per_segment), "engine": duckdb.engine},
        check_results=[
            dg.AssetCheckResult(check_name="unique_groups", passed=dup == 0, metadata={"duplicates": dup}),
            dg.AssetCheckResult(check_name="deliveries_conserved", passed=summed == scored,
                                metadata={"sum_n_logs": summed, "scored": scored}),
        ],
    )
