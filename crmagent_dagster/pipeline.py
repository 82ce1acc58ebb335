"""Plain functions for raw -> staging -> engagement -> quartile labels, on a DuckDB connection.

Assets call these; so do tests and the bench, without Dagster in the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from crmagent_dagster.currency import alias_lists
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.segments import EVENT_TYPES, EVENT_WEIGHTS, SEGMENT_KEYS, VOUCHER_TYPES
from crmagent_dagster.sql import (
    create_view,
    ensure_schemas,
    is_view,
    run,
    table_exists,
    transaction,
    write_checked_model,
    write_frame,
    write_model,
)

# Staging order matters: events are checked against the staged deliveries.
STAGED_TABLES: tuple[str, ...] = tuple(RAW_TABLES)
_ALIASES, _ALIAS_CODES = alias_lists()
VALIDATION_PARAMS = {
    "segments": list(SEGMENT_KEYS),
    "event_types": list(EVENT_TYPES),
    "voucher_types": list(VOUCHER_TYPES),
    # Currencies as merchants type them ("RM", "₱", "Rp") -> ISO codes: the one normalization the agents use.
    "currency_aliases": _ALIASES,
    "currency_codes": _ALIAS_CODES,
}
_MODEL_PARAMS = {
    "staging.delivery_logs": ("segments",),
    "staging.plans": ("segments",),
    "staging.engagement_events": ("event_types",),
    "staging.vouchers": ("voucher_types", "currency_aliases", "currency_codes"),
}


@dataclass(frozen=True)
class LabelSettings:
    min_samples: int = 30
    strong_share: float = 0.25
    weak_share: float = 0.25

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        for name in ("strong_share", "weak_share"):
            if not 0 < getattr(self, name) <= 0.5:
                raise ValueError(f"{name} must be in (0, 0.5], got {getattr(self, name)}")


def with_lineage(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Add `_source` and `_row_id` (0-based row position in that source)."""
    return frame.with_row_index("_row_id").select(
        *frame.columns, pl.lit(source).alias("_source"), pl.col("_row_id").cast(pl.Int64)
    )


def load_raw_table(conn: duckdb.DuckDBPyConnection, table: str, month: str, frame: pl.DataFrame) -> int:
    """Replace `raw.<table>` for the month. `frame` must already carry `_source` and `_row_id`."""
    from crmagent_dagster.landing import ensure_raw_tables

    ensure_raw_tables(conn)
    text_cols = [c for c, _, _ in RAW_TABLES[table]]
    frame = frame.select([pl.col(c).cast(pl.Utf8) for c in text_cols] + ["_source", "_row_id"])
    return write_frame(conn, f"raw.{table}", frame, {"month": month})


def stage_table(conn: duckdb.DuckDBPyConnection, table: str, month: str) -> tuple[int, int]:
    """Stage one raw table for the month: (rows kept, rows quarantined)."""
    model = f"staging.{table}"
    params = {k: VALIDATION_PARAMS[k] for k in _MODEL_PARAMS.get(model, ())}
    return write_checked_model(conn, model, f"raw.{table}", month, params)


def stage_month(conn: duckdb.DuckDBPyConnection, month: str) -> dict[str, tuple[int, int]]:
    """Stage every raw table of the month in one transaction (all or none): table -> (rows kept, rows quarantined).
    A caller's open transaction is joined, so checks computed inside it see exactly what will be committed."""
    with transaction(conn):
        return {table: stage_table(conn, table, month) for table in STAGED_TABLES}


def score_logs(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)define `core.log_engagement`, the view that scores every staged delivery, and its weights table.

    A view, because a month's per-delivery scores are read once (by the aggregates) and storing a second copy of
    every delivery cost more than computing them: the month filter of a reader reaches the staged tables."""
    ensure_schemas(conn)
    with transaction(conn):
        run(conn, "CREATE TABLE IF NOT EXISTS core.event_weights (event_type VARCHAR, weight INTEGER)")
        run(conn, "DELETE FROM core.event_weights")
        conn.executemany("INSERT INTO core.event_weights VALUES ($event_type, $weight)",
                         [{"event_type": e, "weight": w} for e, w in EVENT_WEIGHTS.items()])
        if table_exists(conn, "core.log_engagement") and not is_view(conn, "core.log_engagement"):
            run(conn, "DROP TABLE core.log_engagement")  # before 0.14 it was a table; the view replaces it
        create_view(conn, "core.log_engagement")


def aggregate_engagement(conn: duckdb.DuckDBPyConnection, month: str) -> int:
    return write_model(conn, "core.engagement_aggregates", {"month": month})


def label_segment(conn: duckdb.DuckDBPyConnection, month: str, segment: str, settings: LabelSettings) -> int:
    if segment not in SEGMENT_KEYS:
        raise ValueError(f"unknown segment {segment!r}; expected one of {', '.join(SEGMENT_KEYS)}")
    return write_model(
        conn,
        "core.quartile_labels",
        {"month": month, "segment": segment},
        {"min_samples": settings.min_samples, "strong_share": settings.strong_share, "weak_share": settings.weak_share},
    )
