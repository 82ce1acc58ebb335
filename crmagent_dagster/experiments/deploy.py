"""Deployments: each approved rewrite of a month x segment becomes an experiment a CRM sender can run.

A rewrite is deployed when its latest counting review decision approves it (its text) or edits it (the reviewer's
text), or, with the auto-approve policy on and no decision yet, when the policy approves it. A rejected one is not.
Everything else waits for review, and the plan says how many did.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from crmagent_dagster.agents.tables import frame
from crmagent_dagster.experiments.assignment import AssignmentRule, experiment_id, variant_template_id
from crmagent_dagster.review.store import latest_decisions, policy_approves
from crmagent_dagster.sql import fetch_dicts, table_exists

POLICY_REVIEWER = "policy:auto-approve"


@dataclass(frozen=True)
class DeploymentSettings:
    auto_approve: bool = False
    rule: AssignmentRule = AssignmentRule()


@dataclass(frozen=True)
class Deployment:
    """One row of agents.deployments (and of the sender's Parquet file)."""

    month: str
    segment: str
    experiment_id: str
    aggregate_id: str
    shop_id: str
    template_id: str
    variant_template_id: str
    product_id: str | None
    voucher_id: str | None
    language: str | None
    channel: str | None
    original_title: str | None
    original_body: str | None
    variant_title: str
    variant_body: str
    deployed_as: str  # 'rewrite' (the writer's text) or 'edit' (a reviewer's)
    approved_by: str
    approved_at: datetime | None  # None for the policy: no person decided
    review_id: str | None
    path: int | None
    writer_backend: str | None
    writer_model: str | None
    original_error_type: str | None
    judge_verdict: str | None
    n_logs_before: int | None
    mean_score_before: float | None
    treatment_share: float
    holdout_share: float
    holdout_salt: str
    assignment_rule: str


@dataclass(frozen=True)
class DeploymentPlan:
    deployments: list[Deployment]
    by_reviewer: int
    by_policy: int
    edited: int
    rejected: int
    awaiting_review: int
    not_deployable: int  # the writer's rewrite was rejected or failed and nobody supplied an edit

    def frame(self) -> pl.DataFrame:
        return frame("agents.deployments", [asdict(d) for d in self.deployments])


def _candidates(conn: duckdb.DuckDBPyConnection, month: str, segment: str) -> list[dict[str, Any]]:
    if not table_exists(conn, "agents.template_rewrites"):
        return []
    verdicts = ("j.verdict, j.position_consistent" if table_exists(conn, "agents.preference_judgments")
                else "NULL AS verdict, NULL AS position_consistent")
    join = ("LEFT JOIN agents.preference_judgments j USING (month, segment, aggregate_id)"
            if table_exists(conn, "agents.preference_judgments") else "")
    return fetch_dicts(conn, f"""
        SELECT w.*, {verdicts}, l.product_id, l.voucher_id, l.n_logs, l.mean_score
        FROM agents.template_rewrites w {join}
        LEFT JOIN core.labelled_templates l USING (month, segment, aggregate_id)
        WHERE w.month = $month AND w.segment = $segment ORDER BY w.aggregate_id""",
                       {"month": month, "segment": segment})


def plan_deployments(conn: duckdb.DuckDBPyConnection, month: str, segment: str,
                     settings: DeploymentSettings = DeploymentSettings()) -> DeploymentPlan:
    decisions = latest_decisions(conn, month, segment)
    rule = settings.rule
    out: list[Deployment] = []
    counts = dict(by_reviewer=0, by_policy=0, edited=0, rejected=0, awaiting_review=0, not_deployable=0)
    for w in _candidates(conn, month, segment):
        d = decisions.get((segment, w["aggregate_id"]))
        if d is not None and d.decision == "reject":
            counts["rejected"] += 1
            continue
        if d is not None:
            title, body = (d.edited_title or "", d.edited_body or "") if d.decision == "edit" else (w["new_title"],
                                                                                                    w["new_body"])
            source, who, when, review = ("edit" if d.decision == "edit" else "rewrite"), d.reviewer, d.decided_at, d.review_id
            counts["by_reviewer"] += 1
            counts["edited"] += d.decision == "edit"
        elif settings.auto_approve and policy_approves(w["status"], w["guard_passed"], w["verdict"],
                                                       w["position_consistent"]):
            title, body, source, who, when, review = w["new_title"], w["new_body"], "rewrite", POLICY_REVIEWER, None, None
            counts["by_policy"] += 1
        else:
            counts["awaiting_review" if w["status"] == "ok" else "not_deployable"] += 1
            continue
        exp = experiment_id(month, segment, w["aggregate_id"], title, body)
        out.append(Deployment(
            month=month, segment=segment, experiment_id=exp, aggregate_id=w["aggregate_id"], shop_id=w["shop_id"],
            template_id=w["template_id"], variant_template_id=variant_template_id(w["template_id"], exp),
            product_id=w["product_id"], voucher_id=w["voucher_id"], language=w["language"], channel=w["channel"],
            original_title=w["original_title"], original_body=w["original_body"], variant_title=title,
            variant_body=body, deployed_as=source, approved_by=who, approved_at=when, review_id=review,
            path=w["path"], writer_backend=w["backend"], writer_model=w["model"],
            original_error_type=w["original_error_type"], judge_verdict=w["verdict"], n_logs_before=w["n_logs"],
            mean_score_before=w["mean_score"], treatment_share=rule.treatment_share,
            holdout_share=rule.holdout_share, holdout_salt=rule.holdout_salt, assignment_rule=rule.describe()))
    return DeploymentPlan(out, **counts)


def sender_file(database: str, month: str, segment: str) -> Path:
    """The Parquet file a CRM sender joins on: <dir of the DuckDB file>/deployments/<month>/<segment>.parquet."""
    return Path(database).resolve().parent / "deployments" / month / f"{segment}.parquet"


def write_sender_file(rows: pl.DataFrame, path: Path) -> Path:
    """Written under a temporary name and renamed, so a sender never reads half a file. An empty partition still
    writes its (empty) file: a sender must not keep running last version's experiments."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    rows.write_parquet(tmp)
    os.replace(tmp, path)
    return path
