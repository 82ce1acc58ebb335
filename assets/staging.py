"""Stage 2, staging: typed, validated tables; every rejected row lands in staging.quarantine with its rule."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.engines import spark_stages
from crmagent_dagster.month_hold import release_month, restore_month
from crmagent_dagster.partitions import DUCKDB_POOL, monthly_partitions
from crmagent_dagster.pipeline import STAGED_TABLES, stage_month
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import preview_markdown, run, transaction

QUARANTINE_KEY = dg.AssetKey(["staging", "quarantine"])
# Key that must be unique after staging (engagement events have none: repeats are legitimate).
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    "shops": ("shop_id",),
    "plans": ("plan_id",),
    "templates": ("template_id",),
    "products": ("product_id",),
    "vouchers": ("voucher_id",),
    "delivery_logs": ("log_id",),
    "engagement_events": ("log_id", "event_type", "event_at"),
}
# Above this share of a table's rows in quarantine the check warns (the source has changed); above the error
# share it fails the run: "all rows quarantined" is never a success.
MAX_QUARANTINE_SHARE = 0.02
ERROR_QUARANTINE_SHARE = 0.20


class StagingConfig(dg.Config):
    warn_quarantine_share: float = Field(default=MAX_QUARANTINE_SHARE,
                                         description="Share of a table's raw rows in quarantine above which it warns.")
    error_quarantine_share: float = Field(default=ERROR_QUARANTINE_SHARE,
                                          description="Share above which the run fails (ERROR, blocking).")

STAGING_SPECS = [
    dg.AssetSpec(["staging", t], deps=[dg.AssetKey(["raw", t])], group_name="staging", kinds={"duckdb"},
                 description=f"staging.{t}: typed, validated rows of raw.{t}; one row per {' + '.join(UNIQUE_KEYS[t])}.",
                 metadata={"dagster/table_name": f"staging.{t}"})
    for t in STAGED_TABLES
] + [
    dg.AssetSpec(QUARANTINE_KEY, deps=[dg.AssetKey(["raw", t]) for t in STAGED_TABLES], group_name="staging",
                 kinds={"duckdb"}, metadata={"dagster/table_name": "staging.quarantine"},
                 description="staging.quarantine: every raw row staging rejected, with the rule it broke, "
                             "a detail naming the field and value, and the raw record as JSON."),
]
STAGING_CHECKS = [
    spec
    for t in STAGED_TABLES
    for spec in (
        dg.AssetCheckSpec("rows_conserved", asset=["staging", t],
                          description=f"Every row of raw.{t} is either staged or quarantined: nothing lost."),
        dg.AssetCheckSpec("unique_key", asset=["staging", t],
                          description=f"{', '.join(UNIQUE_KEYS[t])} is unique in the month."),
        dg.AssetCheckSpec("quarantine_share", asset=["staging", t], blocking=True,
                          description=f"At most {MAX_QUARANTINE_SHARE:.0%} of raw.{t} is quarantined (warns); above "
                                      f"{ERROR_QUARANTINE_SHARE:.0%} (configurable) the run fails."),
    )
]


def _scalar(conn, sql: str, params: dict) -> int:
    return run(conn, sql, params)[0][0]


class _Refused(Exception):
    """Raised inside staging's transaction to roll it back: the month fails its blocking check."""


def _share_check(table: str, bad: int, raw_rows: int, config: StagingConfig) -> dg.AssetCheckResult:
    share = bad / raw_rows if raw_rows else 0.0
    too_many = share > config.error_quarantine_share
    return dg.AssetCheckResult(
        asset_key=["staging", table], check_name="quarantine_share", passed=share <= config.warn_quarantine_share,
        severity=dg.AssetCheckSeverity.ERROR if too_many else dg.AssetCheckSeverity.WARN,
        description=f"{bad:,} of {raw_rows:,} raw.{table} rows quarantined ({share:.1%})"
                    + (f", above the error share {config.error_quarantine_share:.0%}" if too_many else ""),
        metadata={"share": share, "quarantined": bad, "raw": raw_rows})


def _stage(conn, month: str) -> tuple[dict[str, tuple[int, int, int, int]], str]:
    """Stage the month (inside the caller's transaction): per table (kept, quarantined, raw rows, duplicated keys),
    and the quarantine counted by rule with an example."""
    p = {"month": month}
    stats = {}
    for table, (kept, bad) in stage_month(conn, month).items():
        raw_rows = _scalar(conn, f"SELECT count(*) FROM raw.{table} WHERE month = $month", p)
        keys = ", ".join(UNIQUE_KEYS[table])
        dup_keys = _scalar(conn, f"SELECT count(*) FROM (SELECT {keys} FROM staging.{table} WHERE month = $month "
                                 f"GROUP BY {keys} HAVING count(*) > 1)", p)
        stats[table] = (kept, bad, raw_rows, dup_keys)
    by_rule = preview_markdown(
        conn,
        "SELECT source_table, rule, count(*) AS rows, any_value(detail) AS example FROM staging.quarantine "
        "WHERE month = $month GROUP BY ALL ORDER BY source_table, rows DESC",
        p,
    )
    return stats, by_rule


def _too_many(stats: dict[str, tuple[int, int, int, int]], config: StagingConfig) -> list[str]:
    return [t for t, (_, bad, raw_rows, _) in stats.items()
            if raw_rows and bad / raw_rows > config.error_quarantine_share]


@dg.multi_asset(specs=STAGING_SPECS, check_specs=STAGING_CHECKS, partitions_def=monthly_partitions, pool=DUCKDB_POOL)
def staged_month(context: dg.AssetExecutionContext, config: StagingConfig, duckdb: CRMWarehouse):
    """Type and validate the month's raw tables, quarantining bad rows with a reason; all tables in one
    transaction. A month above the error share is refused whole: staging rolls back and raw gets back the version
    staging last accepted (month_hold.py), so every table is as it was before the month was loaded."""
    month = context.partition_key
    stats: dict[str, tuple[int, int, int, int]] = {}  # table -> kept, quarantined, raw rows, duplicated keys
    if duckdb.on_spark:  # --- Spark engine: checks evaluated on the lake it wrote (engines/spark_stages.py) ---
        staged = spark_stages.staged_month(duckdb, month, UNIQUE_KEYS)
        stats, by_rule = staged.tables, staged.by_rule
    else:
        with duckdb.get_connection() as conn:
            try:
                with transaction(conn):
                    stats, by_rule = _stage(conn, month)
                    if _too_many(stats, config):
                        raise _Refused
                    release_month(conn, month)  # commits with the staged month
            except _Refused:
                restored = restore_month(conn, month)
                yield from (_share_check(t, bad, raw_rows, config) for t, (_, bad, raw_rows, _) in stats.items())
                refused = "; ".join(f"{stats[t][1]:,} of {stats[t][2]:,} raw.{t} rows ({stats[t][1] / stats[t][2]:.1%})"
                                    for t in _too_many(stats, config))
                raise dg.Failure(
                    description=f"staging refused {month}: {refused} would be quarantined, above the error share "
                                f"{config.error_quarantine_share:.0%}. Nothing was written: "
                                + ("raw is back to the version staging last accepted, and staging, quarantine and "
                                   "everything downstream are unchanged" if restored else
                                   "staging, quarantine and everything downstream are unchanged")
                                + ". The rules that would have quarantined them are in this failure's metadata.",
                    metadata={"would_quarantine_by_rule": dg.MetadataValue.md(by_rule), "raw_restored": restored},
                ) from None
    quarantined = {table: bad for table, (_, bad, _, _) in stats.items()}
    results = []
    for table, (kept, bad, raw_rows, dup_keys) in stats.items():
        share = bad / raw_rows if raw_rows else 0.0
        results.append(dg.MaterializeResult(
            asset_key=["staging", table],
            metadata={"dagster/row_count": kept, "quarantined_rows": bad, "raw_rows": raw_rows,
                      "quarantine_share": share, "engine": duckdb.engine},
            check_results=[
                dg.AssetCheckResult(asset_key=["staging", table], check_name="rows_conserved", passed=raw_rows == kept + bad,
                                    metadata={"raw": raw_rows, "staged": kept, "quarantined": bad}),
                dg.AssetCheckResult(asset_key=["staging", table], check_name="unique_key", passed=dup_keys == 0,
                                    metadata={"duplicated_keys": dup_keys}),
                _share_check(table, bad, raw_rows, config),
            ],
        ))
    yield from results
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={"dagster/row_count": sum(quarantined.values()), "by_table": quarantined,
                  "by_rule": dg.MetadataValue.md(by_rule), "engine": duckdb.engine},
    )
