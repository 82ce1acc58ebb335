"""A publish that fails part-way leaves no temporary snapshot beside the warehouse, and one a killed run left is
removed by the next publish (issue 22, point 7). Real DuckDB files; the failure is injected at the checkpoint."""

from __future__ import annotations

import duckdb
import pytest

from crmagent_dagster import publish as publishing


def _warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "wh.duckdb"))
    conn.execute("CREATE SCHEMA core; CREATE TABLE core.t AS SELECT range AS x FROM range(1000)")
    return conn


def test_a_failed_publish_removes_its_temporary_files_and_keeps_the_old_snapshot(tmp_path, monkeypatch, reliability):
    conn = _warehouse(tmp_path)
    target = tmp_path / "wh_read.duckdb"
    assert publishing.publish(conn, target) == {"core.t": 1000}
    real_run = publishing.run

    def full_disk(c, sql, *a, **kw):
        if sql.startswith("CHECKPOINT"):
            raise duckdb.IOException("No space left on device")
        return real_run(c, sql, *a, **kw)

    monkeypatch.setattr(publishing, "run", full_disk)
    conn.execute("INSERT INTO core.t SELECT 5")
    with pytest.raises(duckdb.IOException):
        publishing.publish(conn, target)
    assert publishing.stale_temp_files(target) == []
    with duckdb.connect(str(target), read_only=True) as snap:  # the last good snapshot is untouched
        assert snap.execute("SELECT count(*) FROM core.t").fetchall() == [(1000,)]
    reliability.record("publish_cleanup", temp_files_left=0)


def test_leftovers_of_a_killed_publish_are_removed_by_the_next_one(tmp_path, reliability):
    conn = _warehouse(tmp_path)
    target = tmp_path / "wh_read.duckdb"
    left = [tmp_path / f".{target.name}.deadbeef.tmp", tmp_path / f".{target.name}.deadbeef.tmp.wal"]
    for p in left:
        p.write_bytes(b"x" * 1024)
    publishing.publish(conn, target)
    assert not any(p.exists() for p in left) and publishing.stale_temp_files(target) == []
    reliability.record("publish_cleanup", temp_files_left=0)
