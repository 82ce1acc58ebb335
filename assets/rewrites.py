"""Stage 7, rewrites (TemplateAgent): every weak template rewritten by path 1, 2 or 3."""

import dagster as dg
from pydantic import Field

from crmagent_dagster.agents import template_agent, workflow
from crmagent_dagster.agents.guardrails import CHANNELS, DEFAULT_LIMITS, limits_for
from crmagent_dagster.agents.template_agent import GuardPolicy
from crmagent_dagster.agents.io import llm_metadata, write_rows
from crmagent_dagster.agents.kinds import MARKETING
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.partitions import DUCKDB_POOL, month_and_segment, month_segment_partitions
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import preview_markdown

REWRITES = dg.AssetKey(["agents", "template_rewrites"])


class RewriteConfig(dg.Config):
    max_llm_rewrites: int = Field(default=300, description="Cap per partition when the writer is an LLM; none offline.")
    guard_rounds: int = Field(default=2, description="Re-asks of an LLM whose rewrite breaks a guardrail.")
    rewrite_without_error: bool = Field(
        default=False, description="Rewrite weak templates the audit finds no error in (and that carry no personal "
                                   "data or passed date) too; by default they are left unchanged, with the reason.")
    channel: str = Field(default="push", description=f"Channel whose length limits apply: {', '.join(CHANNELS)}.")
    length_limits: dict[str, list[int]] = Field(
        default={k: list(v) for k, v in DEFAULT_LIMITS.items()},
        description="Max [title, body] characters per channel.")

    def policy(self) -> GuardPolicy:
        limits = {k: (v[0], v[1]) for k, v in self.length_limits.items()}
        limits_for(self.channel, limits)  # an unknown channel fails here, naming the configured ones
        return GuardPolicy(channel=self.channel, limits=limits, rounds=self.guard_rounds)


@dg.asset(key=REWRITES, deps=[dg.AssetKey(["agents", "exemplar_matches"]), dg.AssetKey(["agents", "problem_analyses"]),
                              dg.AssetKey(["agents", "segment_diagnoses"])],
          partitions_def=month_segment_partitions, group_name="rewrites", kinds={"duckdb"}, pool=DUCKDB_POOL,
          metadata={"dagster/table_name": "agents.template_rewrites"},
          check_specs=[dg.AssetCheckSpec("path_follows_exemplars", asset=REWRITES,
                                         description="Path 1 iff own strong exemplars, path 2 iff retrieved ones."),
                       dg.AssetCheckSpec("accepted_rewrites_pass_guardrails", asset=REWRITES,
                                         description="No rewrite is accepted with a failed guardrail (terms kept, "
                                                     "nothing invented, language, length)."),
                       dg.AssetCheckSpec("every_weak_template_settled", asset=REWRITES,
                                         description="Every weak template is rewritten (ok), or unchanged, rejected, "
                                                     "waiting or failed with "
                                                     "a reason; none is silently dropped.")])
def template_rewrites(context: dg.AssetExecutionContext, config: RewriteConfig, duckdb: CRMWarehouse,
                      llm: LLMResource) -> dg.MaterializeResult:
    """Rewrite each weak template: own exemplars (path 1), retrieved ones (path 2), or rule-based (path 3)."""
    month, segment = month_and_segment(context)
    p = {"month": month, "segment": segment}
    policy = config.policy()
    with duckdb.get_connection() as conn:
        ctx = workflow.Context(month, segment, conn, llm, context.log.info)
        rows = workflow.load_labelled(conn, month, segment)
        inputs = template_agent.load_rewrite_inputs(conn, month, segment)
        vocabulary = workflow.product_vocabulary(conn, month)
        out = [w.as_row() for w in template_agent.rewrite_weak(ctx, rows, inputs, cap=config.max_llm_rewrites,
                                                                vocabulary=vocabulary, guard=policy,
                                                                rewrite_all=config.rewrite_without_error)]
        n = write_rows(conn, "agents.template_rewrites", out, month, segment)
        preview = preview_markdown(conn, "SELECT path, original_title, new_title, new_body FROM agents.template_rewrites "
                                         "WHERE month = $month AND segment = $segment AND status = 'ok' "
                                         "ORDER BY path, aggregate_id LIMIT 6", p)
    weak = sum(r["performance_label"] == "weak" for r in rows)
    wrong_path = sum(1 for w in out if w["path"] != template_agent.route({}, inputs.matches.get(w["aggregate_id"], []))[0])
    accepted_bad = sum(1 for w in out if w["status"] == "ok" and not w.get("guard_passed"))
    unexplained = sum(1 for w in out if w["status"] != "ok" and not w.get("error"))
    cap = config.max_llm_rewrites if ctx.backend("template") != workflow.RULES else None
    expected = weak if cap is None else min(weak, cap)
    guard = violation_rates(out)
    by_path = {f"path_{k}": sum(w["path"] == k for w in out) for k in (1, 2, 3)}
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, **by_path, "ok": sum(w["status"] == "ok" for w in out),
                  "failed": sum(w["status"] == "failed" for w in out),
                  "rejected": sum(w["status"] == "rejected" for w in out),
                  "unchanged": sum(w["status"] == "unchanged" for w in out),
                  "waiting": sum(w["status"] == "waiting" for w in out),
                  "not_marketing": sum(w["message_kind"] not in MARKETING for w in out),
                  "replaced_by_rules": sum(bool(w.get("replaced_by_rules")) for w in out),
                  "flagged_personal_data": sum("personal_data" in (w["audit_flags"] or []) for w in out),
                  "flagged_stale_offer": sum("stale_offer" in (w["audit_flags"] or []) for w in out),
                  "guardrail_violations": dg.MetadataValue.md(guard),
                  "backend": ctx.backend("template"), "model": ctx.model("template"),
                  "preview": dg.MetadataValue.md(preview), **llm_metadata(ctx.llm_runs)},
        check_results=[dg.AssetCheckResult(check_name="path_follows_exemplars", passed=wrong_path == 0,
                                           metadata={"wrong_path": wrong_path}),
                       dg.AssetCheckResult(check_name="accepted_rewrites_pass_guardrails", passed=accepted_bad == 0,
                                           metadata={"accepted_with_violations": accepted_bad}),
                       dg.AssetCheckResult(check_name="every_weak_template_settled",
                                           passed=len(out) == expected and unexplained == 0,
                                           metadata={"weak": weak, "rows": len(out), "without_reason": unexplained})],
    )


def violation_rates(out: list[dict]) -> str:
    """First-attempt guardrail violation rate per path, writer backend and model, as markdown."""
    groups: dict[tuple, list[int]] = {}
    for w in out:
        if w.get("first_violations") is None:
            continue
        key = (w["path"], w["attempted_backend"], w["model"] if not w.get("replaced_by_rules") else "(replaced)")
        stats = groups.setdefault(key, [0, 0])
        stats[0] += 1
        stats[1] += bool(w["first_violations"])
    lines = ["| path | writer | model | rewrites | violating first attempt | rate |", "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {b} | {m} | {n} | {v} | {v / n:.1%} |" for (p, b, m), (n, v) in sorted(groups.items())]
    return "\n".join(lines)
