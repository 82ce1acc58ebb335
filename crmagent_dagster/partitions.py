"""Partitions: one per month for raw/staging/engagement, month x segment for per-segment assets."""

from __future__ import annotations

import warnings

import dagster as dg

from crmagent_dagster.segments import SEGMENT_KEYS

# Keys look like "2025-04", the same string as the `month` column of every table.
# The newest partition is the last *complete* month, which is what the schedule refreshes.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2025-01", fmt="%Y-%m")
segment_partitions = dg.StaticPartitionsDefinition(list(SEGMENT_KEYS))
month_segment_partitions = dg.MultiPartitionsDefinition({"month": monthly_partitions, "segment": segment_partitions})

# Every asset that writes DuckDB takes a slot of this pool: DuckDB allows one writing process,
# so concurrent runs queue on the pool instead of failing on the file lock.
DUCKDB_POOL = "duckdb_writer"


def previous_month(month: str) -> str:
    """'2025-05' -> '2025-04': the month whose deployments a month's deliveries measure."""
    year, mon = (int(x) for x in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def month_and_segment(context: dg.AssetExecutionContext) -> tuple[str, str]:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey), f"expected a month|segment partition, got {key!r}"
    return key.keys_by_dimension["month"], key.keys_by_dimension["segment"]


# Monthly assets that read every segment of their month depend on all its month x segment partitions.
with warnings.catch_warnings():  # a beta API we rely on knowingly; keep its warning out of every CLI run
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_MONTH = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="month")
    # Last month's partition of the same segment: what a month's deliveries measure (deployments -> uplift).
    PREVIOUS_MONTH = dg.MultiPartitionMapping({
        "month": dg.DimensionPartitionMapping("month", dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)),
        "segment": dg.DimensionPartitionMapping("segment", dg.IdentityPartitionMapping()),
    })
