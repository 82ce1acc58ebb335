"""Stage 8, evaluation (EvaluateAgent): Fig. 5 scores and Fig. 6 preferences judged in both orders."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.faithfulness import DEFAULT_LAYERS, bertscore_f1, chrf, model_label
from crmagent_dagster.agents.io import llm_metadata, write_rows
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts, transaction

SCORES = dg.AssetKey(["agents", "rewrite_scores"])
PREFERENCES = dg.AssetKey(["agents", "preference_judgments"])
REWRITES = dg.AssetKey(["agents", "template_rewrites"])


def _mean(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SCORES, deps=[REWRITES], group_name="evaluation", kinds={"duckdb"},
                     description="Audience match and marketing effectiveness (1/3/5, with reasons) of original and rewrite.",
                     metadata={"dagster/table_name": "agents.rewrite_scores"}),
        dg.AssetSpec(PREFERENCES, deps=[REWRITES], group_name="evaluation", kinds={"duckdb"},
                     description="Blind A/B in both orders; a verdict only when both orders agree, else a tie.",
                     metadata={"dagster/table_name": "agents.preference_judgments"}),
    ],
    check_specs=[dg.AssetCheckSpec("verdict_needs_both_orders", asset=PREFERENCES,
                                   description="No verdict other than tie where the two orders disagree.")],
    partitions_def=month_segment_partitions, pool=DUCKDB_POOL,
)
def evaluate_agent(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, llm: LLMResource):
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, llm, context.log.info)
        rows = {r["aggregate_id"]: r for r in workflow.load_labelled(conn, month, segment)}
        rewrites = fetch_dicts(conn, "SELECT * FROM agents.template_rewrites WHERE month = $month AND segment = $segment", p)
        scores, prefs = workflow.evaluate(ctx, rewrites, rows)
        with transaction(conn):  # LLM answers are cached as they come; the partition's tables commit together
            write_rows(conn, "agents.rewrite_scores", scores, month, segment)
            write_rows(conn, "agents.preference_judgments", prefs, month, segment)
    ok = [s for s in scores if s["status"] == "ok"]
    judged = [x for x in prefs if x["status"] == "ok"]
    wins = sum(x["verdict"] == "rewrite" for x in judged)
    consistent = sum(bool(x["position_consistent"]) for x in judged)
    bad = sum(1 for x in judged if not x["position_consistent"] and x["verdict"] != "tie")
    backend = {"backend": ctx.backend("evaluate"), "model": ctx.model("evaluate"),
               "writer_backend": ctx.backend("template")}
    usage = llm_metadata(ctx.llm_runs)
    yield dg.MaterializeResult(asset_key=SCORES, metadata={
        "dagster/row_count": len(scores), "failed": len(scores) - len(ok), **backend,
        "audience_original": _mean(s["original_audience"] for s in ok), "audience_rewrite": _mean(s["rewrite_audience"] for s in ok),
        "marketing_original": _mean(s["original_marketing"] for s in ok),
        "marketing_rewrite": _mean(s["rewrite_marketing"] for s in ok), **usage})
    yield dg.MaterializeResult(asset_key=PREFERENCES, metadata={
        "dagster/row_count": len(prefs), "failed": len(prefs) - len(judged), **backend,
        "rewrite_preferred_rate": round(wins / len(judged), 3) if judged else None,
        "position_consistency_rate": round(consistent / len(judged), 3) if judged else None})
    yield dg.AssetCheckResult(asset_key=PREFERENCES, check_name="verdict_needs_both_orders", passed=bad == 0,
                              metadata={"inconsistent_with_verdict": bad})


FAITHFULNESS = dg.AssetKey(["agents", "faithfulness_scores"])


class FaithfulnessConfig(dg.Config):
    bertscore_model: str = Field(default="", description="Hugging Face id or local path; empty = the packaged "
                                                         "all-MiniLM-L6-v2 (the paper used xlm-roberta-large).")
    bertscore_layers: int = Field(default=DEFAULT_LAYERS, description="Layer whose embeddings BERTScore compares.")


@dg.asset(key=FAITHFULNESS, deps=[REWRITES], partitions_def=month_segment_partitions, group_name="evaluation",
          kinds={"duckdb"}, pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.faithfulness_scores"},
          check_specs=[dg.AssetCheckSpec("scores_in_range", asset=FAITHFULNESS,
                                         description="BERTScore-F1 in [-1, 1] and chrF in [0, 100] for every rewrite.")])
def faithfulness_scores(context: dg.AssetExecutionContext, config: FaithfulnessConfig,
                        duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Table 2: BERTScore-F1 and chrF of every accepted rewrite against its original."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        done = fetch_dicts(conn, "SELECT * FROM agents.template_rewrites WHERE month = $month AND segment = $segment "
                                 "AND status = 'ok' ORDER BY aggregate_id", p)
        candidates = [f"{w['new_title']}\n{w['new_body']}" for w in done]
        references = [f"{w['original_title'] or ''}\n{w['original_body'] or ''}" for w in done]
        f1 = bertscore_f1(candidates, references, config.bertscore_model or None, config.bertscore_layers)
        label = model_label(config.bertscore_model or None, config.bertscore_layers)
        rows = [{"month": month, "segment": segment, "aggregate_id": w["aggregate_id"], "template_id": w["template_id"],
                 "path": w["path"], "bertscore_f1": f, "chrf": chrf(c, r), "bertscore_model": label,
                 "writer_backend": w["backend"]} for w, f, c, r in zip(done, f1, candidates, references)]
        n = write_rows(conn, "agents.faithfulness_scores", rows, month, segment)
    bad = sum(1 for r in rows if not (-1 <= r["bertscore_f1"] <= 1 and 0 <= r["chrf"] <= 100))
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "bertscore_model": label,
                  "bertscore_f1_mean": _mean(r["bertscore_f1"] for r in rows), "chrf_mean": _mean(r["chrf"] for r in rows)},
        check_results=[dg.AssetCheckResult(check_name="scores_in_range", passed=bad == 0, metadata={"out_of_range": bad})],
    )


ORIGINAL_SCORES = dg.AssetKey(["agents", "original_scores"])


@dg.asset(key=ORIGINAL_SCORES, deps=[dg.AssetKey(["core", "labelled_templates"])],
          partitions_def=month_segment_partitions, group_name="evaluation", kinds={"duckdb"}, pool=DUCKDB_POOL,
          metadata={"dagster/table_name": "agents.original_scores"})
def original_scores(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, llm: LLMResource) -> dg.MaterializeResult:
    """The judge's scores of every strong and weak original, to check the judge against observed engagement."""
    month, segment = month_and_segment(context)
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, llm, context.log.info)
        out = workflow.score_originals(ctx, workflow.load_labelled(conn, month, segment))
        n = write_rows(conn, "agents.original_scores", out, month, segment)
    ok = [r for r in out if r["status"] == "ok"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n, "failed": n - len(ok), "backend": ctx.backend("evaluate"), "model": ctx.model("evaluate"),
        "strong_mean_judge_score": _mean(r["judge_score"] for r in ok if r["performance_label"] == "strong"),
        "weak_mean_judge_score": _mean(r["judge_score"] for r in ok if r["performance_label"] == "weak"),
        **llm_metadata(ctx.llm_runs)})
