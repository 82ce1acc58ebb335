"""Stage 10, results: the paper's tables and figures for a month, across all its segments, and the report file."""

import dagster as dg

from crmagent_dagster.partitions import (
    BY_MONTH,
    DUCKDB_POOL,
    monthly_partitions,
    previous_month,
)
from crmagent_dagster.plots import markdown_image
from crmagent_dagster.report import report_dir, section, write_report
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import create_view, run, table_exists, transaction, write_model

TABLES = {  # in build order: table1 shows judge validity beside each segment
    "judge_validity": "Judge validity: Spearman rho (95% CI) of judge scores vs observed engagement of originals.",
    "table1": "Table 1: scores before/after and blind preference per segment and overall, with backends.",
    "table2": "Table 2: faithfulness (BERTScore-F1, chrF) per segment and overall.",
    "figure16": "Figure 16: Appendix D error types of weak originals and of rewrites.",
    "figure7": "Figure 7: plans, deliveries and groups per audience segment.",
    "figure8": "Figure 8: distribution of average engagement scores across template groups (bins of 0.25).",
    "figure9": "Figure 9: plans per product category ('None' = no product bound).",
}
ORDER = {"realized_uplift_summary": "CASE dimension WHEN 'overall' THEN 0 WHEN 'segment' THEN 1 WHEN 'path' THEN 2 "
                                   "WHEN 'error_type' THEN 3 ELSE 4 END, value",
         "judge_vs_realized": "is_overall DESC, segment, predictor", "judge_validity": "is_overall, segment", "table1": "is_overall, segment", "table2": "is_overall, segment",
         "figure16": "version, count DESC", "figure7": "plans DESC", "figure8": "score_bin", "figure9": "plans DESC",
         "table3": "position", "engagement_model": "model"}
# The report opens with last month's experiments, measured on this month's deliveries (built by uplift_results).
EXPERIMENTS = {
    "realized_uplift_summary": "Realized uplift: last month's deployed rewrites measured on this month's deliveries, "
                               "treatment minus control mean engagement score with 95% CI, overall and per segment, "
                               "path, error type and writer.",
    "judge_vs_realized": "Was the judge right: Spearman rho (95% CI) between what each judge predicted for a deployed "
                         "rewrite last month and the uplift it realized.",
}
REPORT_ONLY = {
    "table3": "Table 3: agent configurations side by side on one sample of weak templates (ContentAgent fixed).",
    "engagement_model": "Engagement predictor: held-out accuracy on unseen shops, beside a no-text baseline; "
                        "the second judge's verdict is in Table 1 (predicted_*).",
}
REPORT_ORDER = ["realized_uplift_summary", "judge_vs_realized", "table1", "table2", "table3", "judge_validity", "engagement_model", "figure16", "figure7", "figure8",
                "figure9"]
MARTS = {
    "rewrites": "One row per rewrite with every score, check and lineage field.",
    "segment_summary": "One row per month x segment: paths, scores before/after, preference, faithfulness.",
    "error_type_counts": "Appendix D error types per month x segment, originals and rewrites.",
}
UPSTREAM = [dg.AssetKey(["agents", n]) for n in ("rewrite_scores", "preference_judgments", "faithfulness_scores",
                                                  "template_audits", "original_scores")]
MONTHLY_UPSTREAM = [dg.AssetKey(["agents", "predicted_engagement"]), dg.AssetKey(["results", "engagement_model"]),
                    dg.AssetKey(["results", "table3"]), dg.AssetKey(["results", "realized_uplift_summary"]),
                    dg.AssetKey(["results", "judge_vs_realized"])]


@dg.multi_asset(
    specs=[dg.AssetSpec(["results", name], description=desc, group_name="results", kinds={"duckdb"},
                        deps=[dg.AssetDep(k, partition_mapping=BY_MONTH) for k in UPSTREAM] + MONTHLY_UPSTREAM,
                        metadata={"dagster/table_name": f"results.{name}"})
           for name, desc in TABLES.items()]
    + [dg.AssetSpec(["marts", name], description=f"View for dashboards. {desc}", group_name="results",
                    kinds={"duckdb"}, deps=[dg.AssetDep(k, partition_mapping=BY_MONTH) for k in UPSTREAM],
                    metadata={"dagster/table_name": f"marts.{name}"})
       for name, desc in MARTS.items()],
    partitions_def=monthly_partitions, pool=DUCKDB_POOL,
)
def paper_tables(context: dg.AssetExecutionContext, duckdb: CRMWarehouse):
    month = context.partition_key
    sections, metadata = [], {}
    with duckdb.get_connection() as conn, transaction(conn):  # every table of the partition, or none
        for name in TABLES:
            rows = write_model(conn, f"results.{name}", {"month": month})
            _, preview, pngs = section(conn, name, month, ORDER[name])
            sections.append((name, TABLES[name], preview, pngs))
            plot = "\n\n".join(markdown_image(png, name) for png in pngs)
            metadata[("results", name)] = {"dagster/row_count": rows, "table": dg.MetadataValue.md(preview),
                                           "plot": dg.MetadataValue.md(plot)}
        for name, description in EXPERIMENTS.items():
            sections.append(experiment_section(conn, name, description, month))
        for name, description in REPORT_ONLY.items():  # built by their own assets earlier in the run
            if table_exists(conn, f"results.{name}"):
                sections.append((name, description, *section(conn, name, month, ORDER[name])[1:]))
        for name in MARTS:  # views: always current, so (re)creating them is all a month needs
            create_view(conn, f"marts.{name}")
            rows = run(conn, f"SELECT count(*) FROM marts.{name} WHERE month = $month", {"month": month})[0][0]
            metadata[("marts", name)] = {"rows_for_month": rows}
    path = write_report(report_dir(duckdb.database), month, sorted(sections, key=lambda s: REPORT_ORDER.index(s[0])))
    context.log.info(f"report for {month}: {path}")
    for key, md in metadata.items():
        yield dg.MaterializeResult(asset_key=list(key), metadata={**md, "report": dg.MetadataValue.path(str(path))})



def experiment_section(conn, name: str, description: str, month: str) -> tuple[str, str, str, list[bytes]]:
    """A section of the report's opening; says so plainly when last month deployed nothing to measure."""
    if table_exists(conn, f"results.{name}"):
        rows, preview, pngs = section(conn, name, month, ORDER[name])
        if rows:
            return name, description, preview, pngs
    return name, description, f"No experiment deployed in {previous_month(month)} was measured in {month}.", []
