"""Load the team's real logs for a month from a landing folder, read in place by DuckDB.

Layout: `<landing_dir>/<YYYY-MM>/`, where every file whose name starts with a raw table's name belongs to that
table (`delivery_logs.parquet`, `delivery_logs_part2.parquet`, `delivery_logs (1).parquet`,
`delivery_logs-0001.csv.gz`), and so does every file in a folder `<table>/` (Spark and warehouse exports write
part files). Parquet and CSV, CSV optionally `.gz` or `.zst`. Every table of the raw schema is required. Nothing
is skipped or doubled in silence: a data file no table claims, one export saved in two formats
(`delivery_logs.parquet` beside `delivery_logs.csv`) and a list or record column (nested Parquet) fail the load
naming the file; names starting with `_` or `.` are markers, never read as data.

Raw keeps every value as text, so one bad value quarantines one row in staging instead of failing a file.
Typed Parquet columns are written as the text staging parses: a timestamp is used as a timestamp (with a time
zone, converted to the platform's zone; without one, taken as already in it), a date as midnight (a voucher's
`expires_at` as the end of that day), decimals and numbers as their digits, dictionaries as their values.

Bytes that are not UTF-8 never stop a file and are never staged as mojibake: the row is loaded with `_issue`
naming the file, row and column, and staging quarantines it (`invalid_encoding`). A CSV written in another
encoding loads once it is declared, in a sidecar `<file>.encoding` (e.g. `cp1252`) or the `csv_encoding` setting.

The whole month, every table and the manifest of files read, is one transaction: a load that fails (an empty
folder, a missing table, a table with 0 rows, an unreadable file) leaves the previous version in place.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.sql import column_definition, ensure_schemas, run, transaction

DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".csv.zst")
# Tables a month cannot do without: a file with only a header for one of these fails the load.
NONEMPTY_TABLES = ("shops", "plans", "templates", "delivery_logs")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
END_OF_DAY_COLUMNS = frozenset({"expires_at"})
# `crmagent generate` writes the generator's ground truth beside the tables; a folder with it is synthetic.
SYNTHETIC_MARKER = "_synthetic_template_truth.parquet"


class LandingError(ValueError):
    """A landing month that cannot be loaded: a file missing, unreadable, without a required column, or empty."""


class LandingMissing(LandingError):
    """The month has no landing folder at all."""


@dataclass(frozen=True)
class ManifestRow:
    """One file read for a month: which table it fed, how many rows, how it was decoded."""

    table: str
    file: str
    format: str
    rows: int
    encoding: str
    rows_with_issues: int


def month_folder(landing_dir: str | Path, month: str) -> Path:
    return Path(landing_dir) / month


def has_landing_folder(landing_dir: str | Path, month: str) -> bool:
    """A month with a landing folder is loaded from it, even empty (and then fails): never generated."""
    return month_folder(landing_dir, month).is_dir()


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(DATA_SUFFIXES)


def table_files(folder: Path, table: str) -> list[Path]:
    """Every data file of `table`: names starting with the table's name, and everything under `<table>/`."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.name.startswith(table) and _is_data_file(p)]
    parts = folder / table
    if parts.is_dir():
        files += [p for p in parts.rglob("*") if _is_data_file(p)]
    return sorted(set(files))


def _format(path: Path) -> str:
    return "parquet" if path.name.lower().endswith(".parquet") else "csv"


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """The raw tables with their documented columns; a table from before `_issue` existed gets it added."""
    ensure_schemas(conn)
    for table, columns in RAW_TABLES.items():
        cols = ", ".join(column_definition(f"raw.{table}", c, "VARCHAR") for c, _, _ in columns)
        run(conn, f"CREATE TABLE IF NOT EXISTS raw.{table} (month VARCHAR, {cols}, _source VARCHAR, "
                  "_row_id BIGINT, _issue VARCHAR)")
        have = {r[0] for r in conn.execute(f"DESCRIBE raw.{table}").fetchall()}
        if "_issue" not in have:
            run(conn, f"ALTER TABLE raw.{table} ADD COLUMN _issue VARCHAR")
    run(conn, "CREATE TABLE IF NOT EXISTS raw.landing_manifest (month VARCHAR, source VARCHAR, "
              "source_table VARCHAR, file VARCHAR, format VARCHAR, rows BIGINT, encoding VARCHAR, "
              "rows_with_issues BIGINT, loaded_at TIMESTAMP)")


# --- reading one file ------------------------------------------------------------------------------
def _declared_encoding(path: Path, default: str | None) -> str | None:
    sidecar = path.with_name(path.name + ".encoding")
    if sidecar.is_file():
        return sidecar.read_text(encoding="ascii").strip() or None
    return default


def _is_utf8(encoding: str | None) -> bool:
    return encoding is None or encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")


def _columns(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column name -> DuckDB type of one file, without reading its rows."""
    if _format(path) == "parquet":
        rel = "read_parquet($path)"
    else:
        rel = "read_csv($path, all_varchar = true, header = true)"
    try:
        return {r[0]: r[1] for r in conn.execute(f"DESCRIBE SELECT * FROM {rel}", {"path": str(path)}).fetchall()}
    except duckdb.Error as e:
        if _format(path) == "csv" and "unicode" in str(e).lower():
            header = _csv_text(path, "latin-1").split("\n", 1)[0]  # the header of a non-UTF-8 file
            return {c.strip().strip('"'): "VARCHAR" for c in header.split(",")}
        raise LandingError(f"{path}: cannot be read as {_format(path)}: {str(e).splitlines()[0]}") from e


def _is_nested(dtype: str) -> bool:
    """A list, array, struct, map or union column: text of it would be `[u4218]` or `{'id': NULL}`, not a value."""
    kind = dtype.upper()
    return kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION"))


def _text_expr(column: str, dtype: str) -> str:
    """SQL that turns one typed column into the text raw keeps."""
    col = f'"{column}"'
    kind = dtype.upper()
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"strftime(timezone($tz, {col}), '{TIME_FORMAT}')"
    if kind.startswith("TIMESTAMP"):
        return f"strftime({col}::TIMESTAMP, '{TIME_FORMAT}')"
    if kind == "DATE":
        end = " + INTERVAL 86399 SECOND" if column in END_OF_DAY_COLUMNS else ""
        return f"strftime({col}::TIMESTAMP{end}, '{TIME_FORMAT}')"
    if kind == "BLOB":
        return f"TRY(decode({col}))"
    return f"CAST({col} AS VARCHAR)"


def _read_in_place(conn: duckdb.DuckDBPyConnection, table: str, path: Path, month: str, types: dict[str, str],
                   tz: str, target: str) -> int:
    """Read one file with DuckDB into the temp table `target`, as the text raw keeps."""
    required = [c for c, _, _ in RAW_TABLES[table]]
    exprs = ", ".join(f"{_text_expr(c, types[c])} AS {c}" for c in required)
    if _format(path) == "parquet":
        source, row_id = "read_parquet($path, file_row_number = true)", "file_row_number"
    else:
        source, row_id = "read_csv($path, all_varchar = true, header = true)", "row_number() OVER () - 1"
    run(conn, f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT $month AS month, {exprs}, $source AS _source, "
              f"CAST({row_id} AS BIGINT) AS _row_id, CAST(NULL AS VARCHAR) AS _issue FROM {source}",
              {"month": month, "path": str(path), "source": str(path), **({"tz": tz} if "$tz" in exprs else {})})
    return run(conn, f"SELECT count(*) FROM {target}")[0][0]


def _csv_text(path: Path, encoding: str) -> str:
    """A CSV file's text, decompressed and decoded (undecodable bytes become U+FFFD under utf-8)."""
    import pyarrow as pa

    name = path.name.lower()
    compression = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
    with pa.input_stream(str(path), compression=compression) as stream:
        data = stream.read()
    return data.decode(encoding, errors="replace" if _is_utf8(encoding) else "strict")


def _read_csv_decoded(path: Path, table: str, encoding: str | None) -> tuple[pl.DataFrame, list[str | None]]:
    """Rows of a CSV that DuckDB could not read as UTF-8: decoded with the declared encoding, or as UTF-8 with
    every row holding undecodable bytes flagged (and shown as it reads in Latin-1, to help declare it)."""
    required = [c for c, _, _ in RAW_TABLES[table]]
    try:
        text = _csv_text(path, encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as e:
        raise LandingError(f"{path}: cannot be decoded as the declared {encoding!r}: {e}") from e
    frame = pl.read_csv(io.StringIO(text), infer_schema=False).select(required)
    issues: list[str | None] = [None] * frame.height
    if _is_utf8(encoding):
        latin = pl.read_csv(io.StringIO(_csv_text(path, "latin-1")), infer_schema=False).select(required)
        for col in required:
            bad = frame[col].str.contains("\ufffd", literal=True).fill_null(False)
            for i in bad.arg_true().to_list():
                if issues[i] is None:
                    issues[i] = (f"invalid_encoding: {col} holds bytes that are not UTF-8 ({latin[col][i]!r} if read "
                                 f"as Latin-1) in {path}, data row {i + 1}; declare the file's encoding in "
                                 f"{path.name}.encoding to load it")
    return frame, issues


def _read_parquet_decoded(path: Path, table: str) -> tuple[pl.DataFrame, list[str | None]]:
    """Rows of a Parquet file whose text DuckDB refused as invalid UTF-8: read as bytes, flagged per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    required = [c for c, _, _ in RAW_TABLES[table]]
    arrow = pq.read_table(str(path), columns=required)
    columns, issues = {}, [None] * arrow.num_rows
    for col in required:
        data = arrow.column(col)
        if pa.types.is_string(data.type) or pa.types.is_large_string(data.type) or pa.types.is_binary(data.type):
            values = []
            for i, raw in enumerate(data.cast(pa.large_binary()).to_pylist()):
                if raw is None:
                    values.append(None)
                    continue
                try:
                    values.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    values.append(raw.decode("utf-8", errors="replace"))
                    if issues[i] is None:
                        issues[i] = (f"invalid_encoding: {col} holds bytes that are not UTF-8 "
                                     f"({raw.decode('latin-1')!r} if read as Latin-1) in {path}, row {i}")
            columns[col] = values
        else:
            columns[col] = [None if v is None else str(v) for v in data.to_pylist()]
    return pl.DataFrame(columns, schema={c: pl.Utf8 for c in required}), issues


def _read_frame(conn: duckdb.DuckDBPyConnection, table: str, path: Path, month: str, frame: pl.DataFrame,
                issues: list[str | None], target: str) -> int:
    from crmagent_dagster.sql import registered_frame

    required = [c for c, _, _ in RAW_TABLES[table]]
    frame = frame.with_columns(pl.Series("_issue", issues, dtype=pl.Utf8), pl.lit(str(path)).alias("_source"),
                               pl.int_range(pl.len(), dtype=pl.Int64).alias("_row_id"))
    with registered_frame(conn, "__landing", frame):
        run(conn, f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT $month AS month, {', '.join(required)}, "
                  "_source, _row_id, _issue FROM __landing", {"month": month})
    return frame.height


def _read_file(conn: duckdb.DuckDBPyConnection, table: str, path: Path, month: str, types: dict[str, str], *,
               tz: str, csv_encoding: str | None, target: str) -> ManifestRow:
    """One file into the temp table `target`. Runs outside the month's transaction: a file DuckDB refuses
    (bytes that are not UTF-8) is read again row by row without aborting anything."""
    fmt = _format(path)
    encoding = _declared_encoding(path, csv_encoding) if fmt == "csv" else None
    if fmt == "csv" and not _is_utf8(encoding):
        frame, issues = _read_csv_decoded(path, table, encoding)
        return ManifestRow(table, str(path), fmt, _read_frame(conn, table, path, month, frame, issues, target),
                           encoding, 0)
    try:
        return ManifestRow(table, str(path), fmt, _read_in_place(conn, table, path, month, types, tz, target),
                           "utf-8", 0)
    except duckdb.InvalidInputException as e:
        message = str(e).lower()
        if "unicode" not in message and "string encoding" not in message:
            raise LandingError(f"{path}: cannot be read as {fmt} for raw.{table}: {str(e).splitlines()[0]}") from e
    except duckdb.Error as e:
        raise LandingError(f"{path}: cannot be read as {fmt} for raw.{table}: {str(e).splitlines()[0]}") from e
    frame, issues = _read_csv_decoded(path, table, None) if fmt == "csv" else _read_parquet_decoded(path, table)
    rows = _read_frame(conn, table, path, month, frame, issues, target)
    return ManifestRow(table, str(path), fmt, rows, "utf-8 (rows with other bytes flagged)",
                       sum(i is not None for i in issues))


# --- the month -------------------------------------------------------------------------------------
def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return str(path.with_name(name[: -len(suffix)]))
    return str(path)


def unclaimed_files(folder: Path, files: dict[str, list[Path]]) -> list[Path]:
    """Data files in the month's folder that no raw table claims (a name outside the convention, a folder not
    named after a table). Names starting with `_` or `.` are the loader's own markers and never data."""
    claimed = {p for paths in files.values() for p in paths}
    return sorted(p for p in folder.rglob("*") if _is_data_file(p) and p not in claimed
                  and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts))


def same_export_twice(files: dict[str, list[Path]]) -> list[tuple[Path, Path]]:
    """Pairs of files with one name in two formats (`delivery_logs.parquet` beside `delivery_logs.csv`): the same
    export saved twice, which would load every row twice."""
    pairs = []
    for paths in files.values():
        by_stem: dict[str, Path] = {}
        for path in paths:
            if _stem(path) in by_stem:
                pairs.append((by_stem[_stem(path)], path))
            by_stem.setdefault(_stem(path), path)
    return pairs


def month_files(landing_dir: str | Path, month: str, formats: str = "<table>.parquet, <table>.csv(.gz/.zst)"
                ) -> tuple[Path, dict[str, list[Path]]]:
    """The month's folder and every raw table's files (both engines' rules); fails naming what is absent, a data
    file no table claims, and one export saved in two formats: none of them is skipped or loaded twice in silence."""
    folder = month_folder(landing_dir, month)
    if not folder.is_dir():
        raise LandingMissing(f"no landing folder {folder} for {month}")
    files = {t: table_files(folder, t) for t in RAW_TABLES}
    absent = [t for t, fs in files.items() if not fs]
    if absent:
        empty = " (the folder is empty)" if len(absent) == len(RAW_TABLES) else ""
        raise LandingError(f"{folder}: no file for raw table(s) {', '.join(absent)}{empty}: expected {formats}, "
                           "part files named <table>..., or a <table>/ folder of parts")
    stray = unclaimed_files(folder, files)
    if stray:
        raise LandingError(f"{folder}: {len(stray)} data file(s) belong to no raw table: "
                           f"{', '.join(str(p) for p in stray[:10])}; a file's name must start with its table's name "
                           f"({', '.join(RAW_TABLES)}) or it must sit in a <table>/ folder; rename it, or move it out "
                           "(or prefix it with _ to keep it there unread)")
    twice = same_export_twice(files)
    if twice:
        raise LandingError(f"{folder}: the same export in two formats would load its rows twice: "
                           + "; ".join(f"{a.name} and {b.name}" for a, b in twice) + "; keep one of each")
    return folder, files


def require_rows(folder: Path, rows: dict[str, int], files: dict[str, list[Path]]) -> None:
    """A month cannot do without NONEMPTY_TABLES: fail naming the tables and their files when one read 0 rows."""
    empty = [t for t in NONEMPTY_TABLES if rows[t] == 0]
    if empty:
        raise LandingError(f"{folder}: raw table(s) {', '.join(empty)} have 0 rows "
                           f"(files: {', '.join(str(p) for t in empty for p in files[t])}); a month needs them")


def landing_source(folder: Path) -> tuple[str, bool]:
    """The source the month is recorded under, and whether `crmagent generate` wrote it (say so in every output)."""
    generated = (folder / SYNTHETIC_MARKER).exists()
    return f"{'synthetic-landing' if generated else 'landing'}:{folder}", generated


def plan_month(conn: duckdb.DuckDBPyConnection, landing_dir: str | Path, month: str
               ) -> dict[str, list[tuple[Path, dict[str, str]]]]:
    """Every table's files with their column types, checked before anything is written."""
    _, files = month_files(landing_dir, month)
    plan: dict[str, list[tuple[Path, dict[str, str]]]] = {}
    for table, paths in files.items():
        required = [c for c, _, _ in RAW_TABLES[table]]
        plan[table] = []
        for path in paths:
            types = _columns(conn, path)
            missing = [c for c in required if c not in types]
            if missing:
                raise LandingError(f"{path}: missing column(s) {', '.join(missing)} required by raw.{table} "
                                   f"(found: {', '.join(types) or 'none'})")
            nested = [f"{c} ({types[c]})" for c in required if _is_nested(types[c])]
            if nested:
                raise LandingError(f"{path}: column(s) {', '.join(nested)} hold lists or records, not one value per "
                                   f"row; raw.{table} needs one value per cell: flatten them in the export")
            plan[table].append((path, types))
    return plan


@dataclass
class PreparedMonth:
    """A month's files read into temp tables, checked, waiting to replace the raw tables in one transaction."""

    month: str
    source: str
    manifest: list[ManifestRow]
    temps: dict[str, list[str]]  # table -> temp tables holding its files

    def commit(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Replace every raw table's month and the manifest; call inside a transaction."""
        required = {t: [c for c, _, _ in cols] for t, cols in RAW_TABLES.items()}
        for table, temps in self.temps.items():
            run(conn, f"DELETE FROM raw.{table} WHERE month = $month", {"month": self.month})
            cols = ", ".join(["month", *required[table], "_source", "_row_id", "_issue"])
            for temp in temps:
                run(conn, f"INSERT INTO raw.{table} ({cols}) SELECT {cols} FROM {temp}")
        record_manifest(conn, self.month, self.source, self.manifest)

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        for temps in self.temps.values():
            for temp in temps:
                run(conn, f"DROP TABLE IF EXISTS {temp}")


def prepare_landing_month(conn: duckdb.DuckDBPyConnection, landing_dir: str | Path, month: str, *,
                          timezone: str = "UTC", csv_encoding: str | None = None) -> PreparedMonth:
    """Read and check every file of the month, writing nothing yet. Raises LandingError for a missing folder,
    table or column, an unreadable file, or a required table with 0 rows."""
    ensure_raw_tables(conn)
    plan = plan_month(conn, landing_dir, month)
    folder = month_folder(landing_dir, month)
    prepared = PreparedMonth(month, landing_source(folder)[0], [], {})
    try:
        for table, files in plan.items():
            prepared.temps[table] = []
            for n, (path, types) in enumerate(files):
                target = f"__landing_{table}_{n}"
                prepared.temps[table].append(target)
                prepared.manifest.append(_read_file(conn, table, path, month, types, tz=timezone,
                                                    csv_encoding=csv_encoding, target=target))
        rows = {t: sum(m.rows for m in prepared.manifest if m.table == t) for t in RAW_TABLES}
        require_rows(folder, rows, {t: [path for path, _ in files] for t, files in plan.items()})
    except BaseException:
        prepared.drop(conn)
        raise
    return prepared


def load_landing_month(conn: duckdb.DuckDBPyConnection, landing_dir: str | Path, month: str, *, timezone: str = "UTC",
                       csv_encoding: str | None = None) -> list[ManifestRow]:
    """Replace the month in every raw table from its landing folder, in one transaction, with the manifest."""
    prepared = prepare_landing_month(conn, landing_dir, month, timezone=timezone, csv_encoding=csv_encoding)
    try:
        with transaction(conn):
            prepared.commit(conn)
    finally:
        prepared.drop(conn)
    return prepared.manifest


def record_manifest(conn: duckdb.DuckDBPyConnection, month: str, source: str, manifest: list[ManifestRow]) -> None:
    run(conn, "DELETE FROM raw.landing_manifest WHERE month = $month", {"month": month})
    conn.executemany("INSERT INTO raw.landing_manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
                     [(month, source, m.table, m.file, m.format, m.rows, m.encoding, m.rows_with_issues)
                      for m in manifest])


def write_landing_month(tables: dict[str, pl.DataFrame], landing_dir: str | Path, month: str) -> Path:
    """Write raw tables as Parquet in the landing layout (used by `crmagent generate`)."""
    folder = month_folder(landing_dir, month)
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        frame.write_parquet(folder / f"{table}.parquet")
    return folder
