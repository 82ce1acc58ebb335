"""Load the team's real logs for a month from a landing folder.

Layout: `<landing_dir>/<YYYY-MM>/<table>.parquet` or `<table>.csv`, or a folder
`<table>/` holding several .parquet/.csv parts. Every table of the raw schema is required.
Values are read as text (CSV) or cast to text (Parquet): typing happens in staging, so
one bad value quarantines one row instead of failing the file. A file that cannot be read
or lacks a required column fails with a message naming the file and the column.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from crmagent_dagster.pipeline import with_lineage
from crmagent_dagster.raw_schema import RAW_TABLES


class LandingError(ValueError):
    """A landing file is missing, unreadable or lacks required columns."""


def month_folder(landing_dir: str | Path, month: str) -> Path:
    return Path(landing_dir) / month


def has_landing_month(landing_dir: str | Path, month: str) -> bool:
    folder = month_folder(landing_dir, month)
    return folder.is_dir() and any(folder.iterdir())


def table_files(folder: Path, table: str) -> list[Path]:
    files = [folder / f"{table}.parquet", folder / f"{table}.csv"]
    parts = folder / table
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".parquet", ".csv"))
    return [f for f in files if f.is_file()]


def read_file(path: Path, table: str) -> pl.DataFrame:
    """One landing file as all-text columns of `table`, with `_source` and `_row_id`."""
    required = [c for c, _, _ in RAW_TABLES[table]]
    try:
        if path.suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
        else:
            frame = pl.read_parquet(path)
    except Exception as e:  # polars raises several types for truncated/corrupt files
        raise LandingError(f"{path}: cannot be read as {path.suffix[1:]} for raw.{table}: {e}") from e
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LandingError(
            f"{path}: missing column(s) {', '.join(missing)} required by raw.{table} "
            f"(found: {', '.join(frame.columns) or 'none'})"
        )
    return with_lineage(frame.select([pl.col(c).cast(pl.Utf8) for c in required]), str(path))


def read_landing_month(landing_dir: str | Path, month: str) -> dict[str, pl.DataFrame]:
    """All raw tables of a month from its landing folder."""
    folder = month_folder(landing_dir, month)
    tables: dict[str, pl.DataFrame] = {}
    absent = []
    for table in RAW_TABLES:
        files = table_files(folder, table)
        if not files:
            absent.append(table)
            continue
        tables[table] = pl.concat([read_file(f, table) for f in files])
    if absent:
        raise LandingError(
            f"{folder}: no file for raw table(s) {', '.join(absent)} "
            f"(expected <table>.parquet, <table>.csv or a <table>/ folder of parts)"
        )
    return tables


def write_landing_month(tables: dict[str, pl.DataFrame], landing_dir: str | Path, month: str) -> Path:
    """Write raw tables as Parquet in the landing layout (used by `crmagent generate`)."""
    folder = month_folder(landing_dir, month)
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        frame.write_parquet(folder / f"{table}.parquet")
    return folder
