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
        counts = _copy(conn, tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return counts


def _copy(conn: duckdb.DuckDBPyConnection, tmp: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    run(conn, f"ATTACH {_quote(tmp)} AS __snapshot")
    try:
        for table in published_tables(conn):
            schema, name = table.split(".")
            run(conn, f"CREATE SCHEMA IF NOT EXISTS __snapshot.{schema}")
            run(conn, f"CREATE TABLE __snapshot.{schema}.{name} AS SELECT * FROM {schema}.{name}")
            counts[table] = run(conn, f"SELECT count(*) FROM __snapshot.{schema}.{name}")[0][0]
        run(conn, "CREATE TABLE __snapshot.main._published (table_name VARCHAR, row_count BIGINT, "
                  "published_at TIMESTAMP DEFAULT current_timestamp)")
        if counts:  # a run that failed before any dashboard table existed publishes an empty snapshot
            conn.executemany("INSERT INTO __snapshot.main._published (table_name, row_count) VALUES (?, ?)",
                             list(counts.items()))
        run(conn, "CHECKPOINT __snapshot")
    finally:
        run(conn, "DETACH __snapshot")
    return counts
