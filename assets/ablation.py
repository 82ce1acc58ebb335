"""Stage 10, results: Table 3, the per-agent configuration ablation on one fixed sample of weak templates."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.agents import ablation, workflow
from crmagent_dagster.agents.io import llm_metadata
from crmagent_dagster.agents.tables import frame
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import BY_MONTH, DUCKDB_POOL, monthly_partitions
from crmagent_dagster.plots import markdown_image
from crmagent_dagster.report import section
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import transaction, write_frame, write_model

JUDGMENTS = dg.AssetKey(["agents", "ablation_judgments"])
TABLE3 = dg.AssetKey(["results", "table3"])
UPSTREAM = [dg.AssetDep(dg.AssetKey(["agents", n]), partition_mapping=BY_MONTH)
            for n in ("exemplar_matches", "problem_analyses", "segment_diagnoses")]


class AblationConfig(dg.Config):
    sample_size: int = Field(default=100, description="Weak templates drawn (by hash, so always the same) "
                                                      "from the whole month; every configuration gets the same ones.")
    seed: int = Field(default=0, description="Changes which templates the hash draws.")
    configurations: list[ablation.AblationSetting] = Field(
        default=[], description="Rows of Table 3; empty = the defaults (offline: rules with and without exemplars; "
                                "with an endpoint: baseline, writer + CoT, judge + CoT, rule-engine writer).")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(JUDGMENTS, deps=UPSTREAM, group_name="results", kinds={"duckdb"},
                     description="Every ablation configuration's rewrite, scores and both-order verdict per sampled "
                                 "weak template.", metadata={"dagster/table_name": "agents.ablation_judgments"}),
        dg.AssetSpec(TABLE3, deps=[JUDGMENTS], group_name="results", kinds={"duckdb"},
                     description="Table 3: agent configurations side by side on the same sample of weak templates.",
                     metadata={"dagster/table_name": "results.table3"}),
    ],
    check_specs=[dg.AssetCheckSpec("same_sample_for_every_configuration", asset=TABLE3,
                                   description="Each configuration was run on exactly the same weak templates.")],
    partitions_def=monthly_partitions, pool=DUCKDB_POOL,
)
def ablation_study(context: dg.AssetExecutionContext, config: AblationConfig, duckdb: CRMWarehouse, llm: LLMResource):
    month = context.partition_key
    settings = config.configurations or ablation.default_settings(llm)
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"ablation configuration names must be unique, got {names}")
    runs: list = []
    with duckdb.get_connection() as conn:
        sample = ablation.sample_weak(conn, month, config.sample_size, config.seed)
        vocabulary = workflow.product_vocabulary(conn, month)
        out = []
        for position, setting in enumerate(settings, start=1):
            rows, setting_runs = ablation.run_setting(conn, month, position, setting, llm, sample, vocabulary,
                                                      context.log.info)
            out += rows
            runs += setting_runs
        with transaction(conn):  # LLM answers are cached as they come; the partition's tables commit together
            n = write_frame(conn, "agents.ablation_judgments", frame("agents.ablation_judgments", out), {"month": month})
            write_model(conn, "results.table3", {"month": month})
        table, preview, pngs = section(conn, "table3", month, "position")
    samples = {name: sorted(r["aggregate_id"] for r in out if r["configuration"] == name) for name in names}
    differing = [name for name in names if samples[name] != samples[names[0]]]
    yield dg.MaterializeResult(asset_key=JUDGMENTS, metadata={
        "dagster/row_count": n, "sampled_templates": sum(len(v) for v in sample.values()),
        "configurations": len(settings), "failed": sum(r["status"] != "ok" for r in out), **llm_metadata(runs)})
    yield dg.MaterializeResult(asset_key=TABLE3, metadata={
        "dagster/row_count": len(table), "table": dg.MetadataValue.md(preview),
        "plot": dg.MetadataValue.md("\n\n".join(markdown_image(png, "Table 3") for png in pngs))},
        check_results=[dg.AssetCheckResult(check_name="same_sample_for_every_configuration", passed=not differing,
                                           metadata={"differing": ", ".join(differing) or "none"})])

