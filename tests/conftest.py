"""Shared fixtures: DuckDB files under tmp_path and small generated months."""

from __future__ import annotations

import os

import duckdb
import pytest

from crmagent_dagster.synthetic.month import generate_month
from sql_fixtures import MONTH

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "test.duckdb"))
    yield c
    c.close()


@pytest.fixture(scope="session")
def small_month():
    """A generated month small enough for unit tests (deterministic)."""
    return generate_month(MONTH, 40_000, seed=11)
