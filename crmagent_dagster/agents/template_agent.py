"""TemplateAgent: rewrite each weak template by path 1, 2 or 3, on the rule editor or an LLM, and hold every
rewrite to the guardrails.

Never a silent fallback. A rule edit that breaks a guardrail, or changes nothing, is `rejected` with the
reasons. An LLM rewrite that breaks one is asked again with the violations (`GuardPolicy.rounds`); if it still
fails, the rule editor's edit may stand in, but only when that edit passes every check itself, and the row says
so (`replaced_by_rules`, `fallback_reason`, writer `rules`). Otherwise the row is `rejected` with the reasons
and the failed text, and the original stands. `ok` means the delivered rewrite passed every check.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from crmagent_dagster.agents import guardrails
from crmagent_dagster.agents.auditor import AuditResult, audit
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.agents.guardrails import DEFAULT_LIMITS, Check, limits_for
from crmagent_dagster.agents.language import LANGUAGE_NAMES
from crmagent_dagster.agents.prompts import Merchant, render
from crmagent_dagster.agents.rewriter import EditGoal, RuleRewrite, Style, rewrite
from crmagent_dagster.agents.workflow import RULE_MODEL, RULES, Context, audit_templates, message
from crmagent_dagster.llm import LLMRequest
from crmagent_dagster.llm.replies import Rewrite
from crmagent_dagster.segments import SEGMENT_BY_KEY
from crmagent_dagster.sql import fetch_dicts

TRAIT_SHARE = 0.5  # a trait most strong templates of the segment share is one to give the weak ones


@dataclass(frozen=True)
class GuardPolicy:
    """The channel whose limits apply (a row's own `channel` wins), the limits, and LLM re-asks."""

    channel: str = "push"
    limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    rounds: int = 2


@dataclass(frozen=True)
class RewriteInputs:
    """What TemplateAgent reads besides the templates: exemplars, problem reasons, the segment's diagnosis."""

    matches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    diagnosis: str = ""
    guidance: tuple[str, ...] = ()
    winning_traits: frozenset[str] = frozenset()


@dataclass
class TemplateRewrite:
    """One row of agents.template_rewrites."""

    month: str
    segment: str
    aggregate_id: str
    template_id: str
    shop_id: str
    path: int
    exemplar_template_ids: list[str]
    exemplar_aggregate_ids: list[str]
    exemplar_similarity: list[float | None]
    language: str
    channel: str
    original_title: str | None
    original_body: str | None
    original_error_type: str | None
    audit_flags: list[str]
    attempted_backend: str
    backend: str
    model: str
    new_title: str | None = None
    new_body: str | None = None
    changes: list[str] = field(default_factory=list)
    unable: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    guard_checks: str | None = None
    guard_passed: bool | None = None
    guard_rounds: int = 0
    first_violations: list[str] | None = None
    replaced_by_rules: bool = False
    fallback_reason: str | None = None
    prompt_version: str | None = None
    status: str = "ok"
    error: str | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def load_rewrite_inputs(conn: duckdb.DuckDBPyConnection, month: str, segment: str) -> RewriteInputs:
    p = {"month": month, "segment": segment}
    matches: dict[str, list[dict[str, Any]]] = {}
    for m in fetch_dicts(conn, "SELECT * FROM agents.exemplar_matches WHERE month = $month AND segment = $segment "
                               "ORDER BY aggregate_id, route, rank", p):
        matches.setdefault(m["aggregate_id"], []).append(m)
    problems = dict(conn.execute("SELECT aggregate_id, reason FROM agents.problem_analyses "
                                 "WHERE month = $month AND segment = $segment", p).fetchall())
    return RewriteInputs(matches=matches, problems=problems, **segment_diagnosis(conn, month, segment))


def segment_diagnosis(conn: duckdb.DuckDBPyConnection, month: str, segment: str) -> dict[str, Any]:
    """The ContentAgent's analysis, its patterns as guidance, and the traits most strong templates share."""
    try:
        found = fetch_dicts(conn, "SELECT analysis, success_patterns, failure_patterns, feature_shares "
                                  "FROM agents.segment_diagnoses WHERE month = $month AND segment = $segment",
                            {"month": month, "segment": segment})
    except duckdb.CatalogException:
        return {}
    if not found:
        return {}
    d = found[0]
    steps = (json.loads(d["success_patterns"] or "null") or []) + (json.loads(d["failure_patterns"] or "null") or [])
    shares = json.loads(d["feature_shares"] or "null") or {}
    traits = frozenset(t for t, v in shares.items() if not t.startswith("error:") and t != "length"
                       and v.get("strong", 0) >= TRAIT_SHARE and v.get("strong", 0) > v.get("weak", 0))
    return {"diagnosis": d["analysis"] or "", "guidance": tuple(steps), "winning_traits": traits}


def audit_text(segment: str, facts: OfferFacts, title: str, body: str) -> AuditResult:
    """The rule auditor's unforced verdict on a text of this template ("none" when nothing stands out)."""
    return audit(segment, title, body, facts.lang, facts.voucher is not None)


def route(weak: dict[str, Any], matches: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Path 1: the merchant's own strong templates; else path 2: retrieved exemplars; else path 3."""
    own = [m for m in matches if m["route"] == "own"]
    if own:
        return 1, own
    retrieved = [m for m in matches if m["route"] == "retrieved"]
    return (2, retrieved) if retrieved else (3, [])


def facts_block(facts: OfferFacts) -> str:
    """What the rewrite may state and must keep, for the LLM: structured facts and the original's own terms."""
    lines = ["Facts of this campaign (state only these and the original's own terms; never invent a discount, code, "
             "price, link, phone number or deadline):", *facts.facts_lines()]
    kept = list(dict.fromkeys(f"{t.text} ({t.kind})" for t in facts.reading.kept_terms))
    lines.append("Terms the original states, which the rewrite must keep: " + ("; ".join(kept) if kept else "none"))
    stale = list(dict.fromkeys(t.text for t in facts.reading.stale))
    if stale:
        lines.append(f"Deadlines that have passed by {facts.as_of}: {'; '.join(stale)}. Leave them out and do not "
                     "invent a new date; a person will set one.")
    personal = list(dict.fromkeys(p.text for p in facts.reading.personal))
    if personal:
        lines.append(f"Personal data the template must not carry (it goes to a whole segment): {'; '.join(personal)}. "
                     "Leave it out and add none.")
    return "\n".join(lines)


def rewrite_weak(ctx: Context, rows: list[dict[str, Any]], inputs: RewriteInputs, *, cap: int | None,
                 vocabulary: frozenset[str] = frozenset(), guard: GuardPolicy = GuardPolicy()) -> list[TemplateRewrite]:
    """Rewrite every weak template (the `cap` lowest-scoring ones when the writer is an LLM), then hold each
    rewrite to the guardrails."""
    by_id = {r["aggregate_id"]: r for r in rows}
    weak = [r for r in rows if r["performance_label"] == "weak"]
    backend = ctx.backend("template")
    if backend != RULES and cap is not None and len(weak) > cap:
        ctx.log(f"{ctx.segment}: rewriting the {cap} lowest-scoring of {len(weak)} weak templates (llm cap)")
        weak = sorted(weak, key=lambda r: r["mean_score"])[:cap]
    audits = {a["aggregate_id"]: a for a in audit_templates(ctx, weak, [])}
    writer = _Writer(ctx, inputs, vocabulary, guard)
    out = []
    for r in weak:
        path, exemplars = route(r, inputs.matches.get(r["aggregate_id"], []))
        ex_rows = [by_id[m["exemplar_aggregate_id"]] for m in exemplars if m["exemplar_aggregate_id"] in by_id]
        facts = ctx.facts(r)
        audit = audits[r["aggregate_id"]]
        out.append(TemplateRewrite(
            month=ctx.month, segment=ctx.segment, aggregate_id=r["aggregate_id"], template_id=r["template_id"],
            shop_id=r["shop_id"], path=path, exemplar_template_ids=[e["template_id"] for e in ex_rows],
            exemplar_aggregate_ids=[e["aggregate_id"] for e in ex_rows],
            exemplar_similarity=[m.get("similarity") for m in exemplars][: len(ex_rows)], language=facts.lang,
            channel=r.get("channel") or guard.channel, original_title=r.get("title"), original_body=r.get("body"),
            original_error_type=audit["error_type"], audit_flags=audit["flags"], attempted_backend=backend,
            backend=backend, model=ctx.model("template")))
        if audit["status"] != "ok":  # the request would lack the audit: fail this item, a re-run retries it
            out[-1].status, out[-1].error = "failed", f"the audit of the original failed: {audit['error']}"
            continue
        writer.add(out[-1], r, facts, audit, ex_rows)
    writer.finish()
    return out


class _Writer:
    """Writes and guards the rewrites of one segment: rule edits at once, LLM requests in batches."""

    def __init__(self, ctx: Context, inputs: RewriteInputs, vocabulary: frozenset[str], guard: GuardPolicy) -> None:
        self.ctx, self.inputs, self.vocabulary, self.guard = ctx, inputs, vocabulary, guard
        self.pending: dict[str, tuple[TemplateRewrite, OfferFacts, LLMRequest, RuleRewrite]] = {}

    def checks(self, w: TemplateRewrite, facts: OfferFacts, title: str, body: str) -> list[Check]:
        return guardrails.check_rewrite(title, body, facts, self.vocabulary, w.channel, self.guard.limits)

    def rule_edit(self, w: TemplateRewrite, facts: OfferFacts, audit: dict[str, Any],
                  ex_rows: list[dict[str, Any]]) -> RuleRewrite:
        style = Style.of(ex_rows[0]["title"] or "", ex_rows[0]["body"] or "", ex_rows[0].get("language")) if ex_rows else None
        goal = EditGoal(error_type=audit["error_type"], winning_traits=self.inputs.winning_traits, channel=w.channel,
                        limits=self.guard.limits)
        return rewrite(facts, style, goal)

    def add(self, w: TemplateRewrite, row: dict[str, Any], facts: OfferFacts, audit: dict[str, Any],
            ex_rows: list[dict[str, Any]]) -> None:
        edit = self.rule_edit(w, facts, audit, ex_rows)
        if w.backend == RULES:
            self.settle_rules(w, facts, edit)
            return
        request = self.request(w, row, facts, audit, ex_rows)
        w.prompt_version = request.prompt_version
        self.pending[w.aggregate_id] = (w, facts, request, edit)

    def settle_rules(self, w: TemplateRewrite, facts: OfferFacts, edit: RuleRewrite) -> None:
        w.new_title, w.new_body = edit.title, edit.body
        w.changes, w.unable, w.needs = edit.changes, edit.unable, edit.needs
        checks = self.checks(w, facts, edit.title, edit.body)
        w.first_violations = [c.name for c in checks if not c.passed]
        self.record(w, checks)
        if not guardrails.passed(checks):
            w.status, w.error = "rejected", f"guardrails: {guardrails.feedback(checks)}"
        elif (edit.title, edit.body) == (facts.title, facts.body):
            w.status = "rejected"
            unforced = audit_text(self.ctx.segment, facts, facts.title, facts.body)
            w.error = ("unchanged: no Appendix D error stands out (the sheet forces one label per weak template); "
                       "the original stands" if unforced.error_type == "none"
                       else "unchanged: " + ("; ".join(edit.unable) or "no edit was possible"))

    def record(self, w: TemplateRewrite, checks: list[Check]) -> None:
        w.guard_checks = json.dumps(guardrails.as_records(checks), ensure_ascii=False)
        w.guard_passed = guardrails.passed(checks)

    def request(self, w: TemplateRewrite, row: dict[str, Any], facts: OfferFacts, audit: dict[str, Any],
                ex_rows: list[dict[str, Any]]) -> LLMRequest:
        segment = SEGMENT_BY_KEY[self.ctx.segment]
        max_title, max_body = limits_for(w.channel, self.guard.limits)
        common = dict(audience=segment.label, relationship=segment.relationship,
                      error_type=(audit["error_type"] or "none").replace("_", " "),
                      audit_feedback=audit["feedback"] or "", guidance=" ".join(self.inputs.guidance) or "none",
                      language=LANGUAGE_NAMES.get(facts.lang, facts.lang), channel=w.channel, title_limit=max_title,
                      body_limit=max_body, facts=facts_block(facts))
        if w.path == 3:
            p = render("template_rule_based", original=Merchant(message(row)), **common)
        else:
            p = render("template_exemplar", poor_template=Merchant(message(row)),
                       poor_reason=self.inputs.problems.get(w.aggregate_id) or "Under-performed its segment.",
                       good_templates=Merchant("\n".join(f"- {message(e)}" for e in ex_rows)),
                       good_reason=self.inputs.diagnosis or "none", **common)
        return LLMRequest(w.aggregate_id, "template", p.messages, Rewrite, p.version)

    def finish(self) -> None:
        if not self.pending:
            return
        answers = self.ctx.ask("template_rewrites", [req for _, _, req, _ in self.pending.values()])
        current: dict[str, list[Check]] = {}
        for agg, (w, facts, _, _) in self.pending.items():
            if self.take(w, answers[agg]):
                current[agg] = self.checks(w, facts, w.new_title or "", w.new_body or "")
                w.first_violations = [c.name for c in current[agg] if not c.passed]
        for round_ in range(1, self.guard.rounds + 1):
            failing = [agg for agg, cs in current.items() if not guardrails.passed(cs)]
            if not failing:
                break
            retry = [self.ask_again(self.pending[agg][0], self.pending[agg][2], current[agg]) for agg in failing]
            answers = self.ctx.ask(f"template_rewrites.guard{round_}", retry)
            for agg in failing:
                w, facts, _, _ = self.pending[agg]
                w.guard_rounds = round_
                if self.take(w, answers[agg]):
                    current[agg] = self.checks(w, facts, w.new_title or "", w.new_body or "")
        for agg, cs in current.items():
            w, facts, _, edit = self.pending[agg]
            if guardrails.passed(cs):
                self.record(w, cs)
            else:
                self.fall_back(w, facts, edit, cs)

    @staticmethod
    def take(w: TemplateRewrite, result) -> bool:
        parsed = result.parsed or {}
        w.status, w.error = result.status, result.error
        if result.ok:
            w.new_title, w.new_body = parsed.get("title"), parsed.get("body")
        return result.ok

    @staticmethod
    def ask_again(w: TemplateRewrite, first: LLMRequest, checks: list[Check]) -> LLMRequest:
        reply = json.dumps({"title": w.new_title, "body": w.new_body}, ensure_ascii=False)
        messages = first.messages + ({"role": "assistant", "content": reply},
                                     {"role": "user", "content": "That rewrite breaks these rules: "
                                      f"{guardrails.feedback(checks)}. Rewrite it again: keep every term the original "
                                      "states, add none, write in the original's language and stay within the "
                                      "length limits."})
        return LLMRequest(w.aggregate_id, "template", messages, Rewrite, first.prompt_version)

    def fall_back(self, w: TemplateRewrite, facts: OfferFacts, edit: RuleRewrite, llm_checks: list[Check]) -> None:
        """The LLM's rewrite still breaks a guardrail: the rule edit stands in only if it passes every check and
        changes something; otherwise the row is rejected with the LLM's text and both sets of reasons."""
        why = guardrails.feedback(llm_checks)
        rule_checks = self.checks(w, facts, edit.title, edit.body)
        changed = (edit.title, edit.body) != (facts.title, facts.body)
        if guardrails.passed(rule_checks) and changed:
            w.new_title, w.new_body = edit.title, edit.body
            w.changes, w.unable, w.needs = edit.changes, edit.unable, edit.needs
            w.backend, w.model, w.replaced_by_rules = RULES, RULE_MODEL, True
            w.fallback_reason = f"the LLM rewrite broke, after {w.guard_rounds} re-ask(s): {why}"
            self.record(w, rule_checks)
            return
        self.record(w, llm_checks)
        rule_why = guardrails.feedback(rule_checks) if changed else "it changes nothing"
        w.status = "rejected"
        w.error = f"guardrails: {why}; the rule edit cannot stand in: {rule_why}"
