"""Stage 8, evaluation (EvaluateAgent): Fig. 5 scores and Fig. 6 preferences judged in both orders."""

import dagster as dg

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.io import llm_metadata, write_rows
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts

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
