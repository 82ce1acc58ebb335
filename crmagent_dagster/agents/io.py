"""Writing agent outputs: one month x segment partition per table, and where the Faiss files live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from crmagent_dagster.agents.tables import frame
from crmagent_dagster.sql import write_frame


def write_rows(conn: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], month: str, segment: str) -> int:
    return write_frame(conn, table, frame(table, rows), {"month": month, "segment": segment})


def index_path(database: str, month: str, segment: str) -> Path:
    """Faiss files sit beside the DuckDB file: <dir>/indexes/<month>/<segment>.faiss."""
    return Path(database).resolve().parent / "indexes" / month / f"{segment}.faiss"


def llm_metadata(runs: list) -> dict[str, Any]:
    """Sum LLMRun metadata over the runs of one materialization (empty for the rule engine)."""
    total: dict[str, Any] = {}
    for run in runs:
        for key, value in run.metadata().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            elif key == "llm_models":
                total[key] = ", ".join(sorted(set(filter(None, (total.get(key, "") + ", " + value).split(", ")))))
    return total
