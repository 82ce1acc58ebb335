"""Stage 6, diagnosis (ContentAgent): why strong beat weak, each weak template's problem, merchant guidance."""

import json

import dagster as dg

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.io import llm_metadata, write_rows
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts, transaction

DIAGNOSES = dg.AssetKey(["agents", "segment_diagnoses"])
PROBLEMS = dg.AssetKey(["agents", "problem_analyses"])
GUIDANCE = dg.AssetKey(["agents", "writing_guidance"])
LABELLED = dg.AssetKey(["core", "labelled_templates"])
REWRITES = dg.AssetKey(["agents", "template_rewrites"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(DIAGNOSES, deps=[LABELLED], group_name="diagnosis", kinds={"duckdb"},
                     description="Fig. 2: comparative analysis of strong vs weak templates in the segment.",
                     metadata={"dagster/table_name": "agents.segment_diagnoses"}),
        dg.AssetSpec(PROBLEMS, deps=[LABELLED], group_name="diagnosis", kinds={"duckdb"},
                     description="Fig. 3's 'Poor Performance Reason' for every weak template.",
                     metadata={"dagster/table_name": "agents.problem_analyses"}),
    ],
    partitions_def=month_segment_partitions, pool=DUCKDB_POOL,
)
def content_agent(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, llm: LLMResource):
    month, segment = month_and_segment(context)
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, llm, context.log.info)
        diagnosis, problems = workflow.diagnose_segment(ctx, workflow.load_labelled(conn, month, segment))
        with transaction(conn):  # LLM answers are cached as they come; the partition's tables commit together
            write_rows(conn, "agents.segment_diagnoses", [diagnosis], month, segment)
            write_rows(conn, "agents.problem_analyses", problems, month, segment)
    usage = llm_metadata(ctx.llm_runs)
    yield dg.MaterializeResult(asset_key=DIAGNOSES, metadata={
        "backend": diagnosis["backend"], "model": diagnosis["model"], "status": diagnosis["status"],
        "analysis": dg.MetadataValue.md(diagnosis["analysis"] or f"_failed: {diagnosis['error']}_"), **usage})
    yield dg.MaterializeResult(asset_key=PROBLEMS, metadata={
        "dagster/row_count": len(problems), "failed": sum(p["status"] != "ok" for p in problems),
        "backend": diagnosis["backend"]})


def guidance_markdown(segment_label: str, diagnosis: dict, example: dict | None) -> str:
    # A failed LLM diagnosis stores JSON null: guidance then falls back to the generic first step.
    steps = (json.loads(diagnosis["success_patterns"] or "null") or []) + (json.loads(diagnosis["failure_patterns"] or "null") or [])
    analysis = diagnosis["analysis"] or f"(no diagnosis: {diagnosis.get('error') or 'not available'})"
    lines = [f"### Writing guidance: {segment_label}", "", analysis, ""]
    lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)] or ["1. State the offer exactly and end with a call to action."]
    if example:
        lines += ["", "**Before**", f"> {example['original_title']} — {example['original_body']}",
                  "", "**After**", f"> {example['new_title']} — {example['new_body']}"]
    return "\n".join(lines)


@dg.asset(key=GUIDANCE, deps=[DIAGNOSES, REWRITES], partitions_def=month_segment_partitions, group_name="diagnosis",
          kinds={"duckdb"}, pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.writing_guidance"})
def writing_guidance(context: dg.AssetExecutionContext, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """Step-by-step advice for the segment's merchants from the diagnosis, with a before/after from the data."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        diagnosis = fetch_dicts(conn, "SELECT * FROM agents.segment_diagnoses WHERE month = $month AND segment = $segment", p)[0]
        examples = fetch_dicts(conn, "SELECT * FROM agents.template_rewrites WHERE month = $month AND segment = $segment "
                                     "AND status = 'ok' ORDER BY path, aggregate_id LIMIT 1", p)
        example = examples[0] if examples else None
        text = guidance_markdown(workflow.SEGMENT_BY_KEY[segment].label, diagnosis, example)
        write_rows(conn, "agents.writing_guidance", [{
            "month": month, "segment": segment, "guidance": text,
            "example_template_id": example["template_id"] if example else None,
            "example_before": f"{example['original_title']}\n{example['original_body']}" if example else None,
            "example_after": f"{example['new_title']}\n{example['new_body']}" if example else None,
            "source_backend": diagnosis["backend"]}], month, segment)
    return dg.MaterializeResult(metadata={"guidance": dg.MetadataValue.md(text)})
