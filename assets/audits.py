"""Stage 9, audits (Appendix D): one error type for every weak original and every rewrite."""

import dagster as dg

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.io import llm_metadata, write_rows
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts, preview_markdown, run

AUDITS = dg.AssetKey(["agents", "template_audits"])


@dg.asset(key=AUDITS, deps=[dg.AssetKey(["agents", "template_rewrites"])], partitions_def=month_segment_partitions,
          group_name="audits", kinds={"duckdb"}, pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.template_audits"},
          check_specs=[dg.AssetCheckSpec("one_label_per_item", asset=AUDITS,
                                         description="Exactly one audit per weak original and per rewrite.")])
def template_audits(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, llm: LLMResource) -> dg.MaterializeResult:
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, llm, context.log.info)
        rows = workflow.load_labelled(conn, month, segment)
        rewrites = fetch_dicts(conn, "SELECT * FROM agents.template_rewrites WHERE month = $month AND segment = $segment", p)
        out = workflow.audit_templates(ctx, rows, rewrites)
        n = write_rows(conn, "agents.template_audits", out, month, segment)
        dup = run(conn, "SELECT count(*) - count(DISTINCT (aggregate_id, version)) FROM agents.template_audits "
                        "WHERE month = $month AND segment = $segment", p)[0][0]
        shares = preview_markdown(conn, "SELECT version, error_type, count(*) AS n FROM agents.template_audits "
                                        "WHERE month = $month AND segment = $segment GROUP BY ALL ORDER BY version, n DESC", p)
    expected = sum(r["performance_label"] == "weak" for r in rows) + sum(w["status"] == "ok" for w in rewrites)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "backend": ctx.backend("audit"), "model": ctx.model("audit"),
                  "error_types": dg.MetadataValue.md(shares), "failed": sum(a["status"] != "ok" for a in out),
                  **llm_metadata(ctx.llm_runs)},
        check_results=[dg.AssetCheckResult(check_name="one_label_per_item", passed=dup == 0 and n == expected,
                                           metadata={"rows": n, "expected": expected, "duplicates": dup})],
    )
