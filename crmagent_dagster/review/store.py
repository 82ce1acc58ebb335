"""`agents.rewrite_reviews`: every reviewer decision on a rewrite, kept as history (append-only).

A decision applies to the rewrite text it was made on (`rewrite_hash`): when a re-run writes a different rewrite,
the older decisions no longer count and the rewrite waits for review again. The latest counting decision per
rewrite wins. An edited text counts only when it passes the same guardrails the writer is held to.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import duckdb

from crmagent_dagster.agents import guardrails
from crmagent_dagster.agents.facts import OfferFacts, month_start
from crmagent_dagster.agents.guardrails import Check
from crmagent_dagster.agents.workflow import product_vocabulary
from crmagent_dagster.sql import ensure_schemas, fetch_dicts, run, table_exists, transaction

Decision = Literal["approve", "edit", "reject"]
DECISIONS: tuple[str, ...] = ("approve", "edit", "reject")
TABLE = "agents.rewrite_reviews"
DDL = """CREATE TABLE IF NOT EXISTS agents.rewrite_reviews (
    review_id VARCHAR PRIMARY KEY, month VARCHAR NOT NULL, segment VARCHAR NOT NULL, aggregate_id VARCHAR NOT NULL,
    template_id VARCHAR, decision VARCHAR NOT NULL, edited_title VARCHAR, edited_body VARCHAR,
    rewrite_hash VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, decided_at TIMESTAMP NOT NULL, note VARCHAR,
    source VARCHAR NOT NULL, guard_checks VARCHAR)"""


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message names the rewrite and the field."""


class EditBlocked(ReviewError):
    """An edited text that breaks a guardrail: not recorded, with the failed checks."""

    def __init__(self, message: str, checks: list[Check]):
        super().__init__(message)
        self.checks = checks


@dataclass(frozen=True)
class ReviewDecision:
    """One reviewer decision. `edited_*` only for `edit`."""

    month: str
    segment: str
    aggregate_id: str
    decision: str
    reviewer: str
    note: str | None = None
    edited_title: str | None = None
    edited_body: str | None = None
    source: str = "web"


@dataclass(frozen=True)
class RecordedDecision:
    review_id: str
    month: str
    segment: str
    aggregate_id: str
    template_id: str | None
    decision: str
    edited_title: str | None
    edited_body: str | None
    rewrite_hash: str
    reviewer: str
    decided_at: datetime
    note: str | None
    source: str
    guard_checks: list[dict[str, Any]] = field(default_factory=list)


def rewrite_hash(title: str | None, body: str | None) -> str:
    """The version of a rewrite text a decision was made on."""
    return hashlib.md5(f"{title or ''}\n{body or ''}".encode()).hexdigest()


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    ensure_schemas(conn)
    run(conn, DDL)


def _rewrite(conn: duckdb.DuckDBPyConnection, d: ReviewDecision) -> dict[str, Any]:
    where = f"month {d.month}, segment {d.segment}, aggregate {d.aggregate_id}"
    if not table_exists(conn, "agents.template_rewrites"):
        raise ReviewError(f"{where}: no rewrites in this warehouse yet")
    found = fetch_dicts(conn, """
        SELECT w.*, l.* EXCLUDE (month, segment, aggregate_id, template_id, shop_id, language)
        FROM agents.template_rewrites w
        LEFT JOIN core.labelled_templates l USING (month, segment, aggregate_id)
        WHERE w.month = $month AND w.segment = $segment AND w.aggregate_id = $aggregate_id""",
                        {"month": d.month, "segment": d.segment, "aggregate_id": d.aggregate_id})
    if not found:
        raise ReviewError(f"{where}: no such rewrite")
    return found[0]


def edit_checks(conn: duckdb.DuckDBPyConnection, row: dict[str, Any], title: str, body: str) -> list[Check]:
    """The writer's guardrails, applied to a reviewer's text for this rewrite's template."""
    facts = OfferFacts.from_row({**row, "title": row["original_title"], "body": row["original_body"]},
                                month_start(row["month"]))
    return guardrails.check_rewrite(title, body, facts, product_vocabulary(conn, row["month"]),
                                    row.get("channel") or "push")


def record(conn: duckdb.DuckDBPyConnection, d: ReviewDecision, *, now: datetime | None = None) -> RecordedDecision:
    """Validate and append one decision. Raises ReviewError (bad field, unknown rewrite, a rewrite that was not
    accepted) or EditBlocked (an edit that breaks a guardrail); nothing is written then."""
    where = f"month {d.month}, segment {d.segment}, aggregate {d.aggregate_id}"
    if d.decision not in DECISIONS:
        raise ReviewError(f"{where}: decision must be one of {', '.join(DECISIONS)}, got {d.decision!r}")
    if not (d.reviewer or "").strip():
        raise ReviewError(f"{where}: reviewer is required")
    row = _rewrite(conn, d)
    checks: list[Check] = []
    if d.decision == "edit":
        title, body = (d.edited_title or "").strip(), (d.edited_body or "").strip()
        if not body:
            raise ReviewError(f"{where}: an edit needs edited_body (and edited_title)")
        checks = edit_checks(conn, row, title, body)
        if not guardrails.passed(checks):
            raise EditBlocked(f"{where}: the edited text breaks the guardrails: {guardrails.feedback(checks)}", checks)
    elif d.edited_title or d.edited_body:
        raise ReviewError(f"{where}: edited text given with decision {d.decision!r}; use 'edit'")
    if d.decision == "approve" and row["status"] != "ok":
        raise ReviewError(f"{where}: the rewrite is {row['status']} ({row['error']}); only an edit can replace it")
    out = RecordedDecision(
        review_id=uuid.uuid4().hex, month=d.month, segment=d.segment, aggregate_id=d.aggregate_id,
        template_id=row["template_id"], decision=d.decision,
        edited_title=(d.edited_title or "").strip() if d.decision == "edit" else None,
        edited_body=(d.edited_body or "").strip() if d.decision == "edit" else None,
        rewrite_hash=rewrite_hash(row["new_title"], row["new_body"]), reviewer=d.reviewer.strip(),
        decided_at=now or datetime.now(timezone.utc).replace(tzinfo=None), note=d.note or None, source=d.source,
        guard_checks=guardrails.as_records(checks))
    ensure_table(conn)
    with transaction(conn):
        run(conn, "INSERT INTO agents.rewrite_reviews VALUES ($review_id, $month, $segment, $aggregate_id, "
                  "$template_id, $decision, $edited_title, $edited_body, $rewrite_hash, $reviewer, $decided_at, "
                  "$note, $source, $guard_checks)",
                  {**{k: getattr(out, k) for k in out.__dataclass_fields__ if k != "guard_checks"},
                   "guard_checks": json.dumps(out.guard_checks, ensure_ascii=False) if checks else None})
    return out


def latest_decisions(conn: duckdb.DuckDBPyConnection, month: str, segment: str | None = None
                     ) -> dict[tuple[str, str], RecordedDecision]:
    """(segment, aggregate_id) -> the latest decision that still counts: made on the rewrite text stored now."""
    if not table_exists(conn, TABLE) or not table_exists(conn, "agents.template_rewrites"):
        return {}
    rows = fetch_dicts(conn, """
        SELECT r.* FROM agents.rewrite_reviews r
        JOIN agents.template_rewrites w USING (month, segment, aggregate_id)
        WHERE r.month = $month AND ($segment IS NULL OR r.segment = $segment)
          AND r.rewrite_hash = md5(coalesce(w.new_title, '') || chr(10) || coalesce(w.new_body, ''))
        QUALIFY row_number() OVER (PARTITION BY r.segment, r.aggregate_id ORDER BY r.decided_at DESC, r.review_id) = 1
        """, {"month": month, "segment": segment})
    return {(r["segment"], r["aggregate_id"]): _recorded(r) for r in rows}


def history(conn: duckdb.DuckDBPyConnection, month: str, segment: str | None = None) -> list[RecordedDecision]:
    """Every decision of the month, oldest first."""
    if not table_exists(conn, TABLE):
        return []
    return [_recorded(r) for r in fetch_dicts(
        conn, "SELECT * FROM agents.rewrite_reviews WHERE month = $month AND ($segment IS NULL OR segment = $segment) "
              "ORDER BY decided_at, review_id", {"month": month, "segment": segment})]


def _recorded(r: dict[str, Any]) -> RecordedDecision:
    return RecordedDecision(**{**r, "guard_checks": json.loads(r["guard_checks"]) if r["guard_checks"] else []})


def policy_approves(status: str | None, guard_passed: bool | None, verdict: str | None,
                    position_consistent: bool | None) -> bool:
    """The auto-approve policy: an accepted rewrite that passed every guardrail and that the judge preferred in
    both orders of the blind A/B pair."""
    return status == "ok" and bool(guard_passed) and verdict == "rewrite" and bool(position_consistent)
