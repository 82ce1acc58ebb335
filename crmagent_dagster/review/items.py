"""What the reviewer sees per rewrite: one typed row gathered from the agents' tables and the decisions.

Each agents.* table is read on its own (keyed by segment and aggregate), so a warehouse where a stage has not run
yet (no audits, no judgments) still shows the rewrites it has, and one without rewrites shows nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import duckdb

from crmagent_dagster.review import store
from crmagent_dagster.review.store import RecordedDecision
from crmagent_dagster.sql import fetch_dicts, table_exists

ReviewStatus = Literal["to_review", "approved", "edited", "rejected"]
REVIEW_STATUSES: tuple[str, ...] = ("to_review", "approved", "edited", "rejected")
_STATUS_OF_DECISION: dict[str, ReviewStatus] = {"approve": "approved", "edit": "edited", "reject": "rejected"}
Key = tuple[str, str]  # (segment, aggregate_id)


@dataclass(frozen=True)
class GuardCheck:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Audit:
    """The Appendix D audit of one version ('original' or 'rewrite') of the text."""

    error_type: str | None
    feedback: str | None
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scores:
    """The judge's 1-5 scores, before and after, with its reasons."""

    original_audience: int | None
    original_audience_reason: str | None
    original_marketing: int | None
    original_marketing_reason: str | None
    rewrite_audience: int | None
    rewrite_audience_reason: str | None
    rewrite_marketing: int | None
    rewrite_marketing_reason: str | None


@dataclass(frozen=True)
class Verdicts:
    """The blind A/B judgment asked in both orders; a verdict counts only when both orders agree."""

    original_as_a: str | None
    rewrite_as_a: str | None
    verdict: str | None
    position_consistent: bool | None


@dataclass(frozen=True)
class ReviewItem:
    month: str
    segment: str
    aggregate_id: str
    template_id: str | None
    shop_id: str | None
    status: str  # the writer's: ok / unchanged / rejected / waiting / failed
    error: str | None
    path: int | None
    language: str | None
    channel: str | None
    message_kind: str | None  # what the message is for: promotional_offer ... security_warning
    kind_evidence: str | None
    original_title: str | None
    original_body: str | None
    new_title: str | None
    new_body: str | None
    rewrite_hash: str  # the version of the rewrite text a decision applies to
    changes: list[str]
    needs: list[str]
    guard_passed: bool | None
    guard_checks: list[GuardCheck]
    audit_original: Audit | None
    audit_rewrite: Audit | None
    segment_diagnosis: str | None
    problem_reason: str | None
    scores: Scores | None
    verdicts: Verdicts | None
    policy_approves: bool
    decision: RecordedDecision | None  # the latest one that still counts
    history: list[RecordedDecision]  # every decision on this rewrite, oldest first, stale ones included
    review_status: ReviewStatus = "to_review"
    can_approve: bool = False  # only an accepted rewrite can be approved as is; others can be edited or rejected


def months(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """(month, its segments with rewrites), newest month first."""
    if not table_exists(conn, "agents.template_rewrites"):
        return []
    rows = conn.execute("SELECT month, list(DISTINCT segment ORDER BY segment) FROM agents.template_rewrites "
                        "GROUP BY month ORDER BY month DESC").fetchall()
    return [(m, list(segs)) for m, segs in rows]


def newest_month(conn: duckdb.DuckDBPyConnection) -> str | None:
    found = months(conn)
    return found[0][0] if found else None


def load_items(conn: duckdb.DuckDBPyConnection, month: str, segment: str | None = None) -> list[ReviewItem]:
    """Every rewrite of the month (or of one segment), ordered by segment and template."""
    if not table_exists(conn, "agents.template_rewrites"):
        return []
    params = {"month": month, "segment": segment}
    where = "month = $month AND ($segment IS NULL OR segment = $segment)"
    rewrites = fetch_dicts(conn, f"SELECT * FROM agents.template_rewrites WHERE {where} "
                                 "ORDER BY segment, template_id, aggregate_id", params)
    if not rewrites:
        return []
    audits = _by_key(conn, "agents.template_audits", where, params, extra="version")
    scores = _by_key(conn, "agents.rewrite_scores", where, params)
    verdicts = _by_key(conn, "agents.preference_judgments", where, params)
    reasons = _by_key(conn, "agents.problem_analyses", where, params)
    diagnoses = {r["segment"]: r["analysis"] for r in _rows(conn, "agents.segment_diagnoses", where, params)}
    latest = store.latest_decisions(conn, month, segment)
    history: dict[Key, list[RecordedDecision]] = {}
    for d in store.history(conn, month, segment):
        history.setdefault((d.segment, d.aggregate_id), []).append(d)
    return [_item(w, audits, scores, verdicts, reasons, diagnoses, latest, history) for w in rewrites]


def filter_status(items: Iterable[ReviewItem], status: str | None) -> list[ReviewItem]:
    """Items in one review status; None or 'all' keeps every item."""
    if status in (None, "", "all"):
        return list(items)
    if status not in REVIEW_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REVIEW_STATUSES)} or all, got {status!r}")
    return [i for i in items if i.review_status == status]


def count_statuses(items: Iterable[ReviewItem]) -> dict[str, int]:
    counts = dict.fromkeys((*REVIEW_STATUSES, "all"), 0)
    for i in items:
        counts[i.review_status] += 1
        counts["all"] += 1
    return counts


def dumps(value: Any) -> str:
    """JSON text of items, decisions and plain values; dataclasses as objects, times as ISO strings."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if hasattr(v, "__dataclass_fields__"):
        return asdict(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _rows(conn: duckdb.DuckDBPyConnection, table: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return fetch_dicts(conn, f"SELECT * FROM {table} WHERE {where}", params) if table_exists(conn, table) else []


def _by_key(conn: duckdb.DuckDBPyConnection, table: str, where: str, params: dict[str, Any],
            extra: str | None = None) -> dict[tuple[str, ...], dict[str, Any]]:
    """Rows keyed by (segment, aggregate_id[, extra]); the first row wins should a table hold two."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in _rows(conn, table, where, params):
        out.setdefault((r["segment"], r["aggregate_id"], *([r[extra]] if extra else [])), r)
    return out


def _item(w: dict[str, Any], audits: dict, scores: dict, verdicts: dict, reasons: dict, diagnoses: dict[str, str],
          latest: dict[Key, RecordedDecision], history: dict[Key, list[RecordedDecision]]) -> ReviewItem:
    key: Key = (w["segment"], w["aggregate_id"])
    judged = verdicts.get(key)
    verdict = Verdicts(judged["original_as_a"], judged["rewrite_as_a"], judged["verdict"],
                       judged["position_consistent"]) if judged else None
    decision = latest.get(key)
    return ReviewItem(
        month=w["month"], segment=w["segment"], aggregate_id=w["aggregate_id"], template_id=w["template_id"],
        shop_id=w.get("shop_id"), status=w["status"], error=w.get("error"), path=w.get("path"),
        language=w.get("language"), channel=w.get("channel"), message_kind=w.get("message_kind"),
        kind_evidence=w.get("kind_evidence"), original_title=w.get("original_title"),
        original_body=w.get("original_body"), new_title=w.get("new_title"), new_body=w.get("new_body"),
        rewrite_hash=store.rewrite_hash(w.get("new_title"), w.get("new_body")),
        changes=list(w.get("changes") or []), needs=list(w.get("needs") or []), guard_passed=w.get("guard_passed"),
        guard_checks=_checks(w.get("guard_checks")),
        audit_original=_audit(audits.get((*key, "original"))), audit_rewrite=_audit(audits.get((*key, "rewrite"))),
        segment_diagnosis=diagnoses.get(w["segment"]), problem_reason=(reasons.get(key) or {}).get("reason"),
        scores=_scores(scores.get(key)), verdicts=verdict,
        policy_approves=store.policy_approves(w["status"], w.get("guard_passed"), verdict and verdict.verdict,
                                              verdict and verdict.position_consistent),
        decision=decision, history=history.get(key, []),
        review_status=_STATUS_OF_DECISION[decision.decision] if decision else "to_review",
        can_approve=w["status"] == "ok")


def _checks(raw: str | None) -> list[GuardCheck]:
    if not raw:
        return []
    return [GuardCheck(str(c.get("name")), bool(c.get("passed")), str(c.get("reason") or "")) for c in json.loads(raw)]


def _audit(row: dict[str, Any] | None) -> Audit | None:
    return Audit(row["error_type"], row["feedback"], list(row.get("flags") or [])) if row else None


def _scores(row: dict[str, Any] | None) -> Scores | None:
    if not row:
        return None
    return Scores(**{k: row.get(k) for k in Scores.__dataclass_fields__})
