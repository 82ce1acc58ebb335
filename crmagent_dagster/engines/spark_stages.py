"""What each monthly asset does when the engine is spark: run its stage on Spark, evaluate its checks there (the
engine that wrote the data), copy the agents' tables into DuckDB, and hand the asset the same numbers its DuckDB
path computes, so asset keys, check names and metadata are the same whichever engine ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmagent_dagster.engines import spark as engine
from crmagent_dagster.engines.spark import RawMonth
from crmagent_dagster.pipeline import STAGED_TABLES, LabelSettings
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.segments import SEGMENT_KEYS
from crmagent_dagster.sql import QUARANTINE_TABLE, _column

if TYPE_CHECKING:
    from crmagent_dagster.resources import CRMWarehouse, LogSource

# The staging tables the agents read from DuckDB (deliveries and events stay in the lake).
SMALL_STAGING = ("staging.shops", "staging.plans", "staging.templates", "staging.products", "staging.vouchers")
ENGINE_METADATA = {"engine": "spark"}


def _session(warehouse: CRMWarehouse):
    settings = warehouse.spark_engine()
    return settings.session(), settings.lake(warehouse.database)


def raw_month(warehouse: CRMWarehouse, log_source: LogSource, month: str) -> tuple[RawMonth, dict[str, str]]:
    """Landing Parquet -> the lake's raw tables; the manifest (and emptied synthetic truth) go to DuckDB, as the
    DuckDB path writes them. Returns the load and a 5-row preview per table."""
    from crmagent_dagster.landing import ensure_raw_tables, record_manifest
    from crmagent_dagster.resources import EMPTY_EXPERIMENT_TRUTH, EMPTY_TRUTH
    from crmagent_dagster.sql import transaction, write_frame

    spark, lake = _session(warehouse)
    loaded = engine.load_raw_month(spark, lake, log_source.landing_dir, month, timezone=log_source.timezone)
    with warehouse.get_connection() as conn:
        ensure_raw_tables(conn)  # the manifest's table (the raw tables stay empty here: their rows are in the lake)
        with transaction(conn):
            record_manifest(conn, month, loaded.source, loaded.manifest)
            write_frame(conn, "raw.synthetic_template_truth", EMPTY_TRUTH, {"month": month})
            write_frame(conn, "raw.synthetic_experiment_truth", EMPTY_EXPERIMENT_TRUTH, {"month": month})
    engine.register(spark, lake, *(f"raw.{t}" for t in RAW_TABLES))
    previews = {t: engine.markdown(spark, f"SELECT * FROM raw__{t} WHERE month = :month LIMIT 5", {"month": month})
                for t in RAW_TABLES}
    return loaded, previews


@dataclass
class StagedMonth:
    tables: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # kept, quarantined, raw, dup keys
    by_rule: str = ""


def staged_month(warehouse: CRMWarehouse, month: str, unique_keys: dict[str, tuple[str, ...]]) -> StagedMonth:
    """Stage every table on Spark (in STAGED_TABLES order: events read the staged deliveries), evaluate the checks'
    numbers on the lake, then copy the small staging tables and the quarantine into DuckDB in one transaction."""
    spark, lake = _session(warehouse)
    out = StagedMonth()
    p = {"month": month}
    for table in STAGED_TABLES:
        kept, bad = engine.stage_table(spark, lake, table, month)
        raw_rows = engine.stored_rows(spark, lake, f"raw.{table}", p)
        keys = ", ".join(_column(k) for k in unique_keys[table])
        dup = 0
        if kept:
            engine.register(spark, lake, f"staging.{table}")
            dup = engine.scalar(spark, f"SELECT count(*) FROM (SELECT {keys} FROM staging__{table} WHERE month = :month "
                                       f"GROUP BY {keys} HAVING count(*) > 1)", p)
        out.tables[table] = (kept, bad, raw_rows, dup)
    if sum(bad for _, bad, _, _ in out.tables.values()):
        engine.register(spark, lake, QUARANTINE_TABLE)
        out.by_rule = engine.markdown(
            spark, "SELECT source_table, rule, count(*) AS rows, any_value(detail) AS example FROM staging__quarantine "
                   "WHERE month = :month GROUP BY source_table, rule ORDER BY source_table, rows DESC", p)
    with warehouse.get_connection() as conn:
        engine.copy_to_duckdb(conn, spark, lake, [*SMALL_STAGING, QUARANTINE_TABLE], p)
    return out


@dataclass
class Scored:
    rows: int
    staged: int
    lo: int | None
    hi: int | None
    mean: float | None
    late: int | None
    distribution: str


def log_engagement(warehouse: CRMWarehouse, month: str) -> Scored:
    """core.log_engagement on Spark, copied into DuckDB (experiments and figure 7 read it there)."""
    spark, lake = _session(warehouse)
    p = {"month": month}
    engine.write_event_weights(spark, lake)
    rows = engine.write_model(spark, lake, "core.log_engagement", p)
    staged = engine.stored_rows(spark, lake, "staging.delivery_logs", p)
    lo = hi = mean = late = None
    distribution = ""
    if rows:
        engine.register(spark, lake, "core.log_engagement")
        lo, hi, mean, late = spark.sql(
            "SELECT min(engagement_score), max(engagement_score), avg(engagement_score), sum(n_late_events) "
            "FROM core__log_engagement WHERE month = :month", args=p).collect()[0]
        distribution = engine.markdown(spark, "SELECT engagement_score, count(*) AS deliveries FROM core__log_engagement "
                                              "WHERE month = :month GROUP BY 1 ORDER BY 1", p)
    with warehouse.get_connection() as conn:
        engine.copy_to_duckdb(conn, spark, lake, ["core.log_engagement"], p)
    return Scored(rows, staged, lo, hi, mean, late, distribution)


@dataclass
class Aggregated:
    rows: int
    duplicates: int
    summed: int
    scored: int
    per_segment: str


def engagement_aggregates(warehouse: CRMWarehouse, month: str) -> Aggregated:
    spark, lake = _session(warehouse)
    p = {"month": month}
    rows = engine.write_model(spark, lake, "core.engagement_aggregates", p)
    scored = engine.stored_rows(spark, lake, "core.log_engagement", p)
    dup = summed = 0
    per_segment = ""
    if rows:
        engine.register(spark, lake, "core.engagement_aggregates")
        dup, summed = spark.sql("SELECT count(*) - count(DISTINCT aggregate_id), coalesce(sum(n_logs), 0) "
                                "FROM core__engagement_aggregates WHERE month = :month", args=p).collect()[0]
        per_segment = engine.markdown(
            spark, "SELECT segment, count(*) AS groups, sum(n_logs) AS deliveries, round(avg(mean_score), 3) AS mean_score, "
                   "round(median(n_logs)) AS median_group_size FROM core__engagement_aggregates WHERE month = :month "
                   "GROUP BY 1 ORDER BY groups DESC", p)
    with warehouse.get_connection() as conn:
        engine.copy_to_duckdb(conn, spark, lake, ["core.engagement_aggregates"], p)
    return Aggregated(rows, dup, summed, scored, per_segment)


@dataclass
class Labelled:
    rows: int
    counts: dict[str, int]
    duplicates: int
    min_strong: float | None
    max_weak: float | None
    examples: str


def quartile_labels(warehouse: CRMWarehouse, month: str, segment: str, settings: LabelSettings) -> Labelled:
    if segment not in SEGMENT_KEYS:
        raise ValueError(f"unknown segment {segment!r}; expected one of {', '.join(SEGMENT_KEYS)}")
    spark, lake = _session(warehouse)
    p = {"month": month, "segment": segment}
    rows = engine.write_model(spark, lake, "core.quartile_labels", p,
                              {"min_samples": settings.min_samples, "strong_share": settings.strong_share,
                               "weak_share": settings.weak_share})
    counts: dict[str, int] = {}
    dup, min_strong, max_weak, examples = 0, None, None, ""
    if rows:
        engine.register(spark, lake, "core.quartile_labels", "staging.templates")
        where = "FROM core__quartile_labels WHERE month = :month AND segment = :segment"
        counts = {r[0]: r[1] for r in spark.sql(f"SELECT performance_label, count(*) {where} GROUP BY 1", args=p).collect()}
        dup, min_strong, max_weak = spark.sql(
            "SELECT count(*) - count(DISTINCT aggregate_id), min(mean_score) FILTER (WHERE performance_label = 'strong'), "
            f"max(mean_score) FILTER (WHERE performance_label = 'weak') {where}", args=p).collect()[0]
        examples = engine.markdown(
            spark,
            "(SELECT q.performance_label AS label, round(q.mean_score, 3) AS score, q.n_logs, t.title, t.body "
            " FROM core__quartile_labels q LEFT JOIN staging__templates t ON t.month = q.month AND t.template_id = q.template_id"
            " WHERE q.month = :month AND q.segment = :segment AND q.performance_label = 'strong'"
            " ORDER BY q.performance_rank LIMIT 3)"
            " UNION ALL "
            "(SELECT q.performance_label, round(q.mean_score, 3), q.n_logs, t.title, t.body"
            " FROM core__quartile_labels q LEFT JOIN staging__templates t ON t.month = q.month AND t.template_id = q.template_id"
            " WHERE q.month = :month AND q.segment = :segment AND q.performance_label = 'weak'"
            " ORDER BY q.performance_rank DESC LIMIT 3)", p)
    with warehouse.get_connection() as conn:
        engine.copy_to_duckdb(conn, spark, lake, ["core.quartile_labels"], p)
    return Labelled(rows, counts, dup, min_strong, max_weak, examples)
