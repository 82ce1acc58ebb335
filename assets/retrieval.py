"""Stage 5, retrieval: embed template metadata, index each segment's strong templates, match exemplars."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.io import index_path, write_rows
from crmagent_dagster.agents.retrieval import DIMENSION, read_index
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import preview_markdown, run, table_exists

INDEX = dg.AssetKey(["agents", "strong_template_index"])
MATCHES = dg.AssetKey(["agents", "exemplar_matches"])
LABELLED = dg.AssetKey(["core", "labelled_templates"])


class RetrievalConfig(dg.Config):
    top_k: int = Field(default=3, description="Exemplars per weak template.")
    min_similarity: float = Field(default=0.6, description="Cosine similarity below which a match is dropped.")
    prefer_realized_uplift: bool = Field(
        default=False, description="Rank first the retrieved templates that were exemplars of rewrites whose "
                                   "experiments realized uplift (agents.realized_uplift of this month, measured by "
                                   "experiments_job before this job). Each match records the ranking used.")


@dg.asset(key=INDEX, deps=[LABELLED], partitions_def=month_segment_partitions, group_name="retrieval",
          kinds={"faiss", "duckdb"}, pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.index_members"},
          check_specs=[dg.AssetCheckSpec("index_matches_members", asset=INDEX,
                                         description="The Faiss file holds exactly the vectors index_members lists.")])
def strong_template_index(context: dg.AssetExecutionContext, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """A Faiss index (cosine) over the segment's strong templates' metadata embeddings, with its id mapping."""
    month, segment = month_and_segment(context)
    path = index_path(duckdb.database, month, segment)
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, log=context.log.info)
        members, counts = workflow.build_segment_index(ctx, workflow.load_labelled(conn, month, segment), path)
        write_rows(conn, "agents.index_members", members, month, segment)
    stored = read_index(path).ntotal
    return dg.MaterializeResult(
        metadata={"vector_count": counts["vectors"], "dimension": DIMENSION, "file": dg.MetadataValue.path(str(path)),
                  "metadata_strings_embedded": counts["embedded"], "metadata_strings_reused": counts["reused"],
                  "dagster/row_count": len(members)},
        check_results=[dg.AssetCheckResult(check_name="index_matches_members", passed=stored == len(members),
                                           metadata={"vectors": stored, "members": len(members)})],
    )


@dg.asset(key=MATCHES, deps=[INDEX, LABELLED], partitions_def=month_segment_partitions, group_name="retrieval",
          kinds={"duckdb"}, pool=DUCKDB_POOL, metadata={"dagster/table_name": "agents.exemplar_matches"},
          check_specs=[
              dg.AssetCheckSpec("retrieved_from_other_merchants", asset=MATCHES,
                                description="Retrieval never returns the weak template's own merchant."),
              dg.AssetCheckSpec("exemplars_are_strong_in_segment", asset=MATCHES,
                                description="Every exemplar is a strong template of the same month and segment."),
          ])
def exemplar_matches(context: dg.AssetExecutionContext, config: RetrievalConfig, duckdb: CRMWarehouse) -> dg.MaterializeResult:
    """For each weak template: its merchant's own strong templates (path 1), else the top-k retrieved (path 2)."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, log=context.log.info)
        rows = workflow.load_labelled(conn, month, segment)
        proven = proven_exemplars(conn, month, segment) if config.prefer_realized_uplift else None
        matches = workflow.match_exemplars(ctx, rows, index_path(duckdb.database, month, segment), config.top_k,
                                           config.min_similarity, proven)
        n = write_rows(conn, "agents.exemplar_matches", matches, month, segment)
        same_shop = run(conn, "SELECT count(*) FROM agents.exemplar_matches WHERE month = $month AND segment = $segment "
                              "AND route = 'retrieved' AND exemplar_shop_id = shop_id", p)[0][0]
        foreign = run(conn,
            "SELECT count(*) FROM agents.exemplar_matches m LEFT JOIN core.labelled_templates l ON l.month = m.month "
            "AND l.segment = m.segment AND l.aggregate_id = m.exemplar_aggregate_id AND l.performance_label = 'strong' "
            "WHERE m.month = $month AND m.segment = $segment AND l.aggregate_id IS NULL", p)[0][0]
        routes = dict(conn.execute("SELECT route, count(DISTINCT aggregate_id) FROM agents.exemplar_matches "
                                   "WHERE month = $month AND segment = $segment GROUP BY 1", p).fetchall())
        preview = preview_markdown(conn, "SELECT route, rank, round(similarity, 3) AS similarity, aggregate_id, "
                                         "exemplar_template_id FROM agents.exemplar_matches WHERE month = $month AND "
                                         "segment = $segment ORDER BY route, similarity DESC NULLS LAST LIMIT 8", p)
    weak = sum(r["performance_label"] == "weak" for r in rows)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "weak_templates": weak, "with_own_exemplars": routes.get("own", 0),
                  "with_retrieved_exemplars": routes.get("retrieved", 0),
                  "ranking": "realized_uplift_first" if proven is not None else "similarity",
                  "proven_exemplars": len(proven or ()),
                  "without_exemplars": weak - routes.get("own", 0) - routes.get("retrieved", 0),
                  "preview": dg.MetadataValue.md(preview)},
        check_results=[
            dg.AssetCheckResult(check_name="retrieved_from_other_merchants", passed=same_shop == 0,
                                metadata={"same_merchant": same_shop}),
            dg.AssetCheckResult(check_name="exemplars_are_strong_in_segment", passed=foreign == 0,
                                metadata={"not_strong_in_segment": foreign}),
        ],
    )


def proven_exemplars(conn, month: str, segment: str) -> frozenset[str]:
    """Templates that were exemplars of last month's rewrites whose experiments realized uplift this month.
    Not a declared dependency: deployments -> realized uplift -> retrieval would close a cycle in the asset graph."""
    if not (table_exists(conn, "agents.realized_uplift") and table_exists(conn, "agents.template_rewrites")):
        return frozenset()
    return frozenset(t for (t,) in conn.execute("""
        SELECT DISTINCT unnest(w.exemplar_template_ids) FROM agents.realized_uplift u
        JOIN agents.template_rewrites w ON w.month = u.deploy_month AND w.segment = u.segment
             AND w.aggregate_id = u.aggregate_id
        WHERE u.month = $month AND u.segment = $segment AND u.label = 'uplift' AND u.deployed_as = 'rewrite'""",
                                                {"month": month, "segment": segment}).fetchall())
