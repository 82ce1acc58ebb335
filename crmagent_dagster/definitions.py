"""The one Definitions of the project. Importing it reads environment variables but connects to nothing."""

from __future__ import annotations

import os

import dagster as dg

from assets import (
    ablation,
    audits,
    deployments,
    diagnosis,
    engagement,
    engagement_judge,
    evaluation,
    experiments,
    raw,
    results,
    retrieval,
    rewrites,
    segments,
    staging,
)
from crmagent_dagster.engines.spark import SparkEngine, engine_from_env
from crmagent_dagster.llm import llm_resource_from_env
from crmagent_dagster.resources import CRMWarehouse, LogSource, duckdb_path, landing_dir
from crmagent_dagster.schedules import (
    ablation_job,
    deployments_job,
    experiments_job,
    monthly_logs_job,
    monthly_refresh_schedule,
    monthly_results_job,
    results_sensor,
    segment_after_experiments_sensor,
    segment_fanout_sensor,
    segment_job,
)


def synthetic_asked() -> bool:
    """Demo mode: months without a landing folder may be generated (CRMAGENT_SYNTHETIC=1)."""
    return os.environ.get("CRMAGENT_SYNTHETIC", "").strip().lower() in ("1", "true", "yes", "on")


def build_definitions(database: str | None = None, landing: str | None = None, synthetic_logs: int | None = None,
                      synthetic: bool | None = None) -> dg.Definitions:
    """Definitions with explicit resource settings (tests and the CLI use this; Dagster loads `defs`).
    `synthetic`: generate months that have no landing folder (default: CRMAGENT_SYNTHETIC)."""
    logs = synthetic_logs if synthetic_logs is not None else int(os.environ.get("CRMAGENT_SYNTHETIC_LOGS", "1000000"))
    return dg.Definitions(
        assets=dg.load_assets_from_modules(
            [raw, staging, engagement, segments, retrieval, diagnosis, rewrites, evaluation, audits, engagement_judge,
             ablation, deployments, experiments, results]),
        jobs=[monthly_logs_job, experiments_job, segment_job, deployments_job, monthly_results_job, ablation_job],
        schedules=[monthly_refresh_schedule],
        sensors=[segment_fanout_sensor, segment_after_experiments_sensor, results_sensor],
        # DuckDB has one writer, so parallel steps only queue on its lock while each reloads torch and the models:
        # run a job's steps in one process, as `crmagent refresh` does, and publish the snapshot once per run.
        executor=dg.in_process_executor,
        resources={
            "duckdb": CRMWarehouse(database=database or duckdb_path(), engine=engine_from_env(),
                                   spark=SparkEngine.from_env() if engine_from_env() == "spark" else None),
            "llm": llm_resource_from_env(),
            "log_source": LogSource(landing_dir=landing or landing_dir(), synthetic_logs=logs,
                                    seed=int(os.environ.get("CRMAGENT_SEED", "7")),
                                    synthetic_when_no_landing=synthetic_asked() if synthetic is None else synthetic,
                                    timezone=os.environ.get("CRMAGENT_TIMEZONE") or "UTC",
                                    csv_encoding=os.environ.get("CRMAGENT_CSV_ENCODING") or None),
        },
    )


defs = build_definitions()
