"""Stage 4, segments: strong (top 25%) and weak (bottom 25%) template groups within each audience segment."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.engines import spark_stages
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.pipeline import LabelSettings, label_segment
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import preview_markdown, run, write_model

KEY = dg.AssetKey(["core", "quartile_labels"])


class QuartileConfig(dg.Config):
    min_samples: int = Field(default=30, description="Groups with fewer deliveries are not labelled.")
    strong_share: float = Field(default=0.25, description="Share of ranked groups labelled strong.")
    weak_share: float = Field(default=0.25, description="Share of ranked groups labelled weak.")


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "engagement_aggregates"])],
    partitions_def=month_segment_partitions,
    group_name="segments",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    metadata={"dagster/table_name": "core.quartile_labels"},
    check_specs=[
        dg.AssetCheckSpec("unique_groups", asset=KEY, description="One label per aggregate group."),
        dg.AssetCheckSpec("quartile_shares", asset=KEY,
                          description="Strong and weak shares of ranked groups are within one group of the target."),
        dg.AssetCheckSpec("strong_outscore_weak", asset=KEY,
                          description="Every strong group scores at least as high as every weak group."),
    ],
)
def quartile_labels(context: dg.AssetExecutionContext, config: QuartileConfig, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Rank the segment's groups by mean engagement; label the top share strong and the bottom share weak."""
    month, segment = month_and_segment(context)
    settings = LabelSettings(config.min_samples, config.strong_share, config.weak_share)
    p = {"month": month, "segment": segment}
    if duckdb.on_spark:  # --- Spark engine (engines/spark_stages.py); the labels are copied into DuckDB ---
        lab = spark_stages.quartile_labels(duckdb, month, segment, settings)
        rows, counts, dup, min_strong, max_weak, examples = (lab.rows, lab.counts, lab.duplicates, lab.min_strong,
                                                             lab.max_weak, lab.examples)
    else:
        with duckdb.get_connection() as conn:
            rows = label_segment(conn, month, segment, settings)
            counts = dict(conn.execute(
                "SELECT performance_label, count(*) FROM core.quartile_labels WHERE month = $month AND segment = $segment "
                "GROUP BY 1", p).fetchall())
            dup = run(conn, "SELECT count(*) - count(DISTINCT aggregate_id) FROM core.quartile_labels "
                            "WHERE month = $month AND segment = $segment", p)[0][0]
            min_strong, max_weak = run(conn,
                "SELECT min(mean_score) FILTER (WHERE performance_label = 'strong'), "
                "max(mean_score) FILTER (WHERE performance_label = 'weak') "
                "FROM core.quartile_labels WHERE month = $month AND segment = $segment", p)[0]
            examples = preview_markdown(
                conn,
                "(SELECT q.performance_label AS label, round(q.mean_score, 3) AS score, q.n_logs, t.title, t.body "
                " FROM core.quartile_labels q LEFT JOIN staging.templates t ON t.month = q.month AND t.template_id = q.template_id"
                " WHERE q.month = $month AND q.segment = $segment AND q.performance_label = 'strong'"
                " ORDER BY q.performance_rank LIMIT 3)"
                " UNION ALL "
                "(SELECT q.performance_label, round(q.mean_score, 3), q.n_logs, t.title, t.body"
                " FROM core.quartile_labels q LEFT JOIN staging.templates t ON t.month = q.month AND t.template_id = q.template_id"
                " WHERE q.month = $month AND q.segment = $segment AND q.performance_label = 'weak'"
                " ORDER BY q.performance_rank DESC LIMIT 3)",
                p,
            )
    ranked = sum(v for k, v in counts.items() if k != "insufficient_samples")
    strong, weak = counts.get("strong", 0), counts.get("weak", 0)
    tolerance = 1 / ranked if ranked else 1.0
    shares_ok = ranked == 0 or (abs(strong / ranked - settings.strong_share) <= tolerance
                                and abs(weak / ranked - settings.weak_share) <= tolerance)
    order_ok = min_strong is None or max_weak is None or min_strong >= max_weak
    if ranked == 0:
        context.log.warning(f"{month} {segment}: no group has {settings.min_samples}+ deliveries; nothing labelled")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows, "strong": strong, "weak": weak, "middle": counts.get("middle", 0),
            "insufficient_samples": counts.get("insufficient_samples", 0), "min_samples": settings.min_samples,
            "examples": dg.MetadataValue.md(examples), "engine": duckdb.engine,
        },
        check_results=[
            dg.AssetCheckResult(check_name="unique_groups", passed=dup == 0, metadata={"duplicates": dup}),
            dg.AssetCheckResult(check_name="quartile_shares", passed=shares_ok,
                                metadata={"ranked": ranked, "strong_share": strong / ranked if ranked else 0.0,
                                          "weak_share": weak / ranked if ranked else 0.0}),
            dg.AssetCheckResult(check_name="strong_outscore_weak", passed=order_ok,
                                metadata={"min_strong": min_strong, "max_weak": max_weak}),
        ],
    )


LABELLED = dg.AssetKey(["core", "labelled_templates"])


@dg.asset(
    key=LABELLED,
    deps=[KEY, dg.AssetKey(["staging", "templates"]), dg.AssetKey(["staging", "products"]),
          dg.AssetKey(["staging", "vouchers"])],
    partitions_def=month_segment_partitions,
    group_name="segments",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    metadata={"dagster/table_name": "core.labelled_templates"},
    check_specs=[dg.AssetCheckSpec("every_label_has_text", asset=LABELLED,
                                   description="Every strong and weak group found its template text.")],
)
def labelled_templates(context: dg.AssetExecutionContext, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Strong and weak groups with their text, language, product and voucher facts, and retrieval metadata."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        rows = write_model(conn, "core.labelled_templates", p)
        missing, no_meta = run(conn,
            "SELECT count(*) FILTER (WHERE title IS NULL), count(*) FILTER (WHERE metadata_text IS NULL) "
            "FROM core.labelled_templates WHERE month = $month AND segment = $segment", p)[0]
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "without_product_or_voucher": no_meta},
        check_results=[dg.AssetCheckResult(check_name="every_label_has_text", passed=missing == 0,
                                           metadata={"without_text": missing})],
    )
