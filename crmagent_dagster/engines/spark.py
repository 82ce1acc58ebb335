"""The SQL stages on Spark: landing Parquet -> raw -> staging (with quarantine) -> log engagement -> aggregates ->
quartile labels, from the same dbt_like_sql/ models as DuckDB (transpiled, engines/transpile.py).

Tables live in a lake of Parquet folders, `<lake>/<schema>/<table>/month=YYYY-MM/` (quartile labels also by
`segment=`, the quarantine by `source_table=`). Every write replaces exactly its partition, as sql.py's
delete-then-insert does: the model's rows go to a scratch folder first, rows outside the partition stop the write,
an empty result removes the partition (Spark's dynamic overwrite alone would keep the old one), and the stored
count is compared with the produced one. Spark has no transaction across folders, so a failure between two
tables' writes leaves the first written; re-running the stage repairs it.

After each stage the month's rows the agents read are loaded into the DuckDB file, one transaction per stage,
DuckDB reading the Parquet in place (`DUCKDB_TABLES`). pyspark is imported only when a session is asked for.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from crmagent_dagster.landing import (
    END_OF_DAY_COLUMNS,
    TIME_FORMAT,
    LandingError,
    ManifestRow,
    landing_source,
    month_files,
    require_rows,
)
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.sql import QUARANTINE_TABLE, ensure_schemas, is_view, run, table_exists, transaction

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

ENGINES = ("duckdb", "spark")
# Session settings the models rely on (applied with spark.conf.set, so a Spark Connect session gets them too):
# DuckDB's TIMESTAMP has no zone, so timestamps are parsed as TIMESTAMP_NTZ and the session renders in UTC;
# partition folder values stay text ('2025-04' is not read back as a date).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}
JAVA_TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"  # landing.TIME_FORMAT ('%Y-%m-%d %H:%M:%S') in Java's letters
assert TIME_FORMAT == "%Y-%m-%d %H:%M:%S", "keep JAVA_TIME_FORMAT in step with landing.TIME_FORMAT"

# What the agents and the later stages read from DuckDB: these tables' months are copied there after Spark writes them.
DUCKDB_TABLES = ("staging.shops", "staging.plans", "staging.templates", "staging.products", "staging.vouchers",
                 QUARANTINE_TABLE, "core.log_engagement", "core.engagement_aggregates", "core.quartile_labels")
# Columns whose DuckDB type Parquet cannot carry: cast when loaded back (DuckDB's to_json gives JSON).
DUCKDB_CASTS = {(QUARANTINE_TABLE, "raw_record"): "JSON"}


def engine_from_env() -> str:
    """$CRMAGENT_ENGINE (duckdb or spark), default duckdb."""
    engine = (os.environ.get("CRMAGENT_ENGINE") or "duckdb").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"CRMAGENT_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


class SparkEngine(dg.ConfigurableResource):
    """Where the SQL stages run when the engine is `spark`: a SparkSession made on first use, never at import."""

    master: str = Field(default="local[*]", description="spark.master: local[*], or a cluster (spark://host:7077, "
                                                        "yarn, k8s://...). Ignored when `remote` is set.")
    remote: str | None = Field(default=None, description="Spark Connect URL (sc://host:15002); used instead of master.")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings, e.g. "
                                                                   "spark.sql.shuffle.partitions.")
    lake_dir: str | None = Field(default=None, description="Root of the Parquet lake; default: a lake/ folder beside "
                                                           "the DuckDB file. Spark writes it and DuckDB reads it.")
    app_name: str = Field(default="crmagent", description="spark.app.name")

    @classmethod
    def from_env(cls) -> SparkEngine:
        """$CRMAGENT_SPARK_MASTER, $CRMAGENT_SPARK_REMOTE, $CRMAGENT_LAKE_DIR over the defaults."""
        settings = {"master": os.environ.get("CRMAGENT_SPARK_MASTER"), "remote": os.environ.get("CRMAGENT_SPARK_REMOTE"),
                    "lake_dir": os.environ.get("CRMAGENT_LAKE_DIR")}
        return cls(**{k: v for k, v in settings.items() if v})

    def lake(self, duckdb_database: str) -> Lake:
        if self.lake_dir:
            return Lake(self.lake_dir)
        if duckdb_database == ":memory:":
            raise ValueError("the Spark engine needs a lake_dir when DuckDB is in memory")
        return Lake(str(Path(duckdb_database).resolve().parent / "lake"))

    def session(self) -> SparkSession:
        """The SparkSession (made once per process, then reused), with SESSION_CONF applied."""
        if not self.remote:
            require_java()
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName(self.app_name)
        builder = builder.remote(self.remote) if self.remote else builder.master(self.master)
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        for key, value in SESSION_CONF.items():
            spark.conf.set(key, value)
        return spark


def require_java() -> None:
    """Local Spark starts a JVM: fail with what to install rather than pyspark's 'Java gateway exited'."""
    java_home = os.environ.get("JAVA_HOME")
    if (java_home and Path(java_home, "bin", "java").exists()) or shutil.which("java"):
        return
    raise RuntimeError("the Spark engine needs Java 17 or newer (Spark 4): install it (Debian/Ubuntu: "
                       "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME; or set CRMAGENT_ENGINE=duckdb")


# --- the lake ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lake:
    """Parquet folders per table and partition, under a local folder or a URI pyarrow can list (s3://, gs://,
    hdfs://). Partition values come from this package (months, segment keys, raw table names), never from input,
    and need no escaping in folder names."""

    root: str

    def __post_init__(self) -> None:
        if "://" not in self.root:
            object.__setattr__(self, "root", str(Path(self.root).resolve()))

    def path(self, table: str) -> str:
        schema, name = table.split(".")
        return f"{self.root.rstrip('/')}/{schema}/{name}"

    def partition_path(self, table: str, partition: Mapping[str, str]) -> str:
        return "/".join([self.path(table), *(f"{k}={v}" for k, v in partition.items())])

    def scratch(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/_scratch/{name}-{uuid.uuid4().hex[:12]}"

    def _fs(self) -> tuple[Any, str]:
        """(pyarrow filesystem, the root as that filesystem names it)."""
        from pyarrow import fs

        return fs.FileSystem.from_uri(self.root) if "://" in self.root else (fs.LocalFileSystem(), self.root)

    def _native(self, path: str) -> tuple[Any, str, str]:
        """(filesystem, `path` as it names it, the prefix that turns its names back into ours, e.g. 's3://')."""
        filesystem, root = self._fs()
        return filesystem, root + path[len(self.root):], self.root[: len(self.root) - len(root)]

    def exists(self, path: str) -> bool:
        from pyarrow import fs

        filesystem, native, _ = self._native(path)
        return filesystem.get_file_info(native).type == fs.FileType.Directory

    def remove(self, path: str) -> None:
        filesystem, native, _ = self._native(path)
        if self.exists(path):
            filesystem.delete_dir(native)

    def parquet_files(self, path: str) -> list[str]:
        """The Parquet files directly in one partition folder (what DuckDB reads in place)."""
        from pyarrow import fs

        if not self.exists(path):
            return []
        filesystem, native, scheme = self._native(path)
        infos = filesystem.get_file_info(fs.FileSelector(native, recursive=False))
        return sorted(scheme + i.path for i in infos if i.is_file and i.path.endswith(".parquet"))


# Partition columns per lake table (default: the month).
LAKE_PARTITIONS = {QUARANTINE_TABLE: ("month", "source_table"), "core.quartile_labels": ("month", "segment")}


def partition_columns(table: str) -> tuple[str, ...]:
    return LAKE_PARTITIONS.get(table, ("month",))


def _register(spark: SparkSession, lake: Lake, tables: Sequence[str]) -> None:
    """Each table a model reads, as the temp view the transpiled SQL names (a fresh file listing each time)."""
    from crmagent_dagster.engines.transpile import view_name

    for table in tables:
        if not lake.exists(lake.path(table)):
            raise LakeMissing(f"{table} has no data in the lake ({lake.path(table)}): run its stage on Spark first")
        spark.read.parquet(lake.path(table)).createOrReplaceTempView(view_name(table))


class LakeMissing(RuntimeError):
    """A table a Spark stage reads was never written to the lake."""


@dataclass
class Produced:
    """A model's rows held in a scratch folder, counted, waiting to replace one partition of a lake table."""

    table: str
    partition: dict[str, str]
    path: str
    rows: int
    flagged: int  # rows where `flag` held (staging: quarantined rows)


def produce(spark: SparkSession, lake: Lake, table: str, frame: DataFrame, partition: Mapping[str, str],
            flag: str | None = None) -> Produced:
    """Write `frame` to scratch and check it holds only rows of `partition` (as sql.py's _replace_from does); one
    aggregate counts the rows, the strays and the rows where the SQL condition `flag` holds."""
    from pyspark.sql import functions as F

    path = lake.scratch(table)
    frame.write.mode("overwrite").parquet(path)
    outside = F.lit(False)
    for column, value in partition.items():
        outside = outside | ~F.col(column).eqNullSafe(F.lit(value))
    flagged = F.sum(F.expr(flag).cast("int")) if flag else F.lit(0)
    rows, stray, n_flagged = spark.read.parquet(path).agg(
        F.count(F.lit(1)), F.sum(outside.cast("int")), flagged).collect()[0]
    if stray:
        lake.remove(path)
        raise RuntimeError(f"{table}: model produced {stray} row(s) outside partition {dict(partition)}")
    return Produced(table, dict(partition), path, rows, n_flagged or 0)


def replace_partition(spark: SparkSession, lake: Lake, table: str, frame: DataFrame, partition: Mapping[str, str],
                      rows: int) -> int:
    """Make the lake partition hold exactly `frame`'s `rows` rows (dynamic overwrite; no rows removes it)."""
    target = lake.partition_path(table, partition)
    if rows == 0:
        lake.remove(target)
    else:
        (frame.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
         .partitionBy(*partition).parquet(lake.path(table)))
    stored = stored_rows(spark, lake, table, partition)
    if stored != rows:
        raise RuntimeError(f"{table}: wrote {stored} row(s) for {dict(partition)} but the model produced {rows}")
    return stored


def commit(spark: SparkSession, lake: Lake, produced: Produced) -> int:
    """Replace the partition with the produced rows and drop the scratch folder."""
    try:
        return replace_partition(spark, lake, produced.table, spark.read.parquet(produced.path), produced.partition,
                                 produced.rows)
    finally:
        lake.remove(produced.path)


def stored_rows(spark: SparkSession, lake: Lake, table: str, partition: Mapping[str, str]) -> int:
    path = lake.partition_path(table, partition)
    return spark.read.parquet(path).count() if lake.exists(path) else 0


def run_model(spark: SparkSession, lake: Lake, table: str, params: Mapping[str, Any],
              partition: Mapping[str, str] | None = None) -> DataFrame:
    """The model for `table` as a Spark DataFrame (lazy), its inputs registered from the lake. A partition column the
    model does not bind (log_engagement, a view over every month in DuckDB) is cut here; Spark pushes it down."""
    from pyspark.sql import functions as F

    from crmagent_dagster.engines.transpile import spark_model, spark_params

    model = spark_model(table)
    _register(spark, lake, model.reads)
    frame = spark.sql(model.sql, args=spark_params(params, model))
    for column, value in (partition or {}).items():
        if column not in model.params:  # a bound one must stay inside the partition by itself (checked on write)
            frame = frame.where(F.col(column) == F.lit(value))
    return frame


def write_event_weights(spark: SparkSession, lake: Lake) -> None:
    """core.event_weights (Appendix A, segments.EVENT_WEIGHTS) in the lake, as pipeline.score_logs writes it in
    DuckDB: the log_engagement model reads the weights from it."""
    from crmagent_dagster.segments import EVENT_WEIGHTS

    (spark.createDataFrame(list(EVENT_WEIGHTS.items()), "event_type string, weight int")
     .write.mode("overwrite").parquet(lake.path("core.event_weights")))


def write_model(spark: SparkSession, lake: Lake, table: str, partition: Mapping[str, str],
                params: Mapping[str, Any] | None = None) -> int:
    """sql.write_model on Spark: the model's rows replace the partition. Returns the row count."""
    frame = run_model(spark, lake, table, {**partition, **(params or {})}, partition)
    return commit(spark, lake, produce(spark, lake, table, frame, partition))


# --- raw: landing Parquet -> raw.<table> ------------------------------------------------------------
def _text_column(name: str, dtype: Any, timezone: str):
    """One typed column as the text raw keeps: landing._text_expr in Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(f"`{name}`")
    if isinstance(dtype, T.TimestampType):  # an instant: shown in the platform's zone (the session renders UTC)
        return F.date_format(F.from_utc_timestamp(col, F.lit(timezone)), JAVA_TIME_FORMAT)
    if isinstance(dtype, T.TimestampNTZType):
        return F.date_format(col, JAVA_TIME_FORMAT)
    if isinstance(dtype, T.DateType):
        stamp = col.cast("timestamp_ntz")
        if name in END_OF_DAY_COLUMNS:
            stamp = stamp + F.expr("INTERVAL 86399 SECONDS")
        return F.date_format(stamp, JAVA_TIME_FORMAT)
    if isinstance(dtype, T.BinaryType):  # DuckDB: TRY(decode(blob)), NULL when not UTF-8
        return F.try_validate_utf8(col.cast("string"))
    if isinstance(dtype, T.StringType):  # bytes that are not UTF-8 become U+FFFD, as landing.py's fallback reads them
        return F.make_valid_utf8(col)
    return col.cast("string")


def _issue_column(path: Path, names: Sequence[str], schema: Any):
    """`_issue` naming the first text column holding bytes that are not UTF-8, else NULL."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    checks = []
    for name in names:
        if isinstance(schema[name].dataType, T.StringType):
            col = F.col(f"`{name}`")
            latin1 = F.decode(col.cast("binary"), "ISO-8859-1")
            message = F.concat(F.lit(f"invalid_encoding: {name} holds bytes that are not UTF-8 ('"), latin1,
                               F.lit(f"' if read as Latin-1) in {path}, row "),
                               F.col("_metadata.row_index").cast("string"))
            checks.append(F.when(~F.is_valid_utf8(col), message))
    return F.coalesce(*checks, F.lit(None).cast("string")) if checks else F.lit(None).cast("string")


def _read_landing_file(spark: SparkSession, table: str, path: Path, month: str, timezone: str) -> DataFrame:
    from pyspark.sql import functions as F

    if not path.name.lower().endswith(".parquet"):
        raise LandingError(f"{path}: the Spark engine reads Parquet landing files only; convert this file to "
                           "Parquet, or load the month with CRMAGENT_ENGINE=duckdb")
    try:
        frame = spark.read.parquet(str(path))
    except Exception as e:  # AnalysisException and friends: name the file
        raise LandingError(f"{path}: cannot be read as parquet for raw.{table}: {str(e).splitlines()[0]}") from e
    required = [c for c, _, _ in RAW_TABLES[table]]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LandingError(f"{path}: missing column(s) {', '.join(missing)} required by raw.{table} "
                           f"(found: {', '.join(frame.columns) or 'none'})")
    return frame.select(
        F.lit(month).alias("month"),
        *[_text_column(c, frame.schema[c].dataType, timezone).alias(c) for c in required],
        F.lit(str(path)).alias("_source"),
        F.col("_metadata.row_index").cast("bigint").alias("_row_id"),
        _issue_column(path, required, frame.schema).alias("_issue"),
    )


@dataclass
class RawMonth:
    source: str
    synthetic: bool
    manifest: list[ManifestRow]
    rows: dict[str, int]


def load_raw_month(spark: SparkSession, lake: Lake, landing_dir: str | Path, month: str, *,
                   timezone: str = "UTC") -> RawMonth:
    """Every raw table's month from its landing Parquet files, with landing.py's file rules and checks. Every table
    is read and checked into scratch before any replaces its month."""
    from pyspark.sql import functions as F

    folder, files = month_files(landing_dir, month, formats="<table>.parquet")
    frames = {t: [_read_landing_file(spark, t, p, month, timezone) for p in paths] for t, paths in files.items()}
    produced: dict[str, Produced] = {}
    manifest: list[ManifestRow] = []
    try:
        for table, parts in frames.items():
            union = parts[0]
            for part in parts[1:]:
                union = union.unionByName(part)
            path = lake.scratch(f"raw.{table}")
            union.write.mode("overwrite").parquet(path)  # month and _source are literals: no row can stray
            counts = spark.read.parquet(path).groupBy("_source").agg(F.count(F.lit(1)).alias("rows"),
                                                                     F.count("_issue").alias("issues"))
            per_file = {r["_source"]: (r["rows"], r["issues"]) for r in counts.collect()}
            produced[table] = Produced(f"raw.{table}", {"month": month}, path, sum(n for n, _ in per_file.values()),
                                       sum(i for _, i in per_file.values()))
            for path in files[table]:
                rows, issues = per_file.get(str(path), (0, 0))
                encoding = "utf-8 (rows with other bytes flagged)" if issues else "utf-8"
                manifest.append(ManifestRow(table, str(path), "parquet", rows, encoding, issues))
        rows = {t: p.rows for t, p in produced.items()}
        require_rows(folder, rows, files)
    except BaseException:
        for p in produced.values():
            lake.remove(p.path)
        raise
    for p in produced.values():
        commit(spark, lake, p)
    return RawMonth(*landing_source(folder), manifest, rows)


# --- staging ----------------------------------------------------------------------------------------
def stage_table(spark: SparkSession, lake: Lake, table: str, month: str) -> tuple[int, int]:
    """sql.write_checked_model on Spark: good rows replace staging.<table>'s month, the others this source's rows of
    the month in staging.quarantine, with the raw record as JSON. Returns (good rows, quarantined rows)."""
    from crmagent_dagster.engines.transpile import view_name
    from crmagent_dagster.pipeline import VALIDATION_PARAMS

    raw_table = f"raw.{table}"
    checked = produce(spark, lake, f"staging.{table}",
                      run_model(spark, lake, f"staging.{table}", {"month": month, **VALIDATION_PARAMS}),
                      {"month": month}, flag="_rule IS NOT NULL")
    try:
        spark.read.parquet(checked.path).createOrReplaceTempView("__checked")
        good = spark.sql("SELECT * FROM __checked WHERE _rule IS NULL").drop("_rule", "_detail")
        raw_columns = ", ".join(f"r.{c}" for c in ["month", *(c for c, _, _ in RAW_TABLES[table]), "_source",
                                                    "_row_id", "_issue"])
        bad = spark.sql(
            f"""SELECT c.month, :source_table AS source_table, c._source, c._row_id, c._rule AS rule,
                       c._detail AS detail, to_json(struct({raw_columns}), map('ignoreNullFields', 'false')) AS raw_record
                FROM __checked c JOIN {view_name(raw_table)} r
                  ON r.month = c.month AND r._source = c._source AND r._row_id = c._row_id
                WHERE c._rule IS NOT NULL""",
            args={"source_table": raw_table})
        kept = replace_partition(spark, lake, f"staging.{table}", good, {"month": month},
                                 checked.rows - checked.flagged)
        quarantined = replace_partition(spark, lake, QUARANTINE_TABLE, bad,
                                        {"month": month, "source_table": raw_table}, checked.flagged)
    finally:
        lake.remove(checked.path)
    return kept, quarantined


def scalar(spark: SparkSession, sql: str, args: Mapping[str, Any] | None = None) -> Any:
    return spark.sql(sql, args=dict(args or {})).collect()[0][0]


def markdown(spark: SparkSession, sql: str, args: Mapping[str, Any] | None = None, limit: int = 50) -> str:
    """A small query result as a markdown table (sql.preview_markdown's shape), without pandas."""
    frame = spark.sql(sql, args=dict(args or {}))
    rows = frame.limit(limit).collect()

    def cell(v: Any) -> str:
        return "null" if v is None else str(v).replace("|", "\\|").replace("\n", " ")[:80]

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def register(spark: SparkSession, lake: Lake, *tables: str) -> None:
    """Make lake tables queryable as their temp views (schema__table) for ad-hoc check queries."""
    _register(spark, lake, tables)


# --- into DuckDB ------------------------------------------------------------------------------------
def _columns(spark: SparkSession, lake: Lake, table: str) -> list[str]:
    """The table's columns in the model's order: the partition columns lead in every model written here."""
    keys = partition_columns(table)
    return [*keys, *(c for c in spark.read.parquet(lake.path(table)).columns if c not in keys)]


def load_into_duckdb(conn: duckdb.DuckDBPyConnection, lake: Lake, table: str, partition: Mapping[str, str],
                     columns: Sequence[str]) -> int:
    """Inside an open transaction: make the DuckDB table's partition equal to the lake's, DuckDB reading the Parquet
    in place. `columns`: the model's columns in order (partition columns are not in the files: added from
    `partition`). A lake partition with several sub-partitions (the quarantine's month) is loaded per folder."""
    from crmagent_dagster.sql import _column, _table  # the runner's name checks

    _table(table)
    where = " AND ".join(f"{_column(c)} = ${c}" for c in partition)
    folders = _leaf_folders(lake, table, partition)
    selects = []
    for folder, values in folders:
        files = lake.parquet_files(folder)
        if files:
            selects.append((files, values))
    exprs = []
    for c in columns:
        cast = DUCKDB_CASTS.get((table, c))
        exprs.append(f"CAST({_column(c)} AS {cast}) AS {c}" if cast else _column(c))
    body = ", ".join(exprs)
    if is_view(conn, table):  # core.log_engagement is a view on the DuckDB engine; Spark brings its rows
        run(conn, f"DROP VIEW {table}")
    if not table_exists(conn, table):
        if not selects:
            return 0  # nothing to load and nothing stored: the table appears with the first non-empty month
        files, values = selects[0]
        run(conn, f"CREATE TABLE {table} AS SELECT {body} FROM ({_relation(columns, values)}) WITH NO DATA",
                  {"files": files, **values})
    run(conn, f"DELETE FROM {table} WHERE {where}", dict(partition))
    produced = 0
    for files, values in selects:
        run(conn, f"INSERT INTO {table} BY NAME SELECT {body} FROM ({_relation(columns, values)})",
                  {"files": files, **values})
        produced += run(conn, "SELECT count(*) FROM read_parquet($files)", {"files": files})[0][0]
    stored = run(conn, f"SELECT count(*) FROM {table} WHERE {where}", dict(partition))[0][0]
    if stored != produced:
        raise RuntimeError(f"{table}: loaded {stored} row(s) for {dict(partition)} from a lake holding {produced}")
    return stored


def _relation(columns: Sequence[str], values: Mapping[str, str]) -> str:
    from crmagent_dagster.sql import _column

    cols = ", ".join(f"${_column(c)} AS {c}" if c in values else _column(c) for c in columns)
    return f"SELECT {cols} FROM read_parquet($files, hive_partitioning = false)"


def _leaf_folders(lake: Lake, table: str, partition: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The partition's folder, or (for the quarantine's month) each `source_table=` folder below it."""
    if table == QUARANTINE_TABLE and "source_table" not in partition:
        return [(lake.partition_path(table, {**partition, "source_table": f"raw.{t}"}),
                 {**partition, "source_table": f"raw.{t}"}) for t in RAW_TABLES]
    return [(lake.partition_path(table, partition), dict(partition))]


@contextmanager
def _duckdb_transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    ensure_schemas(conn)
    with transaction(conn):
        yield


def copy_to_duckdb(conn: duckdb.DuckDBPyConnection, spark: SparkSession, lake: Lake, tables: Sequence[str],
                   partition: Mapping[str, str]) -> dict[str, int]:
    """The partition of each table from the lake into DuckDB, all in one transaction."""
    counts = {}
    with _duckdb_transaction(conn):
        for table in tables:
            counts[table] = load_into_duckdb(conn, lake, table, partition, _columns(spark, lake, table)
                                             if lake.exists(lake.path(table)) else [])
    return counts
