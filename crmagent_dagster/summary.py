"""A month's summary as text: rows per stage, quarantine by rule, strong/weak per segment."""

from __future__ import annotations

import duckdb
import polars as pl

from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.sql import table_exists


def _table(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True, tbl_rows=100,
                   tbl_cols=20, tbl_width_chars=200, tbl_formatting="ASCII_FULL_CONDENSED"):
        return str(frame)


def _count(conn, table: str, month: str) -> int | None:
    if not table_exists(conn, table):
        return None
    return conn.execute(f"SELECT count(*) FROM {table} WHERE month = $month", {"month": month}).fetchone()[0]


def stage_counts(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    rows = []
    for t in RAW_TABLES:
        rows.append((t, _count(conn, f"raw.{t}", month), _count(conn, f"staging.{t}", month),
                     conn.execute("SELECT count(*) FROM staging.quarantine WHERE month = $m AND source_table = $t",
                                  {"m": month, "t": f"raw.{t}"}).fetchone()[0]
                     if table_exists(conn, "staging.quarantine") else None))
    return pl.DataFrame(rows, orient="row", schema=["table", "raw", "staged", "quarantined"])


def segment_counts(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    if not table_exists(conn, "core.quartile_labels"):
        return pl.DataFrame()
    return conn.sql(
        """SELECT segment, count(*) AS groups,
                  count(*) FILTER (WHERE performance_label = 'strong') AS strong,
                  count(*) FILTER (WHERE performance_label = 'weak') AS weak,
                  count(*) FILTER (WHERE performance_label = 'insufficient_samples') AS too_small,
                  round(avg(mean_score) FILTER (WHERE performance_label = 'strong'), 3) AS strong_mean,
                  round(avg(mean_score) FILTER (WHERE performance_label = 'weak'), 3) AS weak_mean
           FROM core.quartile_labels WHERE month = $month GROUP BY segment ORDER BY groups DESC""",
        params={"month": month},
    ).pl()


def month_summary(conn: duckdb.DuckDBPyConnection, month: str) -> str:
    lines = [f"== {month} ==", "", "Rows per stage:", _table(stage_counts(conn, month))]
    for t in ("core.log_engagement", "core.engagement_aggregates", "core.quartile_labels"):
        lines.append(f"  {t}: {_count(conn, t, month)}")
    if table_exists(conn, "staging.quarantine"):
        lines += ["", "Quarantine by rule:", _table(conn.sql(
            "SELECT source_table, rule, count(*) AS rows FROM staging.quarantine WHERE month = $month "
            "GROUP BY ALL ORDER BY source_table, rows DESC", params={"month": month}).pl())]
    seg = segment_counts(conn, month)
    if seg.height:
        lines += ["", "Strong / weak per segment:", _table(seg),
                  f"  total: {seg['strong'].sum()} strong, {seg['weak'].sum()} weak of {seg['groups'].sum()} groups"]
    return "\n".join(lines)
