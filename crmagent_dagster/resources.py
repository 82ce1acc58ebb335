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


class CRMWarehouse(DuckDBResource):
    """dagster-duckdb's resource (with its retry on a locked file), creating the folder on first use."""

    @contextmanager
    def get_connection(self) -> Iterator:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            yield conn


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
