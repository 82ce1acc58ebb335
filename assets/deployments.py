"""Stage 10, deployments: reviewed (or policy-approved) rewrites become experiments a CRM sender runs.

`agents.rewrite_reviews` is written by people (the review page, `crmagent review import`), not by a run, so it is
an external asset here: the deployments asset reads its latest decisions.
"""

import dagster as dg
from pydantic import Field

from crmagent_dagster.experiments.assignment import AssignmentRule
from crmagent_dagster.experiments.deploy import DeploymentSettings, plan_deployments, sender_file, write_sender_file
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.review.store import ensure_table
from crmagent_dagster.sql import preview_markdown, run, transaction, write_frame

REVIEWS = dg.AssetKey(["agents", "rewrite_reviews"])
DEPLOYMENTS = dg.AssetKey(["agents", "deployments"])

rewrite_reviews = dg.AssetSpec(
    REVIEWS, group_name="review", kinds={"duckdb"},
    description="Every reviewer decision (approve / edit / reject) on a rewrite, kept as history. Written by the "
                "review page (`crmagent review`) and CSV imports, not by a run.",
    metadata={"dagster/table_name": "agents.rewrite_reviews"})


class DeploymentConfig(dg.Config):
    auto_approve: bool = Field(default=False, description="Deploy rewrites nobody has reviewed yet when they pass "
                                                          "every guardrail and the judge prefers them in both orders.")
    treatment_share: float = Field(default=0.5, description="Share of (non-holdout) recipients who get the rewrite.")
    holdout_share: float = Field(default=0.0, description="Global holdout: recipients who get neither version.")
    holdout_salt: str = Field(default="crmagent-holdout", description="Keeps the holdout the same recipients in every "
                                                                      "experiment and month; change it to redraw.")

    def settings(self) -> DeploymentSettings:
        return DeploymentSettings(self.auto_approve, AssignmentRule(self.treatment_share, self.holdout_share,
                                                                    self.holdout_salt))


@dg.asset(key=DEPLOYMENTS, partitions_def=month_segment_partitions, group_name="deployments", kinds={"duckdb", "parquet"},
          deps=[dg.AssetKey(["agents", "template_rewrites"]), dg.AssetKey(["agents", "preference_judgments"]),
                dg.AssetKey(["agents", "template_audits"]), REVIEWS],
          pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.deployments"},
          check_specs=[dg.AssetCheckSpec("one_experiment_per_rewrite", asset=DEPLOYMENTS,
                                         description="Each deployed rewrite is one experiment with its own ids."),
                       dg.AssetCheckSpec("deployed_text_passed_guardrails", asset=DEPLOYMENTS,
                                         description="Every deployed text passed the guardrails: an accepted rewrite "
                                                     "or a reviewer's edit that passed them.")])
def deployments(context: dg.AssetExecutionContext, config: DeploymentConfig, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Approved rewrites as experiments: experiment id, variant template id, assignment rule; a table and the
    Parquet file a sender joins on."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        ensure_table(conn)  # no review yet is a normal state: the table exists, empty
        plan = plan_deployments(conn, month, segment, config.settings())
        rows = plan.frame()
        with transaction(conn):
            n = write_frame(conn, "agents.deployments", rows, p)
        unchecked = run(conn, """
            SELECT count(*) FROM agents.deployments d
            LEFT JOIN agents.template_rewrites w USING (month, segment, aggregate_id)
            LEFT JOIN agents.rewrite_reviews r ON r.review_id = d.review_id
            WHERE d.month = $month AND d.segment = $segment
              AND NOT (CASE WHEN d.deployed_as = 'rewrite' THEN coalesce(w.status = 'ok' AND w.guard_passed, false)
                            ELSE coalesce(NOT list_contains(
                                     json_extract(r.guard_checks, '$[*].passed')::BOOLEAN[], false), false) END)""", p)[0][0] if n else 0
        dup = run(conn, "SELECT count(*) - count(DISTINCT experiment_id), count(*) - count(DISTINCT aggregate_id) "
                        "FROM agents.deployments WHERE month = $month AND segment = $segment", p)[0]
        preview = preview_markdown(conn, "SELECT experiment_id, approved_by, deployed_as, variant_title, variant_body "
                                         "FROM agents.deployments WHERE month = $month AND segment = $segment "
                                         "ORDER BY experiment_id LIMIT 6", p)
    path = write_sender_file(rows, sender_file(duckdb.database, month, segment))
    context.log.info(f"{month} {segment}: {n} experiment(s) -> {path}")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "approved_by_reviewer": plan.by_reviewer, "approved_by_policy": plan.by_policy,
                  "edited_by_reviewer": plan.edited, "rejected_by_reviewer": plan.rejected,
                  "awaiting_review": plan.awaiting_review, "not_deployable": plan.not_deployable,
                  "auto_approve": config.auto_approve, "assignment_rule": config.settings().rule.describe(),
                  "sender_file": dg.MetadataValue.path(str(path)), "preview": dg.MetadataValue.md(preview)},
        check_results=[dg.AssetCheckResult(check_name="one_experiment_per_rewrite", passed=dup == (0, 0),
                                           metadata={"duplicate_experiments": dup[0], "duplicate_rewrites": dup[1]}),
                       dg.AssetCheckResult(check_name="deployed_text_passed_guardrails", passed=unchecked == 0,
                                           metadata={"without_passed_guardrails": unchecked})],
    )
