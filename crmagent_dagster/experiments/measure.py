"""Realized uplift: each experiment deployed last month, measured on this month's deliveries.

Per experiment: treatment (the rewrite) against control (the original) by assigned arm, the difference in mean
Appendix A engagement score with its 95% interval (stats.experiment_effect), rates, sizes, the minimum detectable
effect, compliance and sample-ratio mismatch, beside what the judges predicted for that rewrite last month.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import numpy as np
import polars as pl

from crmagent_dagster.experiments.stats import Effect, UpliftSettings, experiment_effect, srm_p_value
from crmagent_dagster.partitions import previous_month
from crmagent_dagster.sql import fetch_dicts, table_exists


@dataclass(frozen=True)
class RealizedUplift:
    """One row of agents.realized_uplift."""

    month: str
    segment: str
    deploy_month: str
    experiment_id: str
    aggregate_id: str
    template_id: str
    variant_template_id: str
    path: int | None
    writer: str
    original_error_type: str | None
    deployed_as: str
    approved_by: str
    n_treatment: int
    n_control: int
    n_holdout_sent: int
    treatment_compliance: float | None
    control_compliance: float | None
    mean_treatment: float | None
    mean_control: float | None
    difference: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str | None
    mde: float | None
    label: str
    read_rate_treatment: float | None
    read_rate_control: float | None
    click_rate_treatment: float | None
    click_rate_control: float | None
    unsubscribe_rate_treatment: float | None
    unsubscribe_rate_control: float | None
    srm_p_value: float | None
    judge_verdict: str | None
    judge_score_delta: float | None
    predicted_delta: float | None

    def as_row(self) -> dict:
        return asdict(self)


def _deployed(conn: duckdb.DuckDBPyConnection, deploy_month: str, segment: str) -> list[dict]:
    """Last month's experiments with what the judges said of their rewrite (an edit was never judged)."""
    if not table_exists(conn, "agents.deployments"):
        return []
    scores = table_exists(conn, "agents.rewrite_scores")
    predicted = table_exists(conn, "agents.predicted_engagement")
    return fetch_dicts(conn, f"""
        SELECT d.*,
               {'''CASE WHEN d.deployed_as = 'rewrite' THEN (s.rewrite_audience + s.rewrite_marketing)
                     - (s.original_audience + s.original_marketing) END''' if scores else 'NULL'} AS judge_score_delta,
               {"CASE WHEN d.deployed_as = 'rewrite' THEN pe.predicted_delta END" if predicted else 'NULL'}
                   AS predicted_delta
        FROM agents.deployments d
        {'LEFT JOIN agents.rewrite_scores s USING (month, segment, aggregate_id)' if scores else ''}
        {'LEFT JOIN agents.predicted_engagement pe USING (month, segment, aggregate_id)' if predicted else ''}
        WHERE d.month = $deploy_month AND d.segment = $segment ORDER BY d.experiment_id""",
                       {"deploy_month": deploy_month, "segment": segment})


def _rate(values: pl.Series) -> float | None:
    return float(values.cast(pl.Float64).mean()) if values.len() else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def measure(conn: duckdb.DuckDBPyConnection, month: str, segment: str,
            settings: UpliftSettings = UpliftSettings()) -> list[RealizedUplift]:
    """One row per experiment deployed for `segment` the month before `month`; core.experiment_deliveries for
    (month, segment) must be written first."""
    deploy_month = previous_month(month)
    deployed = _deployed(conn, deploy_month, segment)
    if not deployed:
        return []
    logs = conn.sql("SELECT experiment_id, arm, version_sent, engagement_score, did_read, did_click, did_unsubscribe "
                    "FROM core.experiment_deliveries WHERE month = $month AND segment = $segment",
                    params={"month": month, "segment": segment}).pl()
    by_experiment = {k[0]: g for k, g in logs.group_by("experiment_id")} if logs.height else {}
    return [_one(month, d, by_experiment.get(d["experiment_id"]), settings) for d in deployed]


def _one(month: str, d: dict, logs: pl.DataFrame | None, settings: UpliftSettings) -> RealizedUplift:
    empty = pl.DataFrame(schema={"arm": pl.Utf8, "version_sent": pl.Utf8, "engagement_score": pl.Int64,
                                 "did_read": pl.Boolean, "did_click": pl.Boolean, "did_unsubscribe": pl.Boolean})
    logs = empty if logs is None else logs
    t, c = logs.filter(pl.col("arm") == "treatment"), logs.filter(pl.col("arm") == "control")
    effect: Effect = experiment_effect(t["engagement_score"].to_numpy().astype(np.float64),
                                       c["engagement_score"].to_numpy().astype(np.float64), settings)
    return RealizedUplift(
        month=month, segment=d["segment"], deploy_month=d["month"], experiment_id=d["experiment_id"],
        aggregate_id=d["aggregate_id"], template_id=d["template_id"], variant_template_id=d["variant_template_id"],
        path=d["path"], writer=f"{d['writer_backend']}:{d['writer_model']}" if d["deployed_as"] == "rewrite"
        else f"reviewer edit ({d['writer_backend']}:{d['writer_model']})",
        original_error_type=d["original_error_type"], deployed_as=d["deployed_as"], approved_by=d["approved_by"],
        n_treatment=t.height, n_control=c.height, n_holdout_sent=logs.filter(pl.col("arm") == "holdout").height,
        treatment_compliance=_share(t.filter(pl.col("version_sent") == "rewrite").height, t.height),
        control_compliance=_share(c.filter(pl.col("version_sent") == "original").height, c.height),
        mean_treatment=effect.mean_treatment, mean_control=effect.mean_control, difference=effect.difference,
        se=effect.se, ci_low=effect.ci_low, ci_high=effect.ci_high, p_value=effect.p_value, method=effect.method,
        mde=effect.mde, label=effect.label,
        read_rate_treatment=_rate(t["did_read"]), read_rate_control=_rate(c["did_read"]),
        click_rate_treatment=_rate(t["did_click"]), click_rate_control=_rate(c["did_click"]),
        unsubscribe_rate_treatment=_rate(t["did_unsubscribe"]), unsubscribe_rate_control=_rate(c["did_unsubscribe"]),
        srm_p_value=srm_p_value(t.height, c.height, d["treatment_share"]),
        judge_verdict=d["judge_verdict"] if d["deployed_as"] == "rewrite" else None,
        judge_score_delta=d["judge_score_delta"], predicted_delta=d["predicted_delta"])
