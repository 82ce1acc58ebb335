"""Table 3: run several agent configurations on the same sample of weak templates, side by side.

As in the paper, ContentAgent is held fixed (the month's stored diagnoses and problem analyses), and
the configurations vary TemplateAgent and EvaluateAgent: backend, model, chain of thought. One more
switch, `zero_shot`, takes the exemplars away from TemplateAgent (every rewrite by path 3), which
ablates retrieval and is the one comparison the offline rule engine can make on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from collections.abc import Callable
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from crmagent_dagster.agents import template_agent, workflow
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.llm.resource import AgentModelConfig

VARIED = ("template", "evaluate")


class AblationSetting(dg.Config):
    name: str = Field(description="Row label in Table 3, unique within the run.")
    template: AgentModelConfig | None = Field(default=None, description="TemplateAgent; empty = the resource's.")
    evaluate: AgentModelConfig | None = Field(default=None, description="EvaluateAgent; empty = the resource's.")
    zero_shot: bool = Field(default=False, description="No exemplars: TemplateAgent rewrites every template by path 3.")


def default_settings(llm: LLMResource) -> list[AblationSetting]:
    """With an endpoint: the paper's CoT rows and the rule engine as writer. Offline: exemplars vs zero-shot."""
    rules = AgentModelConfig(backend="rules")
    if llm.backend_for("template") == workflow.RULES and llm.backend_for("evaluate") == workflow.RULES:
        return [AblationSetting(name="rules"), AblationSetting(name="rules, zero-shot writer", zero_shot=True)]

    def with_cot(agent: str) -> AgentModelConfig:
        return getattr(llm, agent).model_copy(update={"chain_of_thought": True})

    return [AblationSetting(name="baseline"),
            AblationSetting(name="writer + CoT", template=with_cot("template")),
            AblationSetting(name="judge + CoT", evaluate=with_cot("evaluate")),
            AblationSetting(name="rule-engine writer", template=rules)]


def configured(llm: LLMResource, setting: AblationSetting) -> LLMResource:
    """The resource with this setting's agents swapped in; the endpoint, cache and limits stay."""
    return llm.model_copy(update={a: getattr(setting, a) for a in VARIED if getattr(setting, a) is not None})


def label(llm: LLMResource, agent: str) -> str:
    if llm.backend_for(agent) == workflow.RULES:
        return workflow.RULE_MODEL
    s = llm.agent_settings(agent)
    return s.model + (" + CoT" if s.chain_of_thought else "")


def sample_weak(conn: duckdb.DuckDBPyConnection, month: str, size: int, seed: int) -> dict[str, list[str]]:
    """A fixed pseudo-random sample of the month's weak groups (by hash, so it is the same on every run),
    as segment -> aggregate ids."""
    weak = conn.execute("SELECT segment, aggregate_id FROM core.quartile_labels "
                        "WHERE month = $month AND performance_label = 'weak'", {"month": month}).fetchall()
    ranked = sorted(weak, key=lambda r: hashlib.md5(f"{seed}:{r[1]}".encode()).hexdigest())[:size]
    out: dict[str, list[str]] = {}
    for segment, agg in sorted(ranked):
        out.setdefault(segment, []).append(agg)
    return out


def run_setting(conn: duckdb.DuckDBPyConnection, month: str, position: int, setting: AblationSetting,
                llm: LLMResource, sample: dict[str, list[str]], vocabulary: frozenset[str],
                log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], list]:
    """Rewrite and judge the sample under one setting. Returns (rows, LLM runs for metadata)."""
    agents = configured(llm, setting)
    runs: list = []
    out: list[dict[str, Any]] = []
    for segment, ids in sample.items():
        rows = workflow.load_labelled(conn, month, segment)
        chosen = set(ids)
        subset = [r for r in rows if r["performance_label"] == "strong" or r["aggregate_id"] in chosen]
        inputs = template_agent.load_rewrite_inputs(conn, month, segment)
        if setting.zero_shot:
            inputs = replace(inputs, matches={})
        ctx = workflow.Context(month, segment, conn, agents, log, runs, scope_prefix=f"ablation:{setting.name}:")
        rewrites = [w.as_row() for w in template_agent.rewrite_weak(ctx, subset, inputs, cap=None,
                                                                     vocabulary=vocabulary)]
        scores, prefs = workflow.evaluate(ctx, rewrites, {r["aggregate_id"]: r for r in subset})
        by_score = {s["aggregate_id"]: s for s in scores}
        by_pref = {p["aggregate_id"]: p for p in prefs}
        for w in rewrites:
            s, p = by_score.get(w["aggregate_id"], {}), by_pref.get(w["aggregate_id"], {})
            failed = [x for x in (w, s, p) if x and x.get("status") != "ok"]
            out.append({
                "month": month, "configuration": setting.name, "position": position, "segment": segment,
                "aggregate_id": w["aggregate_id"], "template_id": w["template_id"],
                "content_setting": "fixed (stored diagnoses)", "template_setting": label(agents, "template"),
                "evaluate_setting": label(agents, "evaluate"), "zero_shot": setting.zero_shot, "path": w["path"],
                "new_title": w.get("new_title"), "new_body": w.get("new_body"), "writer_backend": w["backend"],
                "original_audience": s.get("original_audience"), "rewrite_audience": s.get("rewrite_audience"),
                "original_marketing": s.get("original_marketing"), "rewrite_marketing": s.get("rewrite_marketing"),
                "verdict": p.get("verdict"), "position_consistent": p.get("position_consistent"),
                "status": failed[0]["status"] if failed else "ok", "error": failed[0].get("error") if failed else None,
            })
    return out, runs
