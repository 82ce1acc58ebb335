"""The four agents and the audit as plain functions over one month x segment, on either backend.

Each function returns rows (dicts) with their lineage: template and exemplar ids, path, backend,
model and prompt version. `backend` is "rules" (the hybrid rule engine) or "llm" (through
LLMResource); a failed LLM item becomes a row with status "failed" and its error, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np

from crmagent_dagster.agents import content, judge
from crmagent_dagster.agents.auditor import audit_features, audit_message, flag
from crmagent_dagster.agents.facts import OfferFacts, month_start
from crmagent_dagster.agents.prompts import Merchant, render
from crmagent_dagster.agents.text_features import features
from crmagent_dagster.llm import LLMRequest, LLMResource
from crmagent_dagster.llm.core import combined_status
from crmagent_dagster.llm.replies import (
    Audit,
    ContentDiagnosis,
    Preference,
    ProblemAnalysis,
    Scores,
    SingleScores,
)
from crmagent_dagster.segments import SEGMENT_BY_KEY
from crmagent_dagster.sql import fetch_dicts

RULES = "rules"
RULE_MODEL = "hybrid-rule-engine-v1"
MAX_PROMPT_EXAMPLES = 10  # templates per side in the Fig. 2 comparison prompt


@dataclass
class Context:
    month: str
    segment: str
    conn: duckdb.DuckDBPyConnection
    llm: LLMResource | None = None
    log: Callable[[str], None] = print
    llm_runs: list = None  # LLMRun objects, for metadata
    scope_prefix: str = ""  # tells llm.calls rows of an ablation configuration from the pipeline's own
    send_date: date | None = None  # ad hoc runs: deadlines before it are stale (a month partition: its 1st)
    channel: str = "push"  # the channel of rows that do not name one

    def __post_init__(self) -> None:
        self.llm_runs = [] if self.llm_runs is None else self.llm_runs
        self._facts: dict[tuple, OfferFacts] = {}

    @property
    def as_of(self) -> date:
        if self.send_date is not None:
            return self.send_date
        return month_start(self.month) if re.fullmatch(r"\d{4}-\d{2}", self.month) else date.today()

    def facts(self, row: dict[str, Any]) -> OfferFacts:
        """The one reading of a row's message, made on first use and handed to every stage after it."""
        key = (row.get("aggregate_id"), row.get("title"), row.get("body"), row.get("send_date"))
        if key not in self._facts:
            as_of = row.get("send_date") or self.as_of
            self._facts[key] = OfferFacts.from_row(row, as_of, self.channel)
        return self._facts[key]

    @property
    def audience(self) -> str:
        return SEGMENT_BY_KEY[self.segment].label

    def backend(self, agent: str) -> str:
        return self.llm.backend_for(agent) if self.llm is not None else RULES

    def model(self, agent: str) -> str:
        return self.llm.agent_settings(agent).model if self.backend(agent) != RULES else RULE_MODEL

    def ask(self, scope: str, requests: Sequence[LLMRequest]) -> dict[str, Any]:
        scope = f"{self.scope_prefix}{scope}|{self.month}|{self.segment}"
        run = self.llm.run(requests, conn=self.conn, scope=scope, log=self.log)
        self.llm_runs.append(run)
        return {r.custom_id: r for r in run.results}


def load_labelled(conn: duckdb.DuckDBPyConnection, month: str, segment: str) -> list[dict[str, Any]]:
    return fetch_dicts(conn, "SELECT * FROM core.labelled_templates WHERE month = $month AND segment = $segment "
                             "ORDER BY performance_label, performance_rank", {"month": month, "segment": segment})


def product_vocabulary(conn: duckdb.DuckDBPyConnection, month: str) -> frozenset[str]:
    """Product types sold this month: a rewrite naming one its plan does not bind is a guardrail violation."""
    return frozenset(v for (v,) in conn.execute(
        "SELECT DISTINCT lower(category_l3) FROM staging.products WHERE month = $month AND category_l3 IS NOT NULL",
        {"month": month}).fetchall())


def message(row: dict[str, Any], prefix: str = "") -> str:
    return f"Title: {row[prefix + 'title'] or ''}\nBody: {row[prefix + 'body'] or ''}"


def _feature_audit(row: dict[str, Any]) -> tuple:
    f = features(row.get("title") or "", row.get("body") or "", row.get("language"))
    return f, audit_features(row["segment"], f, row.get("voucher_type") is not None)


# --- ContentAgent --------------------------------------------------------------------------------
def diagnose_segment(ctx: Context, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fig. 2 comparative analysis for the segment, and a problem analysis per weak template."""
    strong = [r for r in rows if r["performance_label"] == "strong"]
    weak = [r for r in rows if r["performance_label"] == "weak"]
    weak_fa = [_feature_audit(r) for r in weak]
    stats = content.diagnose(ctx.segment, [_feature_audit(r) for r in strong], weak_fa)
    base = {"month": ctx.month, "segment": ctx.segment, "n_strong": len(strong), "n_weak": len(weak),
            "feature_shares": json.dumps(stats.shares)}
    if ctx.backend("content") == RULES:
        diag = {**base, "analysis": stats.analysis, "success_patterns": json.dumps(stats.success_patterns),
                "failure_patterns": json.dumps(stats.failure_patterns), "backend": RULES, "model": RULE_MODEL,
                "prompt_version": None, "status": "ok", "error": None}
        problems = [{"month": ctx.month, "segment": ctx.segment, "aggregate_id": r["aggregate_id"],
                     "template_id": r["template_id"], "reason": content.problem_reason(ctx.segment, *fa, stats),
                     "backend": RULES, "model": RULE_MODEL, "prompt_version": None, "status": "ok", "error": None}
                    for r, fa in zip(weak, weak_fa)]
        return diag, problems

    def listing(sample: list[dict[str, Any]]) -> Merchant:
        return Merchant("\n".join(f"- {message(r)} | {r.get('category_path') or 'None'} | "
                                  f"{r.get('voucher_text') or 'None'}" for r in sample[:MAX_PROMPT_EXAMPLES]))

    model = ctx.model("content")
    comparison = render("content_comparison", audience=ctx.audience, high_performing=listing(strong),
                        low_performing=listing(weak))
    got = ctx.ask("segment_diagnoses", [LLMRequest("diagnosis", "content", comparison.messages, ContentDiagnosis,
                                                   comparison.version)])["diagnosis"]
    parsed = got.parsed or {}
    diag = {**base, "analysis": parsed.get("analysis"), "success_patterns": json.dumps(parsed.get("success_patterns")),
            "failure_patterns": json.dumps(parsed.get("failure_patterns")), "backend": "llm", "model": model,
            "prompt_version": comparison.version, "status": got.status, "error": got.error}
    good_reason = parsed.get("analysis") or stats.analysis
    requests, versions = [], {}
    for r in weak:
        p = render("content_problem", audience=ctx.audience, good_reason=good_reason,
                   template=Merchant(f"{message(r)} | {r.get('category_path') or 'None'} | {r.get('voucher_text') or 'None'}"))
        versions[r["aggregate_id"]] = p.version
        requests.append(LLMRequest(r["aggregate_id"], "content", p.messages, ProblemAnalysis, p.version))
    results = ctx.ask("problem_analyses", requests) if requests else {}
    problems = [{"month": ctx.month, "segment": ctx.segment, "aggregate_id": r["aggregate_id"],
                 "template_id": r["template_id"], "reason": (results[r["aggregate_id"]].parsed or {}).get("reason"),
                 "backend": "llm", "model": model, "prompt_version": versions[r["aggregate_id"]],
                 "status": results[r["aggregate_id"]].status, "error": results[r["aggregate_id"]].error} for r in weak]
    return diag, problems


# --- EvaluateAgent -------------------------------------------------------------------------------
def evaluate(ctx: Context, rewrites: list[dict[str, Any]], rows_by_id: dict[str, dict[str, Any]]
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fig. 5 scores of original and rewrite; Fig. 6 preference judged in both orders."""
    done = [w for w in rewrites if w["status"] == "ok"]
    backend, model = ctx.backend("evaluate"), ctx.model("evaluate")
    scores, prefs = [], []
    if backend == RULES:
        for w in done:
            has_voucher = rows_by_id[w["aggregate_id"]].get("voucher_type") is not None
            original = judge.score(ctx.segment, w["original_title"] or "", w["original_body"] or "", w["language"], has_voucher)
            new = judge.score(ctx.segment, w["new_title"], w["new_body"], w["language"], has_voucher)
            scores.append(_score_row(ctx, w, backend, model, None, original.audience, original.audience_reason,
                                     original.marketing, original.marketing_reason, new.audience, new.audience_reason,
                                     new.marketing, new.marketing_reason, "ok", None))
            a, b = (w["original_title"] or "", w["original_body"] or ""), (w["new_title"], w["new_body"])
            forward = judge.prefer(ctx.segment, a, b, w["language"], has_voucher)  # original shown as A
            backward = judge.prefer(ctx.segment, b, a, w["language"], has_voucher)  # rewrite shown as A
            prefs.append(_preference_row(ctx, w, backend, model, None, forward, backward, "ok", None))
        return scores, prefs

    score_reqs, pref_reqs, versions = [], [], {}
    for w in done:
        original, new = Merchant(message(w, "original_")), Merchant(message(w, "new_"))
        context = "\n".join(ctx.facts(rows_by_id[w["aggregate_id"]]).context_lines())
        s = render("evaluate_scoring", audience_group=ctx.audience, context=context, original=original, generated=new)
        ab = render("evaluate_comparison", audience_group=ctx.audience, context=context, original=original,
                    generated=new)
        ba = render("evaluate_comparison", audience_group=ctx.audience, context=context, original=new,
                    generated=original)
        versions[w["aggregate_id"]] = (s.version, ab.version)
        score_reqs.append(LLMRequest(w["aggregate_id"], "evaluate", s.messages, Scores, s.version))
        pref_reqs += [LLMRequest(f"{w['aggregate_id']}|ab", "evaluate", ab.messages, Preference, ab.version),
                      LLMRequest(f"{w['aggregate_id']}|ba", "evaluate", ba.messages, Preference, ba.version)]
    got_scores = ctx.ask("rewrite_scores", score_reqs) if score_reqs else {}
    got_prefs = ctx.ask("preference_judgments", pref_reqs) if pref_reqs else {}
    for w in done:
        agg = w["aggregate_id"]
        s = got_scores[agg]
        p = s.parsed or {}
        scores.append(_score_row(ctx, w, "llm", model, versions[agg][0], p.get("audience_match_score_a"),
                                 p.get("audience_match_reason_a"), p.get("marketing_score_a"), p.get("marketing_reason_a"),
                                 p.get("audience_match_score_b"), p.get("audience_match_reason_b"),
                                 p.get("marketing_score_b"), p.get("marketing_reason_b"), s.status, s.error))
        ab, ba = got_prefs[f"{agg}|ab"], got_prefs[f"{agg}|ba"]
        status = combined_status(ab, ba)
        prefs.append(_preference_row(ctx, w, "llm", model, versions[agg][1],
                                     (ab.parsed or {}).get("preferred"), (ba.parsed or {}).get("preferred"), status,
                                     ab.error or ba.error))
    return scores, prefs


def _score_row(ctx, w, backend, model, version, oa, oar, om, omr, na, nar, nm, nmr, status, error):
    return {"month": ctx.month, "segment": ctx.segment, "aggregate_id": w["aggregate_id"], "template_id": w["template_id"],
            "path": w["path"], "original_audience": oa, "original_audience_reason": oar, "original_marketing": om,
            "original_marketing_reason": omr, "rewrite_audience": na, "rewrite_audience_reason": nar,
            "rewrite_marketing": nm, "rewrite_marketing_reason": nmr, "backend": backend, "model": model,
            "writer_backend": w["backend"], "writer_model": w["model"], "prompt_version": version,
            "status": status, "error": error}


def verdict(forward: str | None, backward: str | None) -> tuple[str, bool]:
    """Both-order rule. `forward`: original shown as A; `backward`: rewrite shown as A.

    A verdict counts only when both orders pick the same message; otherwise it is a tie.
    """
    pick_forward = {"A": "original", "B": "rewrite"}.get(forward or "", "tie")
    pick_backward = {"A": "rewrite", "B": "original"}.get(backward or "", "tie")
    consistent = pick_forward == pick_backward
    return (pick_forward if consistent else "tie"), consistent


def _preference_row(ctx, w, backend, model, version, forward, backward, status, error):
    final, consistent = verdict(forward, backward) if status == "ok" else (None, None)
    return {"month": ctx.month, "segment": ctx.segment, "aggregate_id": w["aggregate_id"], "template_id": w["template_id"],
            "path": w["path"], "original_as_a": forward, "rewrite_as_a": backward, "verdict": final,
            "position_consistent": consistent, "backend": backend, "model": model, "writer_backend": w["backend"],
            "writer_model": w["model"], "prompt_version": version, "status": status, "error": error}


def score_originals(ctx: Context, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judge's scores of every strong and weak original on its own, to compare with observed engagement."""
    backend, model = ctx.backend("evaluate"), ctx.model("evaluate")
    base = lambda r: {"month": ctx.month, "segment": ctx.segment, "aggregate_id": r["aggregate_id"],  # noqa: E731
                      "template_id": r["template_id"], "performance_label": r["performance_label"],
                      "observed_mean_score": r["mean_score"], "n_logs": r["n_logs"], "backend": backend, "model": model}
    if backend == RULES:
        out = []
        for r in rows:
            s = judge.score(ctx.segment, r.get("title") or "", r.get("body") or "", r.get("language"),
                            r.get("voucher_type") is not None)
            out.append({**base(r), "audience": s.audience, "marketing": s.marketing, "judge_score": s.total,
                        "prompt_version": None, "status": "ok", "error": None})
        return out
    requests, versions = [], {}
    for r in rows:
        p = render("evaluate_single", audience_group=ctx.audience, message=Merchant(message(r)))
        versions[r["aggregate_id"]] = p.version
        requests.append(LLMRequest(r["aggregate_id"], "evaluate", p.messages, SingleScores, p.version))
    results = ctx.ask("original_scores", requests) if requests else {}
    out = []
    for r in rows:
        res = results[r["aggregate_id"]]
        p = res.parsed or {}
        a, m = p.get("audience_match_score"), p.get("marketing_score")
        out.append({**base(r), "audience": a, "marketing": m, "judge_score": (a + m) if res.ok else None,
                    "prompt_version": versions[r["aggregate_id"]], "status": res.status, "error": res.error})
    return out


# --- Audit ---------------------------------------------------------------------------------------
def audit_templates(ctx: Context, rows: list[dict[str, Any]], rewrites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Appendix D error type (or none) for every weak original and every successful rewrite, with its kind and the
    flags for personal data, passed deadlines and injected text (read by the rule engine whatever the backend: they
    are facts of the text). Only marketing copy goes to the sheet: a reminder, confirmation, advisory or warning
    is "none" by its kind, and no model is asked."""
    by_id = {r["aggregate_id"]: r for r in rows}
    items = [("original", r, r.get("title") or "", r.get("body") or "") for r in rows if r["performance_label"] == "weak"]
    items += [("rewrite", by_id[w["aggregate_id"]], w["new_title"], w["new_body"]) for w in rewrites if w["status"] == "ok"]
    backend, model = ctx.backend("audit"), ctx.model("audit")
    out = []

    def base(kind: str, r: dict[str, Any], title: str, body: str) -> dict[str, Any]:
        facts = ctx.facts(r)
        flags, details = flag(facts.read(title, body))
        return {"month": ctx.month, "segment": ctx.segment, "aggregate_id": r["aggregate_id"],
                "template_id": r["template_id"], "version": kind, "flags": list(flags),
                "flag_details": " ".join(details) or None, "message_kind": facts.kind.kind,
                "kind_evidence": "; ".join(facts.kind.evidence), "backend": backend, "model": model}

    requests, meta = [], {}
    for kind, r, title, body in items:
        facts = ctx.facts(r)
        if backend == RULES or not facts.kind.marketing:
            a = audit_message(facts, title, body)
            out.append({**base(kind, r, title, body), "error_type": a.error_type, "feedback": a.feedback,
                        "backend": RULES, "model": RULE_MODEL, "prompt_version": None, "status": "ok", "error": None})
            continue
        p = render("audit_sheet", template=Merchant(f"Title: {title}\nBody: {body}"), audience=ctx.audience,
                   context="\n".join(facts.context_lines()))
        cid = f"{r['aggregate_id']}|{kind}"
        meta[cid] = (kind, r, p.version, title, body)
        requests.append(LLMRequest(cid, "audit", p.messages, Audit, p.version))
    results = ctx.ask("template_audits", requests) if requests else {}
    for cid, (kind, r, version, title, body) in meta.items():
        res = results[cid]
        parsed = res.parsed or {}
        out.append({**base(kind, r, title, body), "error_type": parsed.get("error_type"), "feedback": parsed.get("feedback"),
                    "prompt_version": version, "status": res.status, "error": res.error})
    return out


# --- RetrievalAgent ------------------------------------------------------------------------------
def build_segment_index(ctx: Context, rows: list[dict[str, Any]], path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Embed the segment's metadata (once per month per string) and index its strong templates."""
    from crmagent_dagster.agents import retrieval

    with_meta = [r for r in rows if r.get("metadata_text")]
    vectors, new, reused = retrieval.month_embeddings(ctx.conn, ctx.month, sorted({r["metadata_text"] for r in with_meta}))
    strong = [r for r in with_meta if r["performance_label"] == "strong"]
    keys = [retrieval.metadata_key(r["metadata_text"]) for r in strong]
    matrix = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, retrieval.DIMENSION), dtype=np.float32)
    retrieval.write_index(retrieval.build_index(matrix), path)
    members = [{"month": ctx.month, "segment": ctx.segment, "position": i, "aggregate_id": r["aggregate_id"],
                "shop_id": r["shop_id"], "template_id": r["template_id"], "metadata_key": k}
               for i, (r, k) in enumerate(zip(strong, keys))]
    return members, {"embedded": new, "reused": reused, "vectors": len(members)}


def proven_first(found: list[tuple[Any, float]], proven: frozenset[str], k: int) -> list[tuple[Any, float]]:
    """The top k of (member, similarity) pairs, those whose template is proven first; by similarity within each."""
    return sorted(found, key=lambda f: (f[0].template_id not in proven, -f[1]))[:k]


def match_exemplars(ctx: Context, rows: list[dict[str, Any]], path, k: int, threshold: float,
                    proven: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Per weak template: its merchant's own strong templates (path 1) or retrieved ones (path 2).

    `proven`: when given (the setting is on), retrieved templates that served as exemplars of rewrites which
    realized uplift rank first among those above the threshold; every row records which ranking was used."""
    ranking = "similarity" if proven is None else "realized_uplift_first"
    from crmagent_dagster.agents import retrieval

    strong = [r for r in rows if r["performance_label"] == "strong"]
    weak = [r for r in rows if r["performance_label"] == "weak"]
    member_rows = ctx.conn.execute(
        "SELECT position, aggregate_id, shop_id, template_id FROM agents.index_members "
        "WHERE month = $month AND segment = $segment ORDER BY position", {"month": ctx.month, "segment": ctx.segment}
    ).fetchall()
    members = [retrieval.Member(*m) for m in member_rows]
    index = None
    out = []
    for r in weak:
        base = {"month": ctx.month, "segment": ctx.segment, "aggregate_id": r["aggregate_id"], "shop_id": r["shop_id"],
                "ranking": ranking}
        own = sorted((s for s in strong if s["shop_id"] == r["shop_id"]), key=lambda s: -s["mean_score"])[:k]
        if own:
            out += [{**base, "route": "own", "rank": i + 1, "exemplar_aggregate_id": s["aggregate_id"],
                     "exemplar_template_id": s["template_id"], "exemplar_shop_id": s["shop_id"], "similarity": None}
                    for i, s in enumerate(own)]
            continue
        if not r.get("metadata_text"):
            continue  # neither product nor voucher: skip retrieval, path 3
        if index is None:
            index = retrieval.read_index(path)
            if index.ntotal != len(members):
                raise retrieval.IndexUnavailable(f"Faiss index {path} has {index.ntotal} vectors but "
                                                 f"agents.index_members lists {len(members)}: re-materialize it")
        vectors, _, _ = retrieval.month_embeddings(ctx.conn, ctx.month, [r["metadata_text"]])
        query = vectors[retrieval.metadata_key(r["metadata_text"])]
        found = retrieval.search(index, members, query, r["shop_id"], k if proven is None else 3 * k, threshold)
        for i, (m, sim) in enumerate(found if proven is None else proven_first(found, proven, k)):
            out.append({**base, "route": "retrieved", "rank": i + 1, "exemplar_aggregate_id": m.aggregate_id,
                        "exemplar_template_id": m.template_id, "exemplar_shop_id": m.shop_id, "similarity": sim})
    return out
