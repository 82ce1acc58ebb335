"""A month is written whole or not at all (issue 22, point 1): a month that fails staging's blocking check, and
landing files that would load wrong (an export saved twice, a misnamed file, nested columns), change no table of
the warehouse and no table of the read snapshot; the error names the file or the share."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets import raw, segments
from crmagent_dagster.month_hold import SCHEMA
from crmagent_dagster.publish import snapshot_path
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.synthetic.month import generate_month
from dagster_helpers import MONTHLY

MONTH = "2025-04"
LABELS = [segments.quartile_labels]


def fingerprints(db: Path) -> dict[str, tuple]:
    """Every base table of a DuckDB file: row count and an order-independent hash of its rows."""
    with duckdb.connect(str(db), read_only=True) as c:
        names = c.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": c.execute(f'SELECT count(*), sum(hash(x)) FROM "{s}"."{t}" x').fetchall()[0]
                for s, t in names}


def changed(before: dict, after: dict) -> list[str]:
    """Tables whose rows differ (a table that appears empty, like the hold's first copy of a table, is no change)."""
    empty = (0, None)
    return sorted(k for k in before.keys() | after.keys() if before.get(k, empty) != after.get(k, empty))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A good month loaded, staged, aggregated and labelled (one segment), with its snapshot: built once."""
    root = tmp_path_factory.mktemp("good")
    generated = generate_month(MONTH, 3_000, seed=21)
    folder = root / "landing" / MONTH
    folder.mkdir(parents=True)
    for table, frame in generated.tables.items():
        frame.write_parquet(folder / f"{table}.parquet")
    resources = {"duckdb": CRMWarehouse(database=str(root / "wh.duckdb")),
                 "log_source": LogSource(landing_dir=str(root / "landing"))}
    assert dg.materialize(MONTHLY, partition_key=MONTH, resources=resources).success
    assert dg.materialize(MONTHLY + LABELS, selection=LABELS, partition_key=f"{MONTH}|new_buyers",
                          resources=resources).success
    return root, generated.tables


@pytest.fixture
def copy(good, tmp_path):
    """The good warehouse, its snapshot and landing folder copied for one case, with resources pointing at them."""
    root, tables = good
    for name in ("wh.duckdb", "wh_read.duckdb"):
        shutil.copy(root / name, tmp_path / name)
    shutil.copytree(root / "landing", tmp_path / "landing")
    resources = {"duckdb": CRMWarehouse(database=str(tmp_path / "wh.duckdb")),
                 "log_source": LogSource(landing_dir=str(tmp_path / "landing"))}
    return tmp_path, tables, resources


def run_failing(tmp: Path, resources: dict, selection=None) -> tuple[str, list[str], list[str]]:
    """Materialize the month; return the failure's message and the tables changed in the warehouse and snapshot."""
    db = tmp / "wh.duckdb"
    snapshot = snapshot_path(str(db))
    assert snapshot.exists()
    before, before_snap = fingerprints(db), fingerprints(snapshot)
    result = dg.materialize(MONTHLY, partition_key=MONTH, resources=resources, raise_on_error=False,
                            selection=selection)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    message = " ".join(filter(None, [error.message, error.cause.message if error.cause else None]))
    return message, changed(before, fingerprints(db)), changed(before_snap, fingerprints(snapshot))


def test_a_month_that_fails_its_blocking_check_changes_no_table(copy, reliability):
    tmp, tables, resources = copy
    logs = tables["delivery_logs"].with_columns(  # 30% of deliveries with a segment nobody knows
        pl.when(pl.int_range(pl.len()) % 10 < 3).then(pl.lit("mystery_segment")).otherwise(pl.col("segment"))
        .alias("segment"))
    logs.write_parquet(tmp / "landing" / MONTH / "delivery_logs.parquet")
    message, in_db, in_snapshot = run_failing(tmp, resources)
    assert "staging refused 2025-04" in message and "raw.delivery_logs rows (30." in message
    assert in_db == [] and in_snapshot == []
    reliability.record("atomic_month", tables_changed=len(in_db) + len(in_snapshot))


def test_a_hold_survives_a_run_that_stopped_after_raw(copy, reliability):
    """A bad month loaded into raw twice (the first run stopped before staging, as a kill would): staging's
    refusal still brings back the version staging accepted, not the bad one in between."""
    tmp, tables, resources = copy
    db = tmp / "wh.duckdb"
    before = fingerprints(db)
    bad = tables["delivery_logs"].with_columns(pl.lit("soon").alias("sent_at"))
    bad.write_parquet(tmp / "landing" / MONTH / "delivery_logs.parquet")
    assert dg.materialize(MONTHLY, selection=[raw.raw_month], partition_key=MONTH, resources=resources).success
    message, _, _ = run_failing(tmp, resources)
    assert "staging refused 2025-04" in message
    after = fingerprints(db)
    assert changed(before, after) == []
    with duckdb.connect(str(db), read_only=True) as c:
        assert c.execute(f"SELECT count(*) FROM {SCHEMA}.held_months").fetchall() == [(0,)]
    reliability.record("atomic_month", tables_changed=len(changed(before, after)))


@pytest.mark.parametrize("case", ["csv_beside_parquet", "misnamed_file", "nested_columns"])
def test_landing_files_that_would_load_wrong_fail_naming_the_file(copy, case, reliability):
    tmp, tables, resources = copy
    folder = tmp / "landing" / MONTH
    logs = tables["delivery_logs"]
    if case == "csv_beside_parquet":  # the same export saved twice: 2x the rows
        logs.write_csv(folder / "delivery_logs.csv")
        expected = "delivery_logs.csv and delivery_logs.parquet"
    elif case == "misnamed_file":  # a part named outside the convention
        logs.slice(0, 100).write_parquet(folder / "logs_delivery_part2.parquet")
        expected = "logs_delivery_part2.parquet"
    else:  # a list and a record where one value per cell is expected
        logs.with_columns(pl.concat_list("user_id").alias("user_id"),
                          pl.struct(pl.col("product_id").alias("id")).alias("product_id")
                          ).write_parquet(folder / "delivery_logs.parquet")
        expected = "product_id (STRUCT(id VARCHAR)), user_id (VARCHAR[])"
    message, in_db, in_snapshot = run_failing(tmp, resources)
    assert expected in message, message
    assert in_db == [] and in_snapshot == []
    reliability.record("atomic_month", tables_changed=len(in_db) + len(in_snapshot))


def test_a_fixed_month_then_loads_and_releases_its_hold(copy, reliability):
    tmp, tables, resources = copy
    folder = tmp / "landing" / MONTH
    tables["delivery_logs"].with_columns(pl.lit("mystery_segment").alias("segment")).write_parquet(
        folder / "delivery_logs.parquet")
    assert not dg.materialize(MONTHLY, partition_key=MONTH, resources=resources, raise_on_error=False).success
    smaller = tables["delivery_logs"].slice(0, 2_500)
    smaller.write_parquet(folder / "delivery_logs.parquet")
    assert dg.materialize(MONTHLY, partition_key=MONTH, resources=resources).success
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        staged = c.execute("SELECT count(*) FROM staging.delivery_logs WHERE month = $m", {"m": MONTH}).fetchall()
        summed = c.execute("SELECT sum(n_logs) FROM core.engagement_aggregates WHERE month = $m",
                           {"m": MONTH}).fetchall()
        quarantined = c.execute("SELECT count(*) FROM staging.quarantine WHERE month = $m AND source_table = "
                                "'raw.delivery_logs'", {"m": MONTH}).fetchall()[0][0]
        held = c.execute(f"SELECT count(*) FROM {SCHEMA}.held_months").fetchall()
        kept = c.execute(f"SELECT count(*) FROM {SCHEMA}.delivery_logs").fetchall()
    assert staged == summed and staged[0][0] + quarantined == 2_500 and held == kept == [(0,)]
    reliability.record("atomic_month", rows_lost=2_500 - staged[0][0] - quarantined)
