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

from crmagent_dagster.landing import has_landing_month, read_landing_month
from crmagent_dagster.pipeline import with_lineage
from crmagent_dagster.synthetic.month import generate_month

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def duckdb_path() -> str:
    """The warehouse file: $CRMAGENT_DUCKDB_PATH, else data/crmagent.duckdb in the repo."""
    return os.environ.get("CRMAGENT_DUCKDB_PATH") or str(DATA_DIR / "crmagent.duckdb")


def landing_dir() -> str:
    return os.environ.get("CRMAGENT_LANDING_DIR") or str(DATA_DIR / "landing")


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
        config = {"custom_user_agent": "dagster", **self.connection_config}
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
class RawMonth:
    source: str  # "landing:<folder>" or "synthetic:seed=..,logs=.."
    tables: dict[str, pl.DataFrame]  # with _source and _row_id
    template_truth: pl.DataFrame | None  # only for generated months


class LogSource(dg.ConfigurableResource):
    """Where a month's raw logs come from: the landing folder if it has the month, else the generator."""

    landing_dir: str = Field(description="Folder with one sub-folder per month (YYYY-MM) of raw files.")
    synthetic_logs: int = Field(default=1_000_000, description="Deliveries to generate when a month has no landing data.")
    seed: int = Field(default=7, description="Generator seed; the same seed gives the same month.")
    synthetic_when_no_landing: bool = Field(
        default=True, description="Generate a month that has no landing folder instead of failing."
    )

    def read_month(self, month: str) -> RawMonth:
        if has_landing_month(self.landing_dir, month):
            return RawMonth(f"landing:{Path(self.landing_dir) / month}", read_landing_month(self.landing_dir, month), None)
        if not self.synthetic_when_no_landing:
            raise FileNotFoundError(
                f"no landing data for {month} in {self.landing_dir} and synthetic_when_no_landing is off"
            )
        source = f"synthetic:seed={self.seed},logs={self.synthetic_logs}"
        generated = generate_month(month, self.synthetic_logs, self.seed)
        tables = {t: with_lineage(f, source) for t, f in generated.tables.items()}
        return RawMonth(source, tables, generated.template_truth)
