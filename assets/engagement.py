"""Stage 3, engagement: the Appendix A score per delivery, then averaged per template group."""

import dagster as dg

from crmagent_dagster.partitions import DUCKDB_POOL, monthly_partitions
from crmagent_dagster.pipeline import aggregate_engagement, score_logs
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.segments import EVENT_WEIGHTS
from crmagent_dagster.sql import preview_markdown, run

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
    """Score = read 1 + store/voucher click 3 + product card 4 + CRM button 2 - unsubscribe 5, within 7 days."""
    month = context.partition_key
    with duckdb.get_connection() as conn:
        rows = score_logs(conn, month)
        staged = _one(conn, "SELECT count(*) FROM staging.delivery_logs WHERE month = $month", month)[0]
        lo, hi, mean, late = _one(conn, "SELECT min(engagement_score), max(engagement_score), avg(engagement_score), "
                                        "sum(n_late_events) FROM core.log_engagement WHERE month = $month", month)
        distribution = preview_markdown(
            conn, "SELECT engagement_score, count(*) AS deliveries FROM core.log_engagement WHERE month = $month "
                  "GROUP BY 1 ORDER BY 1", {"month": month})
    in_range = rows == 0 or (MIN_SCORE <= lo and hi <= MAX_SCORE)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "mean_score": mean, "late_events_ignored": late,
                  "score_distribution": dg.MetadataValue.md(distribution)},
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
    with duckdb.get_connection() as conn:
        rows = aggregate_engagement(conn, month)
        dup = _one(conn, "SELECT count(*) - count(DISTINCT aggregate_id) FROM core.engagement_aggregates "
                         "WHERE month = $month", month)[0]
        summed = _one(conn, "SELECT coalesce(sum(n_logs), 0) FROM core.engagement_aggregates WHERE month = $month", month)[0]
        scored = _one(conn, "SELECT count(*) FROM core.log_engagement WHERE month = $month", month)[0]
        per_segment = preview_markdown(
            conn, "SELECT segment, count(*) AS groups, sum(n_logs) AS deliveries, round(avg(mean_score), 3) AS mean_score, "
                  "round(median(n_logs)) AS median_group_size FROM core.engagement_aggregates WHERE month = $month "
                  "GROUP BY 1 ORDER BY groups DESC", {"month": month})
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "per_segment": dg.MetadataValue.md(per_segment)},
        check_results=[
            dg.AssetCheckResult(check_name="unique_groups", passed=dup == 0, metadata={"duplicates": dup}),
            dg.AssetCheckResult(check_name="deliveries_conserved", passed=summed == scored,
                                metadata={"sum_n_logs": summed, "scored": scored}),
        ],
    )
