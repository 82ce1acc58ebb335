"""Stage 1, raw: a month of delivery logs and their context, exactly as delivered (all text)."""

import dagster as dg
import polars as pl

from crmagent_dagster.partitions import DUCKDB_POOL, monthly_partitions
from crmagent_dagster.pipeline import load_raw_table, with_lineage
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.sql import preview_markdown, write_frame

TRUTH_KEY = dg.AssetKey(["raw", "synthetic_template_truth"])
# Zero rows with the truth table's columns: a landing month clears any old synthetic truth.
EMPTY_TRUTH = pl.DataFrame(schema={
    "template_id": pl.Utf8, "defect": pl.Utf8, "incentive_stated": pl.Boolean, "has_cta": pl.Boolean,
    "has_urgency": pl.Boolean, "has_emoji": pl.Boolean, "_source": pl.Utf8, "_row_id": pl.Int64,
})


def _column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn("month", "VARCHAR", "partition, YYYY-MM")]
        + [dg.TableColumn(c, "VARCHAR", f"{desc} (typed {t} in staging)") for c, t, desc in RAW_TABLES[table]]
        + [dg.TableColumn("_source", "VARCHAR", "file or generator the row came from"),
           dg.TableColumn("_row_id", "BIGINT", "0-based row position in _source")]
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
    )
]


@dg.multi_asset(
    specs=RAW_SPECS,
    partitions_def=monthly_partitions,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec("has_deliveries", asset=["raw", "delivery_logs"],
                          description="The month has at least one delivery log."),
    ],
)
def raw_month(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, log_source: LogSource):
    """Load one month from the landing folder, or generate it when there is none."""
    month = context.partition_key
    raw = log_source.read_month(month)
    context.log.info(f"raw {month} from {raw.source}")
    with duckdb.get_connection() as conn:
        for table, frame in raw.tables.items():
            rows = load_raw_table(conn, table, month, frame)
            checks = []
            if table == "delivery_logs":
                checks.append(dg.AssetCheckResult(asset_key=["raw", table], check_name="has_deliveries", passed=rows > 0,
                                                  metadata={"rows": rows}))
            yield dg.MaterializeResult(
                asset_key=["raw", table],
                metadata={
                    "dagster/row_count": rows,
                    "source": raw.source,
                    "preview": dg.MetadataValue.md(
                        preview_markdown(conn, f"SELECT * EXCLUDE (month) FROM raw.{table} WHERE month = $month LIMIT 5",
                                         {"month": month})
                    ),
                },
                check_results=checks,
            )
        truth = raw.template_truth
        truth_rows = write_frame(conn, "raw.synthetic_template_truth",
                                 with_lineage(truth, raw.source) if truth is not None else EMPTY_TRUTH,
                                 {"month": month})
        yield dg.MaterializeResult(asset_key=TRUTH_KEY, metadata={"dagster/row_count": truth_rows, "source": raw.source})

