"""The SQL runner: models from dbt_like_sql/ written partition by partition into DuckDB.

A model is one SELECT in `dbt_like_sql/<schema>/<table>.sql` that makes `<schema>.<table>`.
Values reach SQL only as bound parameters ($month, $segment, ...). Table and column
names come from this package's code, never from input, and are checked against a
strict pattern before use. Every write replaces exactly one partition
(delete-then-insert) inside one transaction, so a failure leaves the previous version.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SQL_DIR = Path(__file__).resolve().parent.parent / "dbt_like_sql"
SCHEMAS = ("raw", "staging", "core", "agents", "results", "marts")
QUARANTINE_TABLE = "staging.quarantine"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_QUALIFIED = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
# Columns stored with zstd instead of DuckDB's own choice (DICT_FSST): near-unique ids, where a dictionary saves
# nothing and building one is most of the cost of a month's write. At 3M delivery logs: log_id 0.70 -> 0.32 s and
# user_id 0.75 -> 0.49 s to store, the same speed to read, +8 MB (+9%) on disk. DuckDB 1.x files (storage older
# than v1.2) cannot hold zstd strings and would store them uncompressed, so there DuckDB keeps its own choice.
COLUMN_COMPRESSION: dict[str, dict[str, str]] = {
    "raw.delivery_logs": {"log_id": "zstd", "user_id": "zstd"},
    "raw.engagement_events": {"log_id": "zstd"},
    "staging.delivery_logs": {"log_id": "zstd", "user_id": "zstd"},
    "staging.engagement_events": {"log_id": "zstd"},
}
_DECLARED_COMPRESSION = COLUMN_COMPRESSION if int(duckdb.__version__.split(".")[0]) >= 2 else {}


class ModelError(RuntimeError):
    """A model could not be written; the message names the model/table and why."""


def _table(name: str) -> str:
    if not _QUALIFIED.match(name):
        raise ValueError(f"not a schema-qualified table name: {name!r}")
    return name


def _column(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a column name: {name!r}")
    return name


def load_sql(table: str) -> str:
    """Text of the model that makes `schema.table`."""
    schema, name = _table(table).split(".")
    path = SQL_DIR / schema / f"{name}.sql"
    if not path.exists():
        raise ModelError(f"no SQL model for {table}: expected {path}")
    return path.read_text().strip().rstrip(";")


def run(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
    """Execute one statement and read its result to the end; returns its rows (DDL/DML: ignore them).

    DuckDB 2 streams results: `conn.execute()` leaves its result open until a fetch returns no rows, or
    `complete()`/`abort()` ends it (`fetchone()` of a one-row result still leaves it open), and while it is open
    the connection refuses `conn.sql()`, `register()`/`unregister()` and the like with ResourceInUseException.
    DuckDB 1.x read every result up front. `fetchall()` ends the result on both, so every statement whose result
    is not fetched to the end where it runs goes through here.
    """
    return (conn.execute(sql) if params is None else conn.execute(sql, dict(params))).fetchall()


_OPEN: dict[int, int] = {}  # id(connection) -> depth of open transaction() blocks
# Connections whose schemas and macros are in place. Every write calls ensure_schemas (a month's labels alone make
# eleven writes), and its eight statements cost about 9 ms each time; once per connection is enough.
_PREPARED: weakref.WeakSet = weakref.WeakSet()
# Prepared inside the open transaction: they count once it commits, and a rollback takes them back.
_PREPARED_UNCOMMITTED: weakref.WeakSet = weakref.WeakSet()


def ensure_schemas(conn: duckdb.DuckDBPyConnection) -> None:
    """The schemas, and the shared SQL macros (dbt_like_sql/macros/*.sql) on this connection."""
    if conn in _PREPARED or conn in _PREPARED_UNCOMMITTED:
        return
    for schema in SCHEMAS:
        run(conn, f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for macro in sorted((SQL_DIR / "macros").glob("*.sql")):
        run(conn, macro.read_text())
    (_PREPARED_UNCOMMITTED if _OPEN.get(id(conn)) else _PREPARED).add(conn)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction; nested blocks join the outer one, so a stage that writes several tables (a month's raw
    load, its staging) commits all of them or none."""
    key = id(conn)
    if _OPEN.get(key):
        _OPEN[key] += 1
        try:
            yield
        finally:
            _OPEN[key] -= 1
        return
    run(conn, "BEGIN TRANSACTION")
    _OPEN[key] = 1
    try:
        yield
    except BaseException:
        run(conn, "ROLLBACK")
        raise
    else:
        run(conn, "COMMIT")
        if conn in _PREPARED_UNCOMMITTED:
            _PREPARED.add(conn)
    finally:
        _OPEN.pop(key, None)
        _PREPARED_UNCOMMITTED.discard(conn)


def _where(partition: Mapping[str, str]) -> str:
    return " AND ".join(f"{_column(c)} = ${_column(c)}" for c in partition)


def _columns(conn, relation: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
    return {name: typ for name, typ, *_ in conn.execute(f"DESCRIBE {relation}", dict(params or {})).fetchall()}


def column_definition(table: str, column: str, type_: str) -> str:
    """`column TYPE`, with the storage COLUMN_COMPRESSION chooses for it (used when the table is created)."""
    method = _DECLARED_COMPRESSION.get(table, {}).get(column)
    return f"{_column(column)} {type_}" + (f" USING COMPRESSION {method}" if method else "")


def _create_table(conn, table: str, query: str, params: Mapping[str, Any]) -> None:
    """The table shaped like the query's result. Declared per column when some column has a chosen compression
    (CREATE TABLE AS cannot say it), so the declaration is in the catalog and holds for every later insert."""
    if table in _DECLARED_COMPRESSION and not table_exists(conn, table):
        columns = ", ".join(column_definition(table, c, t) for c, t in _columns(conn, query, params).items())
        run(conn, f"CREATE TABLE {table} ({columns})")
    else:
        run(conn, f"CREATE TABLE IF NOT EXISTS {table} AS {query} LIMIT 0", params)


def _add_new_columns(conn, table: str, relation: str, params: Mapping[str, Any] | None = None) -> None:
    """An upgrade that only adds columns migrates itself: older rows get NULL there. A column that disappeared or
    changed type still stops the write (below), since that loses or reinterprets stored data."""
    stored, produced = _columns(conn, table), _columns(conn, relation, params)
    if set(stored) - set(produced) or any(produced[c] != stored[c] for c in set(stored) & set(produced)):
        return
    for name in [c for c in produced if c not in stored]:
        run(conn, f"ALTER TABLE {table} ADD COLUMN {_column(name)} {produced[name]}")


def _replace_from(conn, table: str, query: str, partition: Mapping[str, str],
                  params: Mapping[str, Any] | None = None) -> int:
    """Inside an open transaction: make `table`'s partition equal to the rows of `query` (a SELECT binding `params`).

    The rows go straight from the query into the table (no staging copy: at a month's size the copy costs as much
    as the query). Rows outside the partition, or rows that did not all arrive, show as a difference between what
    was inserted and what the partition holds; the error rolls the transaction back."""
    _table(table)
    bound = dict(params or {})
    _create_table(conn, table, query, bound)
    _add_new_columns(conn, table, query, bound)
    run(conn, f"DELETE FROM {table} WHERE {_where(partition)}", dict(partition))
    try:
        inserted = run(conn, f"INSERT INTO {table} BY NAME {query}", bound)[0][0]
    except duckdb.BinderException as e:
        raise ModelError(
            f"{table}: the model's columns no longer match the stored table ({e}). "
            f"Schema changes are deliberate: migrate or drop {table} before re-running."
        ) from e
    stored = run(conn, f"SELECT count(*) FROM {table} WHERE {_where(partition)}", dict(partition))[0][0]
    if stored != inserted:  # never commit rows that belong elsewhere, or a partition that lost rows on the way in
        stray = run(conn, f"SELECT count(*) FROM ({query}) WHERE NOT ({_where(partition)})",
                    {**bound, **partition})[0][0]
        if stray:
            raise ModelError(f"{table}: model produced {stray} row(s) outside partition {dict(partition)}")
        raise ModelError(f"{table}: wrote {stored} row(s) for {dict(partition)} but the model produced {inserted}")
    return inserted


def write_model(
    conn: duckdb.DuckDBPyConnection, table: str, partition: Mapping[str, str], params: Mapping[str, Any] | None = None
) -> int:
    """Run the model for `table` and replace that partition with its rows. Returns the row count."""
    sql = load_sql(table)
    ensure_schemas(conn)
    with transaction(conn):
        return _replace_from(conn, table, f"SELECT * FROM ({sql})", partition, {**partition, **(params or {})})


def create_view(conn: duckdb.DuckDBPyConnection, view: str) -> None:
    """(Re)create `schema.view` from dbt_like_sql/<schema>/<view>.sql; views hold no partitions."""
    sql = load_sql(view)
    ensure_schemas(conn)
    run(conn, f"CREATE OR REPLACE VIEW {_table(view)} AS {sql}")


def write_checked_model(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    raw_table: str,
    month: str,
    params: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """Run a staging model whose rows carry `_rule`/`_detail`; split good rows from quarantined ones.

    Good rows (`_rule IS NULL`) replace the month in `table`; the others replace this source's
    rows of the month in staging.quarantine, with the raw record as JSON. One transaction.
    Returns (good rows, quarantined rows).
    """
    sql = load_sql(table)
    _table(raw_table)
    ensure_schemas(conn)
    partition = {"month": month}
    q_partition = {"month": month, "source_table": raw_table}
    with transaction(conn):
        run(conn, f"CREATE OR REPLACE TEMP TABLE __checked AS {sql}", {**partition, **(params or {})})
        run(conn, "CREATE OR REPLACE TEMP VIEW __good AS SELECT * EXCLUDE (_rule, _detail) FROM __checked WHERE _rule IS NULL")
        good = _replace_from(conn, table, "SELECT * FROM __good", partition)
        # The raw records of the few quarantined rows: their row numbers pick the candidates out of the month's raw
        # rows first, so the join compares file paths for a handful of rows instead of every row of the month.
        run(conn,
            f"""CREATE OR REPLACE TEMP TABLE __bad AS
                WITH bad AS (SELECT * FROM __checked WHERE _rule IS NOT NULL)
                SELECT c.month, $source_table AS source_table, c._source, c._row_id, c._rule AS rule,
                    c._detail AS detail, to_json(r) AS raw_record
                FROM bad c
                JOIN (SELECT * FROM {raw_table}
                      WHERE month = $month AND _row_id IN (SELECT _row_id FROM bad)) r
                  ON r.month = c.month AND r._source = c._source AND r._row_id = c._row_id""",
            {"source_table": raw_table, "month": month},
        )
        bad = _replace_from(conn, QUARANTINE_TABLE, "SELECT * FROM __bad", q_partition)
        for name in ("VIEW __good", "TABLE __bad", "TABLE __checked"):
            run(conn, f"DROP {name}")
    return good, bad


@contextmanager
def registered_frame(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[str]:
    """Make `frame` queryable as `name` for the block; the Arrow table is held by name while DuckDB scans it."""
    arrow = frame.to_arrow()
    conn.register(_column(name), arrow)
    try:
        yield name
    finally:
        conn.unregister(name)


def write_frame(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, partition: Mapping[str, str]) -> int:
    """Replace one partition of `table` with a DataFrame (partition columns are added)."""
    ensure_schemas(conn)
    lits = {c: pl.lit(v, dtype=pl.Utf8) for c, v in partition.items()}
    frame = frame.select([lits[c].alias(c) for c in partition] + [c for c in frame.columns if c not in partition])
    with registered_frame(conn, "__frame", frame), transaction(conn):
        n = _replace_from(conn, table, "SELECT * FROM __frame", partition)
    if n != frame.height:
        raise ModelError(f"{table}: stored {n} of {frame.height} row(s) from the frame")
    return n


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = _table(table).split(".")
    return bool(
        run(conn,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $s AND table_name = $t",
            {"s": schema, "t": name},
        )[0][0]
    )


def is_view(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, view = _table(name).split(".")
    return bool(run(conn, "SELECT count(*) FROM duckdb_views() WHERE schema_name = $s AND view_name = $v",
                          {"s": schema, "v": view})[0][0])


def fetch_dicts(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query as dicts keyed by column name."""
    cur = conn.execute(sql, dict(params or {}))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def frame_markdown(frame: pl.DataFrame) -> str:
    """A small frame as a markdown table, for asset metadata."""
    with pl.Config(tbl_formatting="ASCII_MARKDOWN", tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, tbl_rows=50, tbl_cols=30, fmt_str_lengths=80,
                   tbl_width_chars=30_000):
        return str(frame)


def preview_markdown(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> str:
    """A small query result as a markdown table, for asset metadata."""
    return frame_markdown(conn.sql(sql, params=dict(params or {})).pl())
