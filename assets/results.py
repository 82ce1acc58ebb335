"""Stage 10, results: the paper's Table 1, Table 2 and Figure 16 for a month, across all its segments."""

import dagster as dg

from crmagent_dagster.partitions import BY_MONTH, DUCKDB_POOL, monthly_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import create_view, preview_markdown, write_model

TABLES = {  # in build order: table1 shows judge validity beside each segment
    "judge_validity": "Judge validity: Spearman rho (95% CI) of judge scores vs observed engagement of originals.",
    "table1": "Table 1: scores before/after and blind preference per segment and overall, with backends.",
    "table2": "Table 2: faithfulness (BERTScore-F1, chrF) per segment and overall.",
    "figure16": "Figure 16: Appendix D error types of weak originals and of rewrites.",
    "figure7": "Figure 7: plans, deliveries and groups per audience segment.",
    "figure8": "Figure 8: distribution of average engagement scores across template groups (bins of 0.25).",
    "figure9": "Figure 9: plans per product category ('None' = no product bound).",
}
ORDER = {"judge_validity": "is_overall, segment", "table1": "is_overall, segment", "table2": "is_overall, segment", "figure16": "version, count DESC",
         "figure7": "plans DESC", "figure8": "score_bin", "figure9": "plans DESC"}
MARTS = {
    "rewrites": "One row per rewrite with every score, check and lineage field.",
    "segment_summary": "One row per month x segment: paths, scores before/after, preference, faithfulness.",
    "error_type_counts": "Appendix D error types per month x segment, originals and rewrites.",
}
UPSTREAM = [dg.AssetKey(["agents", n]) for n in ("rewrite_scores", "preference_judgments", "faithfulness_scores",
                                                  "template_audits", "original_scores")]
MONTHLY_UPSTREAM = [dg.AssetKey(["agents", "predicted_engagement"]), dg.AssetKey(["results", "engagement_model"]),
                    dg.AssetKey(["results", "table3"])]


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
    with duckdb.get_connection() as conn:
        for name in TABLES:
            rows = write_model(conn, f"results.{name}", {"month": month})
            order = ORDER[name]
            preview = preview_markdown(conn, f"SELECT * EXCLUDE (month) FROM results.{name} WHERE month = $month "
                                             f"ORDER BY {order}", {"month": month})
            yield dg.MaterializeResult(asset_key=["results", name],
                                       metadata={"dagster/row_count": rows, "table": dg.MetadataValue.md(preview)})
        for name in MARTS:  # views: always current, so (re)creating them is all a month needs
            create_view(conn, f"marts.{name}")
            rows = conn.execute(f"SELECT count(*) FROM marts.{name} WHERE month = $month", {"month": month}).fetchone()[0]
            yield dg.MaterializeResult(asset_key=["marts", name], metadata={"rows_for_month": rows})
