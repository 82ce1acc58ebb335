"""Stage 11, experiments: last month's deployments measured on this month's deliveries.

The monthly run measures before it rewrites: `experiments_job` (this stage) runs for a month x segment before
`segment_job`. Retrieval may read what was measured (RetrievalConfig.prefer_realized_uplift) without declaring it
as a dependency: rewrites -> deployments -> realized uplift -> retrieval would be a cycle in the asset graph.
"""

import dagster as dg
from pydantic import Field

from crmagent_dagster.agents.io import write_rows
from crmagent_dagster.agents.tables import frame
from crmagent_dagster.experiments import rollup
from crmagent_dagster.experiments.measure import measure
from crmagent_dagster.experiments.stats import UpliftSettings
from crmagent_dagster.partitions import (
    BY_MONTH,
    DUCKDB_POOL,
    PREVIOUS_MONTH,
    month_and_segment,
    month_segment_partitions,
    monthly_partitions,
    previous_month,
)
from crmagent_dagster.plots import markdown_image, scatter
from crmagent_dagster.report import charts
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts, preview_markdown, run, table_exists, transaction, write_frame, write_model

DELIVERIES = dg.AssetKey(["core", "experiment_deliveries"])
UPLIFT = dg.AssetKey(["agents", "realized_uplift"])
SUMMARY = dg.AssetKey(["results", "realized_uplift_summary"])
JUDGE = dg.AssetKey(["results", "judge_vs_realized"])

UPSTREAM = [dg.AssetDep(dg.AssetKey(["agents", "deployments"]), partition_mapping=PREVIOUS_MONTH),
            dg.AssetKey(["core", "log_engagement"])]


class UpliftConfig(dg.Config):
    min_arm_logs: int = Field(default=30, description="An arm with fewer deliveries is labelled too_small.")
    welch_min_logs: int = Field(default=30, description="Arms this large get Welch's interval; smaller ones (labelled "
                                                        "too_small) a seeded BCa bootstrap, which under-covers on "
                                                        "these scores above 30 (see experiments/stats.py).")
    bootstrap_resamples: int = Field(default=2000, description="Resamples of the bootstrap interval.")

    def settings(self) -> UpliftSettings:
        return UpliftSettings(min_arm_logs=self.min_arm_logs, welch_min_logs=self.welch_min_logs,
                              bootstrap_resamples=self.bootstrap_resamples)


@dg.multi_asset(
    specs=[dg.AssetSpec(DELIVERIES, deps=UPSTREAM, group_name="experiments", kinds={"duckdb"},
                        description="This month's deliveries of last month's experiments, with the arm each "
                                    "recipient is assigned to and the version it carried.",
                        metadata={"dagster/table_name": "core.experiment_deliveries"}),
           dg.AssetSpec(UPLIFT, deps=UPSTREAM, group_name="experiments", kinds={"duckdb"},
                        description="Realized uplift per experiment: treatment vs control mean engagement, 95% CI, "
                                    "rates, sizes, minimum detectable effect, beside what the judges predicted.",
                        metadata={"dagster/table_name": "agents.realized_uplift"})],
    check_specs=[
        dg.AssetCheckSpec("every_experiment_measured", asset=UPLIFT,
                          description="One row per experiment deployed last month (not_sent when it has no deliveries)."),
        dg.AssetCheckSpec("sample_ratio_as_assigned", asset=UPLIFT, blocking=False,
                          description="No experiment's arms depart from the treatment share (chi-square p < 0.001): "
                                      "a sender that does not follow the assignment rule biases the comparison."),
        dg.AssetCheckSpec("no_deliveries_to_holdout", asset=UPLIFT, blocking=False,
                          description="The global holdout received nothing."),
    ],
    partitions_def=month_segment_partitions, pool=DUCKDB_POOL,
)
def realized_uplift(context: dg.AssetExecutionContext, config: UpliftConfig, duckdb: CRMWarehouse):
    month, segment = month_and_segment(context)
    deploy_month = previous_month(month)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        has_deployments = table_exists(conn, "agents.deployments")  # none before the first month is reviewed
        with transaction(conn):
            n_logs = write_model(conn, "core.experiment_deliveries", p, {"deploy_month": deploy_month}) \
                if has_deployments else 0
            rows = [r.as_row() for r in measure(conn, month, segment, config.settings())] if has_deployments else []
            n = write_rows(conn, "agents.realized_uplift", rows, month, segment)
        deployed = run(conn, "SELECT count(*) FROM agents.deployments WHERE month = $m AND segment = $s",
                             {"m": deploy_month, "s": segment})[0][0] if has_deployments else 0
        preview = preview_markdown(conn, "SELECT experiment_id, label, n_treatment, n_control, round(difference, 3) AS "
                                         "difference, round(ci_low, 3) AS ci_low, round(ci_high, 3) AS ci_high "
                                         "FROM agents.realized_uplift WHERE month = $month AND segment = $segment "
                                         "ORDER BY n_treatment + n_control DESC LIMIT 8", p)
    srm = sum(1 for r in rows if r["srm_p_value"] is not None and r["srm_p_value"] < 0.001)
    holdout = sum(r["n_holdout_sent"] for r in rows)
    labels = {label: sum(r["label"] == label for r in rows) for label in ("uplift", "drop", "no_clear_effect",
                                                                          "too_small", "not_sent")}
    yield dg.MaterializeResult(asset_key=DELIVERIES, metadata={"dagster/row_count": n_logs, "deploy_month": deploy_month})
    yield dg.MaterializeResult(asset_key=UPLIFT, metadata={
        "dagster/row_count": n, "deploy_month": deploy_month, "experiments_deployed": deployed, **labels,
        "preview": dg.MetadataValue.md(preview)})
    yield dg.AssetCheckResult(asset_key=UPLIFT, check_name="every_experiment_measured", passed=n == deployed,
                              metadata={"deployed": deployed, "measured": n})
    yield dg.AssetCheckResult(asset_key=UPLIFT, check_name="sample_ratio_as_assigned", passed=srm == 0,
                              severity=dg.AssetCheckSeverity.WARN, metadata={"experiments_with_mismatch": srm})
    yield dg.AssetCheckResult(asset_key=UPLIFT, check_name="no_deliveries_to_holdout", passed=holdout == 0,
                              severity=dg.AssetCheckSeverity.WARN, metadata={"deliveries_to_holdout": holdout})


@dg.multi_asset(
    specs=[dg.AssetSpec(SUMMARY, deps=[dg.AssetDep(UPLIFT, partition_mapping=BY_MONTH)], group_name="results",
                        kinds={"duckdb"}, description="Realized uplift rolled up overall and per segment, path, error "
                                                      "type and writer (random effects over experiments).",
                        metadata={"dagster/table_name": "results.realized_uplift_summary"}),
           dg.AssetSpec(JUDGE, deps=[dg.AssetDep(UPLIFT, partition_mapping=BY_MONTH)], group_name="results",
                        kinds={"duckdb"}, description="Was the judge right: Spearman's rho of each judge's prediction "
                                                      "last month vs the realized uplift, per segment and overall.",
                        metadata={"dagster/table_name": "results.judge_vs_realized"})],
    partitions_def=monthly_partitions, pool=DUCKDB_POOL,
)
def uplift_results(context: dg.AssetExecutionContext, duckdb: CRMWarehouse):
    month = context.partition_key
    with duckdb.get_connection() as conn:
        rows = fetch_dicts(conn, "SELECT * FROM agents.realized_uplift WHERE month = $month ORDER BY segment, "
                                 "experiment_id", {"month": month}) if table_exists(conn, "agents.realized_uplift") else []
        summary, judged = rollup.summary_rows(month, rows), rollup.judge_rows(month, rows)
        with transaction(conn):
            write_frame(conn, "results.realized_uplift_summary", frame("results.realized_uplift_summary", summary),
                        {"month": month})
            write_frame(conn, "results.judge_vs_realized", frame("results.judge_vs_realized", judged), {"month": month})
    yield dg.MaterializeResult(asset_key=SUMMARY, metadata={
        "dagster/row_count": len(summary), "experiments": len(rows),
        "plot": dg.MetadataValue.md("\n\n".join(markdown_image(png, "realized uplift")
                                                  for png in charts("realized_uplift_summary", month, summary)))})
    yield dg.MaterializeResult(asset_key=JUDGE, metadata={
        "dagster/row_count": len(judged),
        "plot": dg.MetadataValue.md("\n\n".join(markdown_image(png, "judge vs realized") for png in
                                                  charts("judge_vs_realized", month, judged)
                                                  + predicted_vs_realized(month, rows)))})


def predicted_vs_realized(month: str, rows: list[dict]) -> list[bytes]:
    """The engagement predictor's prediction against each experiment's realized difference."""
    pairs = [(r["predicted_delta"], r["difference"]) for r in rows
             if r["predicted_delta"] is not None and r["difference"] is not None]
    if len(pairs) < 3:
        return []
    return [scatter([d for _, d in pairs], [p for p, _ in pairs], f"{month}: predicted vs realized per experiment",
                    "realized (treatment - control)", "predicted by the engagement model")]
