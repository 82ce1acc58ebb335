"""Readers never blocked: publish a read-only snapshot of the dashboard tables, swapped in atomically.

DuckDB allows one writing process, and a reader of the working file collides with it
(dagster issues #16248, #19068, #18746). So runs write the working file only, and at the end
of each run the warehouse resource copies the published tables into a new file, checkpoints it,
and renames it over the snapshot. A reader that already has the old snapshot open keeps
reading that complete old version (the rename does not touch its open file); the next
connection sees the new one. The writer never opens the snapshot, so a reader can't lock it out.
`_published` in the snapshot lists every table with its row count, so a reader can verify
it sees whole tables.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from crmagent_dagster.sql import run

# Everything a dashboard needs, nothing per-delivery or per-vector: schemas core/agents/results, the marts
# (views, published as tables) and the quarantine.
SKIP = {"core.log_engagement", "core.experiment_deliveries", "agents.metadata_embeddings", "agents.text_embeddings"}
EXTRA = ("staging.quarantine", "raw.landing_manifest")  # what failed, and which files (or generator) fed a month


def snapshot_path(database: str) -> Path:
    """$CRMAGENT_READ_PATH, else <name>_read.duckdb beside the working file."""
    configured = os.environ.get("CRMAGENT_READ_PATH")
    if configured:
        return Path(configured)
    db = Path(database)
    return db.with_name(f"{db.stem}_read{db.suffix or '.duckdb'}")


def published_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    names = [f"{s}.{t}" for s, t in conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND ((table_type = 'BASE TABLE' AND table_schema IN ('core', 'agents', 'results')) "
        "OR (table_type = 'VIEW' AND table_schema = 'marts') "
        "OR table_schema || '.' || table_name IN (SELECT unnest($extra))) ORDER BY 1, 2",
        {"extra": list(EXTRA)}).fetchall()]
    return [n for n in names if n not in SKIP]


def _quote(path: Path) -> str:
    # ATTACH takes a literal, not a parameter; the path is ours (config), quoted defensively.
    return "'" + str(path).replace("'", "''") + "'"


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


def stale_temp_files(target: Path) -> list[Path]:
    """Half-written snapshots a killed or failed publish left beside `target` (and their WAL files)."""
    return sorted(target.parent.glob(f".{target.name}.*.tmp")) + sorted(target.parent.glob(f".{target.name}.*.tmp.wal"))


def publish(conn: duckdb.DuckDBPyConnection, target: Path) -> dict[str, int]:
    """Copy the published tables into a fresh file and atomically replace `target` with it. A failed publish
    (a full disk, say) leaves no temporary file behind, and one a killed run left is removed first: only the
    run holding the warehouse's write lock publishes, so no other publish is writing them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in stale_temp_files(target):
        leftover.unlink(missing_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        counts, content = _copy(conn, tmp)
        if target.exists() and _content(conn, target) == content:
            _remove(tmp)  # nothing changed (a run that wrote nothing, or was refused): readers keep their file
            return counts
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return counts


def _content(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, tuple[int, str]] | None:
    """A snapshot's tables with their row counts and content hashes, from its `_published` (None: not readable
    or from before the hashes)."""
    try:
        run(conn, f"ATTACH {_quote(path)} AS __previous (READ_ONLY)")
    except duckdb.Error:
        return None
    try:
        rows = run(conn, "SELECT table_name, row_count, content_hash FROM __previous.main._published")
    except duckdb.Error:
        return None
    finally:
        run(conn, "DETACH __previous")
    return {t: (n, h) for t, n, h in rows}


def _copy(conn: duckdb.DuckDBPyConnection, tmp: Path) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Copy every published table into `tmp`; return their row counts and (count, content hash) per table."""
    counts: dict[str, int] = {}
    content: dict[str, tuple[int, str]] = {}
    run(conn, f"ATTACH {_quote(tmp)} AS __snapshot")
    try:
        for table in published_tables(conn):
            schema, name = table.split(".")
            run(conn, f"CREATE SCHEMA IF NOT EXISTS __snapshot.{schema}")
            run(conn, f"CREATE TABLE __snapshot.{schema}.{name} AS SELECT * FROM {schema}.{name}")
            n, digest = run(conn, f"SELECT count(*), CAST(coalesce(sum(hash(t)), 0) AS VARCHAR) "
                                  f"FROM __snapshot.{schema}.{name} t")[0]
            counts[table], content[table] = n, (n, digest)
        # content_hash: an order-independent hash of the table's rows, so an unchanged warehouse is not republished
        run(conn, "CREATE TABLE __snapshot.main._published (table_name VARCHAR, row_count BIGINT, "
                  "content_hash VARCHAR, published_at TIMESTAMP DEFAULT current_timestamp)")
        if counts:  # a run that failed before any dashboard table existed publishes an empty snapshot
            conn.executemany("INSERT INTO __snapshot.main._published (table_name, row_count, content_hash) "
                             "VALUES (?, ?, ?)", [(t, n, h) for t, (n, h) in content.items()])
        run(conn, "CHECKPOINT __snapshot")
    finally:
        run(conn, "DETACH __snapshot")
    return counts, content
