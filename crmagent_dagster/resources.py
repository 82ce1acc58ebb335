"""Dagster resources. Nothing here connects or touches disk at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from crmagent_dagster.engines.spark import ENGINES, SparkEngine
from crmagent_dagster.landing import (
    LandingMissing,
    ManifestRow,
    ensure_raw_tables,
    has_landing_folder,
    prepare_landing_month,
    record_manifest,
)
from crmagent_dagster.month_hold import hold_month
from crmagent_dagster.partitions import previous_month
from crmagent_dagster.pipeline import load_raw_table, with_lineage
from crmagent_dagster.sql import transaction, write_frame
from crmagent_dagster.synthetic.deployed import TRUTH_SCHEMA, load_campaigns
from crmagent_dagster.synthetic.month import generate_month

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def duckdb_path() -> str:
    """The warehouse file: $CRMAGENT_DUCKDB_PATH, else data/crmagent.duckdb in the repo."""
    return os.environ.get("CRMAGENT_DUCKDB_PATH") or str(DATA_DIR / "crmagent.duckdb")


def landing_dir() -> str:
    return os.environ.get("CRMAGENT_LANDING_DIR") or str(DATA_DIR / "landing")


def warehouse_settings(database: str, memory_limit: str | None = None) -> dict[str, object]:
    """DuckDB settings for the warehouse: a month's SQL stages stay in bounded memory whatever its size.

    Above `memory_limit` DuckDB spills to `<database>.tmp/` (joins, windows, aggregates and inserts all can), so
    raw -> labels fits a small machine; `CRMAGENT_DUCKDB_MEMORY_LIMIT` changes the default. No model relies on
    insertion order (every rule orders explicitly), so DuckDB may write in parallel and stream without buffering.
    """
    settings: dict[str, object] = {
        "memory_limit": memory_limit or os.environ.get("CRMAGENT_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT,
        "preserve_insertion_order": False,
    }
    if database != ":memory:":
        settings["temp_directory"] = str(Path(database).with_name(Path(database).name + ".tmp"))
    return settings


DEFAULT_MEMORY_LIMIT = "2GB"


def connect_waiting(database: str, read_only: bool = False, timeout_s: float = 600.0, config: dict | None = None):
    """duckdb.connect, waiting (with jitter) while another process holds DuckDB's single write lock."""
    import duckdb
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

    def locked(e: BaseException) -> bool:
        return isinstance(e, duckdb.IOException) and "lock" in str(e).lower()

    for attempt in Retrying(stop=stop_after_delay(timeout_s), retry=retry_if_exception(locked),
                            wait=wait_random_exponential(multiplier=0.05, max=2.0), reraise=True):
        with attempt:
            return duckdb.connect(database, read_only=read_only, config=config or {})
    raise AssertionError("unreachable")


class CRMWarehouse(DuckDBResource):
    """dagster-duckdb's resource (with its retry on a locked file), creating the folder on first use.

    After every run it publishes the read-only snapshot dashboards use (see publish.py).
    """

    publish_snapshot: bool = Field(default=True, description="Publish the dashboard snapshot after each run.")
    lock_timeout_s: float = Field(default=600.0, description="How long a run waits for another process's write lock.")
    # --- the SQL engine (engines/spark.py): on this resource, so every existing `resources=` keeps working ---
    engine: str = Field(default="duckdb", description="Where the SQL stages raw -> quartile labels run: duckdb, or "
                                                      "spark (a Parquet lake; the agents' tables copied back here). "
                                                      "$CRMAGENT_ENGINE in the project's Definitions.")
    spark: SparkEngine | None = Field(default=None, description="Spark settings when engine is spark (default: "
                                                                "local[*], the lake beside this file).")

    def spark_engine(self) -> SparkEngine:
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        return self.spark or SparkEngine()

    @property
    def on_spark(self) -> bool:
        self.spark_engine()  # validates the setting
        return self.engine == "spark"
    # --- end of the SQL engine ---

    @contextmanager
    def get_connection(self) -> Iterator:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect_waiting()
        try:
            yield conn
        finally:
            conn.close()

    def _connect_waiting(self):
        config = {"custom_user_agent": "dagster", **warehouse_settings(self.database), **self.connection_config}
        return connect_waiting(self.database, timeout_s=self.lock_timeout_s, config=config)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if not self.publish_snapshot or self.database == ":memory:" or not Path(self.database).exists():
            return
        from crmagent_dagster.publish import publish, snapshot_path

        with self.get_connection() as conn:
            counts = publish(conn, snapshot_path(self.database))
        if context.log:
            context.log.info(f"published {len(counts)} table(s) to {snapshot_path(self.database)}")


@dataclass
class RawLoad:
    source: str  # "landing:<folder>" or "synthetic:seed=..,logs=.."
    synthetic: bool
    manifest: list[ManifestRow]


# Zero rows with the truth table's columns: a landing month clears any old synthetic truth.
EMPTY_TRUTH = pl.DataFrame(schema={
    "template_id": pl.Utf8, "defect": pl.Utf8, "incentive_stated": pl.Boolean, "has_cta": pl.Boolean,
    "has_urgency": pl.Boolean, "has_emoji": pl.Boolean, "_source": pl.Utf8, "_row_id": pl.Int64,
})


EMPTY_EXPERIMENT_TRUTH = pl.DataFrame(schema=TRUTH_SCHEMA)


class LogSource(dg.ConfigurableResource):
    """Where a month's raw logs come from: its landing folder, or the generator only when asked for."""

    landing_dir: str = Field(description="Folder with one sub-folder per month (YYYY-MM) of raw files.")
    synthetic_when_no_landing: bool = Field(
        default=False, description="Generate a month that has no landing folder (demo mode: `crmagent refresh "
                                   "--synthetic`, CRMAGENT_SYNTHETIC=1). A month with a landing folder is always read "
                                   "from it.")
    synthetic_logs: int = Field(default=1_000_000, description="Deliveries to generate for a synthetic month.")
    seed: int = Field(default=7, description="Generator seed; the same seed gives the same month.")
    timezone: str = Field(default="UTC", description="The platform's time zone: timestamps with a zone in landing "
                                                     "files are converted to it; those without are taken as in it.")
    csv_encoding: str | None = Field(default=None, description="Encoding of landing CSVs without a <file>.encoding "
                                                               "sidecar (default UTF-8; e.g. cp1252).")
    simulate_deployments: bool = Field(default=True, description="A generated month also sends the experiments "
                                                                 "deployed the month before (closing the loop in demo "
                                                                 "mode); its true uplift is kept beside it.")

    def load_month(self, conn, month: str) -> RawLoad:
        """Replace the month's raw tables (and the manifest of what was read) in one transaction."""
        if has_landing_folder(self.landing_dir, month):
            prepared = prepare_landing_month(conn, self.landing_dir, month, timezone=self.timezone,
                                             csv_encoding=self.csv_encoding)
            try:
                with transaction(conn):  # every raw table, the manifest and the (emptied) truth, or nothing
                    hold_month(conn, month)  # the version staging accepted, until staging accepts this one
                    prepared.commit(conn)
                    write_frame(conn, "raw.synthetic_template_truth", EMPTY_TRUTH, {"month": month})
                    write_frame(conn, "raw.synthetic_experiment_truth", EMPTY_EXPERIMENT_TRUTH, {"month": month})
            finally:
                prepared.drop(conn)
            return RawLoad(prepared.source, prepared.source.startswith("synthetic"), prepared.manifest)
        if not self.synthetic_when_no_landing:
            raise LandingMissing(
                f"no landing folder {Path(self.landing_dir) / month} for {month}: put the month's files there, or ask "
                "for a synthetic month (crmagent refresh --synthetic, or CRMAGENT_SYNTHETIC=1)")
        campaigns = load_campaigns(conn, previous_month(month)) if self.simulate_deployments else []
        source = f"synthetic:seed={self.seed},logs={self.synthetic_logs}"
        if campaigns:
            source += f",deployed_from={previous_month(month)}:{len(campaigns)} experiments"
        generated = generate_month(month, self.synthetic_logs, self.seed, campaigns=campaigns)
        ensure_raw_tables(conn)
        manifest = []
        with transaction(conn):
            hold_month(conn, month)
            for table, frame in generated.tables.items():
                rows = load_raw_table(conn, table, month, with_lineage(frame, source))
                manifest.append(ManifestRow(table, source, "synthetic", rows, "utf-8", 0))
            write_frame(conn, "raw.synthetic_template_truth", with_lineage(generated.template_truth, source),
                        {"month": month})
            truth = generated.experiment_truth if generated.experiment_truth is not None else EMPTY_EXPERIMENT_TRUTH
            write_frame(conn, "raw.synthetic_experiment_truth", truth, {"month": month})
            record_manifest(conn, month, source, manifest)
        return RawLoad(source, True, manifest)
