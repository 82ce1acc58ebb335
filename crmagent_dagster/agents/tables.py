"""Column types of the agents' tables, so an empty partition still has the right schema."""

from __future__ import annotations

from typing import Any

import polars as pl

S, I, F, B, L = pl.Utf8, pl.Int64, pl.Float64, pl.Boolean, pl.List(pl.Utf8)
_LINEAGE = {"backend": S, "model": S, "prompt_version": S, "status": S, "error": S}
_KEYS = {"month": S, "segment": S, "aggregate_id": S, "template_id": S}

SCHEMAS: dict[str, dict[str, Any]] = {
    "agents.index_members": {"month": S, "segment": S, "position": I, "aggregate_id": S, "shop_id": S,
                             "template_id": S, "metadata_key": S},
    "agents.exemplar_matches": {"month": S, "segment": S, "aggregate_id": S, "shop_id": S, "route": S, "rank": I,
                                "exemplar_aggregate_id": S, "exemplar_template_id": S, "exemplar_shop_id": S,
                                "similarity": F, "ranking": S},
    "agents.segment_diagnoses": {"month": S, "segment": S, "n_strong": I, "n_weak": I, "analysis": S,
                                 "success_patterns": S, "failure_patterns": S, "feature_shares": S, **_LINEAGE},
    "agents.problem_analyses": {**_KEYS, "reason": S, **_LINEAGE},
    "agents.template_rewrites": {**_KEYS, "shop_id": S, "path": I, "exemplar_template_ids": L,
                                 "exemplar_aggregate_ids": L, "exemplar_similarity": pl.List(F), "language": S,
                                 "channel": S, "original_title": S, "original_body": S, "original_error_type": S,
                                 "audit_flags": L, "message_kind": S, "kind_evidence": S, "new_title": S, "new_body": S, "changes": L, "unable": L,
                                 "needs": L, "guard_checks": S, "guard_passed": B, "guard_rounds": I,
                                 "first_violations": L, "replaced_by_rules": B, "fallback_reason": S,
                                 "attempted_backend": S, **_LINEAGE},
    "agents.rewrite_scores": {**_KEYS, "path": I, "original_audience": I, "original_audience_reason": S,
                              "original_marketing": I, "original_marketing_reason": S, "rewrite_audience": I,
                              "rewrite_audience_reason": S, "rewrite_marketing": I, "rewrite_marketing_reason": S,
                              "writer_backend": S, "writer_model": S, **_LINEAGE},
    "agents.preference_judgments": {**_KEYS, "path": I, "original_as_a": S, "rewrite_as_a": S, "verdict": S,
                                    "position_consistent": B, "writer_backend": S, "writer_model": S, **_LINEAGE},
    "agents.template_audits": {**_KEYS, "version": S, "error_type": S, "feedback": S, "flags": L, "flag_details": S,
                               "message_kind": S, "kind_evidence": S, **_LINEAGE},
    "agents.faithfulness_scores": {**_KEYS, "path": I, "bertscore_f1": F, "chrf": F, "bertscore_model": S,
                                   "writer_backend": S},
    "agents.original_scores": {**_KEYS, "performance_label": S, "observed_mean_score": F, "n_logs": I, "audience": I,
                               "marketing": I, "judge_score": I, **_LINEAGE},
    "agents.writing_guidance": {"month": S, "segment": S, "guidance": S, "example_template_id": S,
                                "example_before": S, "example_after": S, "source_backend": S},
    # Experiments: what was deployed (month x segment of the rewrites) and what it realized next month.
    "agents.deployments": {"month": S, "segment": S, "experiment_id": S, "aggregate_id": S, "shop_id": S,
                           "template_id": S, "variant_template_id": S, "product_id": S, "voucher_id": S, "language": S,
                           "channel": S, "original_title": S, "original_body": S, "variant_title": S,
                           "variant_body": S, "deployed_as": S, "approved_by": S, "approved_at": pl.Datetime("us"),
                           "review_id": S, "path": I, "writer_backend": S, "writer_model": S,
                           "original_error_type": S, "judge_verdict": S, "n_logs_before": I,
                           "mean_score_before": F, "treatment_share": F, "holdout_share": F, "holdout_salt": S,
                           "assignment_rule": S},
    "agents.realized_uplift": {"month": S, "segment": S, "deploy_month": S, "experiment_id": S, "aggregate_id": S,
                               "template_id": S, "variant_template_id": S, "path": I, "writer": S,
                               "original_error_type": S, "deployed_as": S, "approved_by": S, "n_treatment": I,
                               "n_control": I, "n_holdout_sent": I, "treatment_compliance": F,
                               "control_compliance": F, "mean_treatment": F, "mean_control": F, "difference": F,
                               "se": F, "ci_low": F, "ci_high": F, "p_value": F, "method": S, "mde": F, "label": S,
                               "read_rate_treatment": F, "read_rate_control": F, "click_rate_treatment": F,
                               "click_rate_control": F, "unsubscribe_rate_treatment": F,
                               "unsubscribe_rate_control": F, "srm_p_value": F, "judge_verdict": S,
                               "judge_score_delta": F, "predicted_delta": F},
    "results.realized_uplift_summary": {"month": S, "deploy_month": S, "dimension": S, "value": S,
                                        "n_experiments": I, "n_measured": I, "n_treatment": I, "n_control": I,
                                        "effect": F, "se": F, "ci_low": F, "ci_high": F, "fixed_effect": F, "i2": F,
                                        "method": S, "label": S, "experiments_with_uplift": I,
                                        "experiments_with_drop": I, "experiments_too_small": I,
                                        "read_rate_treatment": F, "read_rate_control": F, "click_rate_treatment": F,
                                        "click_rate_control": F, "unsubscribe_rate_treatment": F,
                                        "unsubscribe_rate_control": F},
    "results.judge_vs_realized": {"month": S, "deploy_month": S, "segment": S, "is_overall": B, "predictor": S,
                                  "n": I, "spearman_rho": F, "ci_low": F, "ci_high": F, "p_value": F},
    # Monthly tables (one partition per month, across segments).
    "agents.predicted_engagement": {**_KEYS, "path": I, "writer_backend": S, "writer_model": S,
                                    "observed_original": F, "predicted_original": F, "predicted_rewrite": F,
                                    "predicted_delta": F, "model": S},
    "results.engagement_model": {"month": S, "model": S, "n_groups": I, "n_train": I, "n_test": I, "n_test_shops": I,
                                 "alpha": F, "r2": F, "spearman_rho": F, "mae": F, "baseline_r2": F,
                                 "baseline_spearman_rho": F, "text_lift_r2": F, "rewrites_scored": I,
                                 "rewrite_predicted_better_pct": F},
    "agents.ablation_judgments": {"month": S, "configuration": S, "position": I, "segment": S, "aggregate_id": S,
                                  "template_id": S, "content_setting": S, "template_setting": S,
                                  "evaluate_setting": S, "zero_shot": B, "path": I, "new_title": S, "new_body": S,
                                  "writer_backend": S, "original_audience": I, "rewrite_audience": I,
                                  "original_marketing": I, "rewrite_marketing": I, "verdict": S,
                                  "position_consistent": B, "status": S, "error": S},
}


def frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = SCHEMAS[table]
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema, orient="row")
