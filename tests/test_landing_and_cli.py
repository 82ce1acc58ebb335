"""Real logs from a landing folder (Parquet and CSV), bad files, and the `crmagent` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets import raw, staging
from crmagent_dagster.landing import LandingError, load_landing_month, write_landing_month
from crmagent_dagster.resources import CRMWarehouse, LogSource

BIN = Path(sys.executable).parent


def _resources(tmp_path, landing):
    return {"duckdb": CRMWarehouse(database=str(tmp_path / "wh.duckdb")),
            "log_source": LogSource(landing_dir=str(landing), synthetic_when_no_landing=False)}


def load(tmp_path, landing, month="2025-04"):
    with duckdb.connect(str(tmp_path / "load.duckdb")) as conn:
        return load_landing_month(conn, landing, month)


def _count(db: str, sql: str) -> int:
    with duckdb.connect(db, read_only=True) as c:
        return c.execute(sql).fetchall()[0][0]


def test_generate_command_writes_a_landing_month_that_the_raw_asset_loads(tmp_path):
    landing = tmp_path / "landing"
    out = subprocess.run([BIN / "crmagent", "generate", "--month", "2025-06", "--logs", "8000", "--seed", "3",
                          "--out", str(landing)], capture_output=True, text=True, check=True).stdout
    assert "delivery_logs" in out and (landing / "2025-06" / "delivery_logs.parquet").exists()
    res = _resources(tmp_path, landing)
    result = dg.materialize([raw.raw_month, staging.staged_month], partition_key="2025-06", resources=res)
    assert result.success
    md = result.asset_materializations_for_node("raw_month")
    sources = {m.metadata["source"].value for m in md}
    # Files `crmagent generate` wrote are read like any landing month, and still said to be synthetic.
    assert sources == {f"synthetic-landing:{landing / '2025-06'}"}
    assert {m.metadata["synthetic"].value for m in md} == {True}
    files = pl.read_parquet(landing / "2025-06" / "delivery_logs.parquet").height
    assert _count(res["duckdb"].database, "SELECT count(*) FROM raw.delivery_logs") == files
    # Landing rows name their file, so a quarantined row can be found again.
    src = _count(res["duckdb"].database, "SELECT count(DISTINCT _source) FROM staging.quarantine")
    assert src >= 1


def test_csv_landing_with_bad_values_quarantines_rows_not_the_file(tmp_path, small_month):
    landing = tmp_path / "landing"
    folder = landing / "2025-04"
    folder.mkdir(parents=True)
    for table, frame in small_month.tables.items():
        if table == "delivery_logs":
            frame = frame.with_columns(  # a wrong type in one row: a text sent_at that is not a time
                pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("soon")).otherwise(pl.col("sent_at")).alias("sent_at"))
        frame.write_csv(folder / f"{table}.csv")
    res = _resources(tmp_path, landing)
    assert dg.materialize([raw.raw_month, staging.staged_month], partition_key="2025-04", resources=res).success
    db = res["duckdb"].database
    row = duckdb.connect(db, read_only=True).execute(
        "SELECT _row_id, rule, detail FROM staging.quarantine WHERE detail = 'sent_at=soon'").fetchall()
    assert row == [(5, "malformed_timestamp", "sent_at=soon")]
    staged = _count(db, "SELECT count(*) FROM staging.delivery_logs")
    quarantined = _count(db, "SELECT count(*) FROM staging.quarantine WHERE source_table = 'raw.delivery_logs'")
    assert staged + quarantined == small_month.tables["delivery_logs"].height


def test_missing_column_names_the_file_and_the_column(tmp_path, small_month):
    write_landing_month(small_month.tables, tmp_path, "2025-04")
    path = tmp_path / "2025-04" / "vouchers.parquet"
    small_month.tables["vouchers"].drop("currency").write_parquet(path)
    with pytest.raises(LandingError, match=r"vouchers\.parquet: missing column\(s\) currency required by raw\.vouchers"):
        load(tmp_path, tmp_path)


def test_truncated_parquet_names_the_file(tmp_path, small_month):
    write_landing_month(small_month.tables, tmp_path, "2025-04")
    path = tmp_path / "2025-04" / "engagement_events.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LandingError, match=r"engagement_events\.parquet: cannot be read"):
        load(tmp_path, tmp_path)


def test_missing_table_file_names_the_table(tmp_path, small_month):
    write_landing_month(small_month.tables, tmp_path, "2025-04")
    (tmp_path / "2025-04" / "products.parquet").unlink()
    with pytest.raises(LandingError, match="no file for raw table.s. products"):
        load(tmp_path, tmp_path)


def test_refresh_command_runs_the_month_and_prints_the_summary(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "CRMAGENT_LANDING_DIR": str(tmp_path / "landing")}
    env.pop("CRMAGENT_SYNTHETIC", None)
    db = tmp_path / "wh.duckdb"
    done = subprocess.run(
        [BIN / "crmagent", "refresh", "--month", "2025-04", "--logs", "15000", "--segment", "abandoned_cart_buyers",
         "--segment", "new_buyers", "--db", str(db)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Strong / weak per segment" in done.stdout and f"DuckDB file: {db}" in done.stdout
    assert "Source: SYNTHETIC month, generated (seed=7,logs=15000), not your data" in done.stdout
    assert (tmp_path / "home" / "dagster.yaml").exists()
    segs = _count(str(db), "SELECT count(DISTINCT segment) FROM core.quartile_labels")
    assert segs == 2
    # The runs are recorded in DAGSTER_HOME, so the UI shows them: the month, then per segment its experiments
    # (measured before its rewrites) and the segment itself.
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
    assert [r.job_name for r in reversed(instance.get_runs())] == [
        "monthly_logs_job", "experiments_job", "segment_job", "experiments_job", "segment_job"]


def test_bad_month_argument_is_rejected_with_a_clear_message():
    done = subprocess.run([BIN / "crmagent", "generate", "--month", "April"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "month must look like 2025-04, got 'April'" in done.stderr
