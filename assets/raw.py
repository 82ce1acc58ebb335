"""Stage 1, raw: a month of delivery logs and their context, exactly as delivered (all text)."""

import dagster as dg

from crmagent_dagster.engines import spark_stages
from crmagent_dagster.partitions import DUCKDB_POOL, monthly_partitions
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.sql import preview_markdown, run

TRUTH_KEY = dg.AssetKey(["raw", "synthetic_template_truth"])
MANIFEST_KEY = dg.AssetKey(["raw", "landing_manifest"])


def _column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn("month", "VARCHAR", "partition, YYYY-MM")]
        + [dg.TableColumn(c, "VARCHAR", f"{desc} (typed {t} in staging)") for c, t, desc in RAW_TABLES[table]]
        + [dg.TableColumn("_source", "VARCHAR", "file or generator the row came from"),
           dg.TableColumn("_row_id", "BIGINT", "0-based row position in _source"),
           dg.TableColumn("_issue", "VARCHAR", "why the loader could not read the row cleanly (bytes that are not "
                                               "UTF-8); staging quarantines such rows")]
    )


RAW_SPECS = [
    dg.AssetSpec(
        ["raw", table],
        description=f"raw.{table}: the month's {table.replace('_', ' ')} as delivered, every value as text.",
        group_name="raw",
        kinds={"duckdb"},
        metadata={"dagster/column_schema": _column_schema(table), "dagster/table_name": f"raw.{table}"},
    )
    for table in RAW_TABLES
] + [
    dg.AssetSpec(
        TRUTH_KEY,
        description="Generator-only ground truth per synthetic template (defect, features); empty for landing months.",
        group_name="raw",
        kinds={"duckdb"},
        metadata={"dagster/table_name": "raw.synthetic_template_truth"},
    ),
    dg.AssetSpec(
        MANIFEST_KEY,
        description="Every file read for the month (or the generator), with the table it fed and its row count.",
        group_name="raw",
        kinds={"duckdb"},
        metadata={"dagster/table_name": "raw.landing_manifest"},
    ),
]


@dg.multi_asset(
    specs=RAW_SPECS,
    partitions_def=monthly_partitions,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec("has_deliveries", asset=["raw", "delivery_logs"], blocking=True,
                          description="The month has at least one delivery log."),
    ],
)
def raw_month(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, log_source: LogSource):
    """Load one month from its landing folder, all tables in one transaction; generate it only when asked."""
    month = context.partition_key
    p = {"month": month}
    if duckdb.on_spark:  # --- Spark engine: raw tables in the lake, the manifest in DuckDB (engines/spark_stages.py)
        loaded, previews = spark_stages.raw_month(duckdb, log_source, month)
        counts, truth_rows = loaded.rows, 0
    with duckdb.get_connection() as conn:
        if not duckdb.on_spark:
            loaded = log_source.load_month(conn, month)
            counts = {t: run(conn, f"SELECT count(*) FROM raw.{t} WHERE month = $month", p)[0][0]
                      for t in RAW_TABLES}
            previews = {t: preview_markdown(conn, f"SELECT * EXCLUDE (month) FROM raw.{t} WHERE month = $month LIMIT 5",
                                            p) for t in RAW_TABLES}
            truth_rows = run(conn, "SELECT count(*) FROM raw.synthetic_template_truth WHERE month = $month",
                                   p)[0][0]
        kind = "SYNTHETIC (generated, not your data)" if loaded.synthetic else "landing files"
        context.log.info(f"raw {month}: {kind} from {loaded.source} ({duckdb.engine})")
        manifest = preview_markdown(conn, "SELECT source_table, file, format, rows, encoding, rows_with_issues "
                                          "FROM raw.landing_manifest WHERE month = $month ORDER BY source_table, file", p)
    common = {"source": loaded.source, "synthetic": loaded.synthetic, "engine": duckdb.engine}
    for table in RAW_TABLES:
        files = [m for m in loaded.manifest if m.table == table]
        checks = []
        if table == "delivery_logs":
            checks.append(dg.AssetCheckResult(asset_key=["raw", table], check_name="has_deliveries",
                                              passed=counts[table] > 0, metadata={"rows": counts[table]}))
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={"dagster/row_count": counts[table], **common, "files": len(files),
                      "rows_with_issues": sum(m.rows_with_issues for m in files),
                      "preview": dg.MetadataValue.md(previews[table])},
            check_results=checks,
        )
    yield dg.MaterializeResult(asset_key=TRUTH_KEY, metadata={"dagster/row_count": truth_rows, **common})
    yield dg.MaterializeResult(asset_key=MANIFEST_KEY, metadata={
        "dagster/row_count": len(loaded.manifest), **common, "manifest": dg.MetadataValue.md(manifest)})
