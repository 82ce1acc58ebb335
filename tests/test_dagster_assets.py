"""Assets through Dagster: checks, idempotent partition writes, other partitions untouched, schedule targets."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import pytest

from assets import engagement, raw, segments, staging
from crmagent_dagster.definitions import build_definitions, defs
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.schedules import monthly_refresh_schedule, segment_after_experiments_sensor, segment_fanout_sensor
from crmagent_dagster.segments import SEGMENT_KEYS

MONTHLY = [raw.raw_month, staging.staged_month, engagement.log_engagement, engagement.engagement_aggregates]
SEGMENT = [segments.quartile_labels]


@pytest.fixture
def resources(tmp_path):
    return {
        "duckdb": CRMWarehouse(database=str(tmp_path / "wh.duckdb")),
        "log_source": LogSource(landing_dir=str(tmp_path / "landing"), synthetic_logs=20_000, seed=5,
                                synthetic_when_no_landing=True),
    }


def fingerprint(db: str, table: str, where: str, params: dict) -> tuple:
    """Row count and an order-independent hash of a partition's rows."""
    with duckdb.connect(db, read_only=True) as c:
        return c.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t WHERE {where}", params).fetchall()[0]


def checks_of(result) -> dict[tuple[str, str], bool]:
    return {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def test_definitions_load_and_name_every_stage():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/delivery_logs", "staging/delivery_logs", "staging/quarantine", "core/log_engagement",
            "core/engagement_aggregates", "core/quartile_labels"} <= keys


def test_importing_definitions_connects_to_nothing(tmp_path, monkeypatch):
    target = tmp_path / "never" / "created.duckdb"
    monkeypatch.setenv("CRMAGENT_DUCKDB_PATH", str(target))
    d = build_definitions()
    assert d.resources["duckdb"].database == str(target)
    assert not target.parent.exists()


def test_month_materializes_with_all_checks_passing(resources):
    result = dg.materialize(MONTHLY, partition_key="2025-04", resources=resources)
    assert result.success
    checks = checks_of(result)
    assert len(checks) == 1 + 3 * 7 + 2 + 2
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}
    result = dg.materialize(MONTHLY + SEGMENT, selection=SEGMENT, partition_key="2025-04|abandoned_cart_buyers",
                            resources=resources)
    assert result.success
    checks = checks_of(result)
    assert checks == {("core/quartile_labels", "unique_groups"): True, ("core/quartile_labels", "quartile_shares"): True,
                      ("core/quartile_labels", "strong_outscore_weak"): True}
    md = result.asset_materializations_for_node("core__quartile_labels")[0].metadata
    assert md["strong"].value == md["weak"].value > 0


def test_rematerializing_replaces_exactly_one_partition(resources, tmp_path):
    db = resources["duckdb"].database
    for month in ("2025-04", "2025-05"):
        assert dg.materialize(MONTHLY, partition_key=month, resources=resources).success
    for seg in ("abandoned_cart_buyers", "new_buyers"):
        assert dg.materialize(MONTHLY + SEGMENT, selection=SEGMENT, partition_key=f"2025-04|{seg}",
                              resources=resources).success
    tables = ["raw.delivery_logs", "staging.delivery_logs", "staging.quarantine", "core.log_engagement",
              "core.engagement_aggregates"]
    before = {(t, m): fingerprint(db, t, "month = $m", {"m": m}) for t in tables for m in ("2025-04", "2025-05")}
    labels_before = {s: fingerprint(db, "core.quartile_labels", "month = '2025-04' AND segment = $s", {"s": s})
                     for s in ("abandoned_cart_buyers", "new_buyers")}

    assert dg.materialize(MONTHLY, partition_key="2025-05", resources=resources).success
    assert dg.materialize(MONTHLY + SEGMENT, selection=SEGMENT, partition_key="2025-04|new_buyers",
                          resources=resources).success

    after = {(t, m): fingerprint(db, t, "month = $m", {"m": m}) for t in tables for m in ("2025-04", "2025-05")}
    assert after == before  # same rows, no duplicates, in the re-run month and the untouched one
    labels_after = {s: fingerprint(db, "core.quartile_labels", "month = '2025-04' AND segment = $s", {"s": s})
                    for s in ("abandoned_cart_buyers", "new_buyers")}
    assert labels_after == labels_before
    with duckdb.connect(db, read_only=True) as c:
        dups = c.execute("SELECT count(*) - count(DISTINCT (month, log_id)) FROM staging.delivery_logs").fetchall()[0][0]
    assert dups == 0


def test_failing_check_is_reported_not_hidden(resources, tmp_path):
    """A month whose logs are mostly unreadable stages what it can, but its quarantine_share check fails at ERROR
    and stops the run (a blocking check), so nothing downstream is built on it."""
    import polars as pl

    from crmagent_dagster.landing import write_landing_month
    from crmagent_dagster.synthetic.month import generate_month

    month = generate_month("2025-03", 2_000, seed=1)
    tables = dict(month.tables)
    tables["delivery_logs"] = tables["delivery_logs"].with_columns(  # 30% of sent_at values are not times
        pl.when(pl.int_range(pl.len()) % 10 < 3).then(pl.lit("soon")).otherwise(pl.col("sent_at")).alias("sent_at"))
    write_landing_month(tables, resources["log_source"].landing_dir, "2025-03")
    result = dg.materialize(MONTHLY, partition_key="2025-03", resources=resources, raise_on_error=False)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    # the logs, and the events of the logs that were quarantined with them
    assert [(e.asset_key.to_user_string(), e.check_name, e.severity) for e in failed] == [
        ("staging/delivery_logs", "quarantine_share", dg.AssetCheckSeverity.ERROR),
        ("staging/engagement_events", "quarantine_share", dg.AssetCheckSeverity.ERROR)]
    assert "above the error share 20%" in failed[0].description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "staging/delivery_logs" not in materialized and "core/log_engagement" not in materialized
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "staging refused 2025-03" in failure.step_failure_data.error.message
    with duckdb.connect(resources["duckdb"].database, read_only=True) as c:  # a first month, refused: no rows
        assert c.execute("SELECT count(*) FROM raw.delivery_logs WHERE month = '2025-03'").fetchall() == [(0,)]
        assert c.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'staging'").fetchall() == [(0,)]


def test_schedule_targets_the_previous_month():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 5, 1, 3, 0))
    requests = list(monthly_refresh_schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2025-04"]
    assert monthly_refresh_schedule.job_name == "monthly_logs_job"


def test_a_successful_month_fans_out_to_every_segment(resources):
    instance = dg.DagsterInstance.ephemeral()
    d = build_definitions(database=resources["duckdb"].database, landing=resources["log_source"].landing_dir,
                          synthetic_logs=5_000, synthetic=True)
    result = d.resolve_job_def("monthly_logs_job").execute_in_process(partition_key="2025-04", instance=instance)
    assert result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="segment_fanout_sensor", dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    requests = segment_fanout_sensor(context)
    keys = sorted(str(r.partition_key) for r in requests)
    assert keys == sorted(f"2025-04|{s}" for s in SEGMENT_KEYS)
    assert len({r.run_key for r in requests}) == len(SEGMENT_KEYS)
    # First each segment's experiments (last month's, measured on this month), then that segment's own job.
    assert segment_fanout_sensor.job_name == "experiments_job"
    key = dg.MultiPartitionKey({"month": "2025-04", "segment": "new_buyers"})
    measured = d.resolve_job_def("experiments_job").execute_in_process(partition_key=key, instance=instance)
    assert measured.success
    context = dg.build_run_status_sensor_context(
        sensor_name="segment_after_experiments_sensor", dagster_instance=instance, dagster_run=measured.dagster_run,
        dagster_event=measured.get_run_success_event())
    request = segment_after_experiments_sensor(context)
    assert segment_after_experiments_sensor.job_name == "segment_job"
    assert str(request.partition_key) == "2025-04|new_buyers" and measured.run_id in request.run_key
