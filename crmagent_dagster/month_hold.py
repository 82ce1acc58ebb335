"""A month's raw tables as staging last accepted them, held while a new version waits for staging's verdict.

Raw and staging are two steps, but a month is written whole or not at all: loading raw first copies the month's
current raw rows (the last version staging accepted, or none) into the `raw_last_good` schema; staging either
accepts the new version (and releases the copy, in its own transaction) or refuses it and puts the copy back, so
a month that fails staging's blocking check leaves raw, staging, quarantine and everything downstream as they
were. A hold that nothing released (a run killed between the steps) is kept: the next load does not overwrite
it, so what comes back is still the version staging accepted.
"""

from __future__ import annotations

import duckdb

from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.sql import run, table_exists, transaction

SCHEMA = "raw_last_good"
HELD_TABLES: tuple[str, ...] = (*RAW_TABLES, "synthetic_template_truth", "synthetic_experiment_truth",
                                "landing_manifest")


def _held_months(conn: duckdb.DuckDBPyConnection) -> set[str]:
    run(conn, f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    run(conn, f"CREATE TABLE IF NOT EXISTS {SCHEMA}.held_months (month VARCHAR PRIMARY KEY, held_at TIMESTAMP)")
    return {r[0] for r in run(conn, f"SELECT month FROM {SCHEMA}.held_months")}


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]


def hold_month(conn: duckdb.DuckDBPyConnection, month: str) -> bool:
    """Copy the month's raw rows aside before a load replaces them (call inside the load's transaction).
    False when a hold already exists: that one is the version staging accepted, so it is kept."""
    with transaction(conn):
        held = _held_months(conn)
        if month in held:
            return False
        for table in HELD_TABLES:
            if not table_exists(conn, f"raw.{table}"):
                continue
            copy = f"{SCHEMA}.{table}"
            # A copy made before raw's columns changed is rebuilt, when no other month needs it.
            if table_exists(conn, copy) and not held and _columns(conn, copy) != _columns(conn, f"raw.{table}"):
                run(conn, f"DROP TABLE {copy}")
            run(conn, f"CREATE TABLE IF NOT EXISTS {copy} AS SELECT * FROM raw.{table} LIMIT 0")
            run(conn, f"INSERT INTO {copy} BY NAME SELECT * FROM raw.{table} WHERE month = $month", {"month": month})
        run(conn, f"INSERT INTO {SCHEMA}.held_months VALUES ($month, current_timestamp)", {"month": month})
    return True


def release_month(conn: duckdb.DuckDBPyConnection, month: str) -> None:
    """Staging accepted the month: drop the copy (inside staging's transaction, so both commit together)."""
    with transaction(conn):
        if month not in _held_months(conn):
            return
        for table in HELD_TABLES:
            if table_exists(conn, f"{SCHEMA}.{table}"):
                run(conn, f"DELETE FROM {SCHEMA}.{table} WHERE month = $month", {"month": month})
        run(conn, f"DELETE FROM {SCHEMA}.held_months WHERE month = $month", {"month": month})


def restore_month(conn: duckdb.DuckDBPyConnection, month: str) -> bool:
    """Staging refused the month: put the held rows back in raw (a month never accepted goes back to no rows).
    False when nothing was held (raw was not loaded through a hold, e.g. on the Spark engine)."""
    with transaction(conn):
        if month not in _held_months(conn):
            return False
        for table in HELD_TABLES:
            if not table_exists(conn, f"raw.{table}"):
                continue
            run(conn, f"DELETE FROM raw.{table} WHERE month = $month", {"month": month})
            if table_exists(conn, f"{SCHEMA}.{table}"):
                run(conn, f"INSERT INTO raw.{table} BY NAME SELECT * FROM {SCHEMA}.{table} WHERE month = $month",
                    {"month": month})
        release_month(conn, month)
    return True
