"""Jobs, the monthly refresh schedule, and the sensors that carry a refreshed month through every segment.

Dagster runs one partitions definition per job, so the refresh is a chain: the schedule runs the monthly job for
the previous month; when that run succeeds, a sensor requests the experiments job per audience segment (last
month's deployments measured on this month's deliveries); when one succeeds, its segment's job (labels, retrieval,
rewrites, evaluation, audits, deployments) runs; when every segment is done, the month's results.
"""

from __future__ import annotations

import dagster as dg

from crmagent_dagster.partitions import month_segment_partitions, monthly_partitions
from crmagent_dagster.segments import SEGMENT_KEYS

MONTHLY_GROUPS = ("raw", "staging", "engagement")
SEGMENT_GROUPS = ("segments", "retrieval", "diagnosis", "rewrites", "evaluation", "audits", "deployments")

monthly_logs_job = dg.define_asset_job(
    "monthly_logs_job",
    selection=dg.AssetSelection.groups(*MONTHLY_GROUPS),
    partitions_def=monthly_partitions,
    description="Raw -> staging -> engagement aggregates for one month.",
)
segment_job = dg.define_asset_job(
    "segment_job",
    selection=dg.AssetSelection.groups(*SEGMENT_GROUPS),
    partitions_def=month_segment_partitions,
    description="Per-segment assets (quartile labels and later stages) for one month x segment.",
)

experiments_job = dg.define_asset_job(
    "experiments_job",
    selection=dg.AssetSelection.groups("experiments"),
    partitions_def=month_segment_partitions,
    description="Last month's experiments of one segment measured on this month's deliveries (before its rewrites).",
)

deployments_job = dg.define_asset_job(
    "deployments_job",
    selection=dg.AssetSelection.groups("deployments"),
    partitions_def=month_segment_partitions,
    description="Only the deployments of one month x segment: after a review, approved rewrites become experiments.",
)

monthly_results_job = dg.define_asset_job(
    "monthly_results_job",
    selection=dg.AssetSelection.groups("results"),
    partitions_def=monthly_partitions,
    description="The paper's tables for a month, once every segment is done.",
)

# Table 3 alone, for trying other configurations (run config `ops.ablation_study.config`) without re-running the
# predictor; the paper tables re-run too (SQL only) so the report shows the new Table 3.
ablation_job = dg.define_asset_job(
    "ablation_job",
    selection=dg.AssetSelection.assets(["agents", "ablation_judgments"], ["results", "table3"])
    | dg.AssetSelection.assets(["results", "table1"]).required_multi_asset_neighbors(),
    partitions_def=monthly_partitions,
    description="Table 3's agent configurations on one sample of weak templates, then the month's tables and report.",
)

# Partitioned-job schedule: each tick runs the newest complete month, i.e. on 1 May it runs 2025-04.
monthly_refresh_schedule = dg.build_schedule_from_partitioned_job(
    monthly_logs_job, name="monthly_refresh_schedule", day_of_month=1, hour_of_day=3,
    description="On the 1st at 03:00 UTC, refresh the previous month; the fan-out sensor does the segments.",
)


def segment_run_request(month: str, segment: str, parent_run_id: str, run_key: str) -> dg.RunRequest:
    """A month x segment run started by `parent_run_id`; the run key makes re-evaluation idempotent."""
    return dg.RunRequest(run_key=run_key, partition_key=dg.MultiPartitionKey({"month": month, "segment": segment}),
                         tags={"crmagent/parent_run": parent_run_id})


def segment_run_requests(month: str, parent_run_id: str) -> list[dg.RunRequest]:
    """One run per audience segment for `month`."""
    return [segment_run_request(month, segment, parent_run_id, f"{parent_run_id}:{segment}")
            for segment in SEGMENT_KEYS]


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[monthly_logs_job],
    request_job=experiments_job,
    name="segment_fanout_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a month's logs job succeeds, measure last month's experiments of every segment of that month.",
)
def segment_fanout_sensor(context: dg.RunStatusSensorContext):
    month = context.dagster_run.tags.get("dagster/partition")
    if not month:
        return dg.SkipReason(f"run {context.dagster_run.run_id} has no partition tag")
    return segment_run_requests(month, context.dagster_run.run_id)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[experiments_job],
    request_job=segment_job,
    name="segment_after_experiments_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a segment's experiments are measured, label, rewrite, judge, audit and deploy that segment.",
)
def segment_after_experiments_sensor(context: dg.RunStatusSensorContext):
    key = context.dagster_run.tags.get("dagster/partition")
    if not key or "|" not in key:
        return dg.SkipReason(f"run {context.dagster_run.run_id} has no month|segment partition tag")
    month, segment = key.split("|")
    parent = context.dagster_run.run_id
    return segment_run_request(month, segment, parent, f"{parent}:segment")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[segment_job],
    request_job=monthly_results_job,
    name="results_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the last segment of a month has been deployed, build that month's tables and report.",
)
def results_sensor(context: dg.RunStatusSensorContext):
    key = context.dagster_run.tags.get("dagster/partition")
    month = key.split("|")[0] if key else None
    if not month:
        return dg.SkipReason("segment run without a partition")
    done = context.instance.get_materialized_partitions(dg.AssetKey(["agents", "deployments"]))
    missing = [s for s in SEGMENT_KEYS if f"{month}|{s}" not in done]
    if missing:
        return dg.SkipReason(f"{month}: waiting for {len(missing)} segment(s)")
    return dg.RunRequest(run_key=f"results:{month}:{context.dagster_run.run_id}", partition_key=month)
