"""`crmagent rewrite`: audit, rewrite and judge templates from a JSONL file, outside Dagster.

Input, one JSON object per line: segment, title, body, and optionally language (detected when absent),
channel (push, sms, im, email; default push), send_date (YYYY-MM-DD: deadlines before it have passed; default
--as-of), merchant_id, voucher fields (voucher_type, discount_value, min_spend, max_discount, currency as
merchants write it: "RM", "₱", "Rp"..., voucher_code, expires_at) and product fields (product_name,
category_l1..3). Each line gets one output record; a bad line gets an error record naming the line and field,
and the rest are processed.

A record is `ok` only when every stage it needs has answered: the audit, the rewrite (and its re-asks), both
scores, the judgment in both orders and the audit of the rewrite. In files mode whatever still waits for a
results file makes the record `waiting` and names the stages. Requests of one input file live in their own
scope (`adhoc-<file key>|...`), so two files on one --db never replace each other's pending requests, and each
line's custom_id carries a hash of its content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crmagent_dagster.agents import template_agent, workflow
from crmagent_dagster.agents.guardrails import CHANNELS
from crmagent_dagster.agents.io import index_path
from crmagent_dagster.agents.language import LANGUAGES
from crmagent_dagster.agents.retrieval import IndexUnavailable
from crmagent_dagster.currency import UnknownCurrency, normalize_field
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.llm.batch import AWAITING
from crmagent_dagster.segments import SEGMENT_KEYS

# A template is short copy: anything longer is an error record at once, not minutes of parsing and reading.
MAX_TEXT = 20_000
MAX_LINE_BYTES = 256_000
MAX_AMOUNT = 1e12  # no voucher is worth more; 1e400 and Infinity are not numbers a rewrite could state
# NUL and other C0 controls that render as nothing, DEL, and the bidi overrides/isolates that reorder what a reader
# sees (U+202A-U+202E, U+2066-U+2069): never sent on. Tab, new lines, form feed and vertical tab are whitespace: data.
_HIDDEN = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

Segment = Literal[SEGMENT_KEYS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]


class TemplateLine(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    segment: Segment
    title: str = Field(max_length=MAX_TEXT)
    body: str = Field(max_length=MAX_TEXT)
    language: str | None = None
    channel: Channel = "push"
    send_date: date | None = None
    merchant_id: str = Field(default="adhoc", alias="shop_id")
    voucher_type: Literal["percentage_off", "fixed_amount_off", "free_shipping"] | None = None
    discount_value: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    min_spend: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    max_discount: float | None = Field(default=None, gt=0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str | None = None
    voucher_code: str | None = None
    expires_at: datetime | None = None
    product_name: str | None = None
    category_l1: str | None = None
    category_l2: str | None = None
    category_l3: str | None = None

    @field_validator("title", "body")
    @classmethod
    def _visible(cls, value: str) -> str:
        hidden = _HIDDEN.search(value)
        if hidden:
            raise ValueError(f"holds an invisible control or direction character (U+{ord(hidden.group()):04X} at "
                             f"{hidden.start()}); remove it")
        return value

    @model_validator(mode="after")
    def _has_text(self) -> "TemplateLine":
        if not (self.title.strip() or self.body.strip()):
            raise ValueError("title and body are both empty: there is no message to rewrite")
        if self.expires_at is not None and self.send_date is not None and self.expires_at.date() < self.send_date:
            raise ValueError(f"expires_at {self.expires_at.date()} is before send_date {self.send_date}: the voucher "
                             "has expired, and a rewrite must not promote it")
        return self

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        try:
            return normalize_field(value)  # "RM" -> "MYR": the same normalization the guardrails use
        except UnknownCurrency as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _voucher_value(self) -> "TemplateLine":
        """A voucher's value must be possible for its type: the rewrite would state it."""
        v, kind = self.discount_value, self.voucher_type
        if kind == "percentage_off" and (v is None or not 0 < v <= 100):
            raise ValueError(f"discount_value must be in (0, 100] for percentage_off, got {v}")
        if kind == "fixed_amount_off" and (v is None or v <= 0):
            raise ValueError(f"discount_value must be > 0 for fixed_amount_off, got {v}")
        if kind == "fixed_amount_off" and not self.currency:
            raise ValueError("currency is required for fixed_amount_off (e.g. RM, ₱, Rp or an ISO code)")
        if kind is None and any(x is not None for x in (v, self.min_spend, self.max_discount, self.voucher_code)):
            raise ValueError("voucher fields given without voucher_type")
        return self

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if value.strip().lower() not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}: use one of {', '.join(LANGUAGES)} or leave it out to detect it")
        return value.strip().lower()


def metadata_text(row: dict[str, Any]) -> str | None:
    """The same string core.labelled_templates builds in SQL (tests keep the two in step)."""
    path = " > ".join(c for c in (row.get("category_l1"), row.get("category_l2"), row.get("category_l3")) if c)
    voucher = None
    vt = row.get("voucher_type")
    if vt:
        value, cur = row.get("discount_value") or 0.0, row.get("currency")
        voucher = {"percentage_off": f"percentage off {value}%"
                                     + (f" capped at {row['max_discount']} {cur}" if row.get("max_discount") else ""),
                   "fixed_amount_off": f"fixed amount off {value} {cur}", "free_shipping": "free shipping"}[vt]
        if row.get("min_spend") is not None:
            voucher += f" with minimum spend {row['min_spend']} {cur}"
    if not path and voucher is None:
        return None
    return " | ".join(p for p in (f"category: {path}" if path else None, f"voucher: {voucher}" if voucher else None) if p)


def json_line(record: dict[str, Any]) -> str:
    """One JSON Lines record, readable as UTF-8 but with the separators other tools split on escaped."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\u0085", "\\u0085") + "\n"


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once: with two "body" keys, which one the merchant meant is unknown."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def line_of(aggregate_id: str) -> int:
    """The input line number inside a row id ('line-12-3f2a9c1b' -> 12)."""
    return int(aggregate_id.split("-")[1])


def read_lines(src: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[int, dict[str, Any]]]:
    """Valid lines as rows per segment, and an error record per bad line. JSON Lines are split on "\\n" only:
    U+2028, U+2029, NEL and form feeds inside a line are data."""
    by_segment: dict[str, list[dict[str, Any]]] = {}
    errors: dict[int, dict[str, Any]] = {}
    for n, raw in enumerate(src.read_bytes().split(b"\n"), 1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            errors[n] = {"line": n, "status": "error", "error": f"line {n}: not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})"}
            continue
        if len(raw) > MAX_LINE_BYTES:
            errors[n] = {"line": n, "status": "error",
                         "error": f"line {n}: {len(raw):,} bytes; a line holds at most {MAX_LINE_BYTES:,}"}
            continue
        try:
            line = TemplateLine.model_validate(json.loads(text, object_pairs_hook=_unique_keys))
        except json.JSONDecodeError as e:
            errors[n] = {"line": n, "status": "error", "error": f"line {n}: not JSON ({e.msg})"}
            continue
        except RecursionError:
            errors[n] = {"line": n, "status": "error", "error": f"line {n}: nested too deeply to be a template"}
            continue
        except DuplicateKey as e:
            errors[n] = {"line": n, "status": "error", "error": f"line {n}: {e.key}: given twice"}
            continue
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}" for err in e.errors())
            errors[n] = {"line": n, "status": "error", "error": f"line {n}: {problems}"}
            continue
        by_segment.setdefault(line.segment, []).append(_row(n, line))
    return by_segment, errors


CHUNK_LINES = 32  # lines rewritten and judged together; each chunk's records reach the disk when it is done


def rewrite_file(src: Path, dst: Path, llm: LLMResource, db: str | None = None, month: str | None = None,
                 top_k: int = 3, min_similarity: float = 0.6, as_of: date | None = None,
                 rewrite_all: bool = False) -> dict[str, int]:
    """Process every line of `src` into `dst`; returns counts of records by status ("ok", "unchanged",
    "rejected", "failed", "waiting", "error"). `as_of` is the send date of lines without their own `send_date`:
    deadlines before it are stale (default today). `rewrite_all` rewrites templates with no error too.

    Records stream: bad lines at once, then each chunk of lines as it finishes, flushed to `dst`, so a crash or a
    kill leaves every finished line on disk (in the order they finished). A run that ends sorts `dst` by line."""
    if llm.mode == "files" and not db:
        raise ValueError("files mode keeps its requests in DuckDB between export and import: pass --db")
    by_segment, errors = read_lines(src)
    scope = f"adhoc-{hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]}|"
    records: dict[int, dict[str, Any]] = {}
    with dst.open("w", encoding="utf-8") as out:
        def emit(done: dict[int, dict[str, Any]]) -> None:
            records.update(done)
            out.write("".join(json_line(done[n]) for n in sorted(done)))
            out.flush()
            os.fsync(out.fileno())

        emit(errors)
        conn = duckdb.connect(db or ":memory:", read_only=False)
        try:
            for segment, rows in by_segment.items():
                ctx = workflow.Context(month or "adhoc", segment, conn, llm, log=lambda m: None,
                                       send_date=as_of or date.today(), scope_prefix=scope)
                for i in range(0, len(rows), CHUNK_LINES):
                    emit(_rewrite_chunk(ctx, rows[i:i + CHUNK_LINES], db=db, month=month, top_k=top_k,
                                        min_similarity=min_similarity, rewrite_all=rewrite_all))
        finally:
            conn.close()
    _sort_by_line(dst, records)
    counts: dict[str, int] = {}
    for record in records.values():
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts


def _sort_by_line(dst: Path, records: dict[int, dict[str, Any]]) -> None:
    """Rewrite `dst` in input order, atomically: a kill here leaves the streamed file, never half of this one."""
    tmp = dst.with_name(f".{dst.name}.sorting")
    with tmp.open("w", encoding="utf-8") as out:
        out.write("".join(json_line(records[n]) for n in sorted(records)))
    os.replace(tmp, dst)


def _rewrite_chunk(ctx: workflow.Context, rows: list[dict[str, Any]], *, db: str | None, month: str | None,
                   top_k: int, min_similarity: float, rewrite_all: bool) -> dict[int, dict[str, Any]]:
    """Rewrite, judge and audit one chunk of a segment's lines: a record per line."""
    conn, segment = ctx.conn, ctx.segment
    inputs = template_agent.RewriteInputs()
    rows_all = rows
    if month and db:
        try:
            found = workflow.match_exemplars(ctx, rows, index_path(db, month, segment), top_k, min_similarity)
        except (IndexUnavailable, duckdb.CatalogException) as e:
            # this segment cannot retrieve: its lines get error records, others go on
            return {line_of(r["aggregate_id"]): {"line": line_of(r["aggregate_id"]), "status": "error",
                                                 "error": f"line {line_of(r['aggregate_id'])}: {e}"} for r in rows}
        matches: dict[str, list[dict[str, Any]]] = {}
        for m in found:
            matches.setdefault(m["aggregate_id"], []).append(m)
        strong = {m["exemplar_aggregate_id"] for ms in matches.values() for m in ms}
        rows_all = rows + [r for r in workflow.load_labelled(conn, month, segment) if r["aggregate_id"] in strong]
        inputs = replace(template_agent.RewriteInputs(**template_agent.segment_diagnosis(conn, month, segment)),
                         matches=matches)
    rewrites = [w.as_row() for w in template_agent.rewrite_weak(ctx, rows_all, inputs, cap=None,
                                                                rewrite_all=rewrite_all)]
    scores, prefs = workflow.evaluate(ctx, rewrites, {r["aggregate_id"]: r for r in rows_all})
    audits = {(a["aggregate_id"], a["version"]): a for a in workflow.audit_templates(ctx, rows, rewrites)}
    s_by, p_by = {s["aggregate_id"]: s for s in scores}, {p["aggregate_id"]: p for p in prefs}
    by_id = {r["aggregate_id"]: r for r in rows}
    done = {}
    for w in rewrites:
        n = line_of(w["aggregate_id"])
        done[n] = _record(n, w, ctx.facts(by_id[w["aggregate_id"]]), audits, s_by.get(w["aggregate_id"]),
                          p_by.get(w["aggregate_id"]))
    return done


def _row(n: int, line: TemplateLine) -> dict[str, Any]:
    row = line.model_dump()
    content = hashlib.sha256(line.model_dump_json().encode()).hexdigest()[:8]  # another input, another custom_id
    row.update(aggregate_id=f"line-{n}-{content}", template_id=f"line-{n}", shop_id=line.merchant_id,
               performance_label="weak",
               mean_score=0.0, category_path=" > ".join(c for c in (line.category_l1, line.category_l2, line.category_l3) if c))
    row["metadata_text"] = metadata_text(row)
    row["voucher_text"] = row["metadata_text"].split("voucher: ", 1)[1] if row["metadata_text"] and "voucher: " in row["metadata_text"] else None
    return row


def _stages(w: dict, new: dict, score: dict | None, pref: dict | None) -> tuple[list[str], list[str]]:
    """The judging stages an ok rewrite still waits for, and those that failed."""
    stages = {"scores": score, "judgment in both orders": pref, "audit of the rewrite": new or None}
    waiting = [name for name, row in stages.items() if row is not None and row.get("status") == "waiting"]
    failed = [f"{name}: {row.get('error') if row else 'missing'}" for name, row in stages.items()
              if row is None or row.get("status") not in ("ok", "waiting")]
    return waiting, failed


def _record(n: int, w: dict, facts, audits: dict, score: dict | None, pref: dict | None) -> dict[str, Any]:
    original = audits.get((w["aggregate_id"], "original"), {})
    new = audits.get((w["aggregate_id"], "rewrite"), {})
    reading = facts.reading
    checks = json.loads(w["guard_checks"] or "[]")
    status, error, waiting_for = w["status"], w["error"], []
    if status == "ok":  # nothing is ok until it is judged
        waiting_for, failed = _stages(w, new, score, pref)
        if failed:
            status, error = "failed", "the rewrite passed its guardrails but its judging failed: " + "; ".join(failed)
        elif waiting_for:
            status, error = "waiting", "waiting for " + ", ".join(waiting_for) + f": {AWAITING}"
    elif status == "waiting":
        waiting_for = [w["error"].split(":")[0].removeprefix("waiting for ")]
    ok = status == "ok"
    return {
        "line": n, "status": status, "error": error, "waiting_for": waiting_for, "segment": w["segment"],
        "channel": w["channel"], "send_date": facts.as_of.isoformat() if facts.as_of else None,
        "kind": {"kind": facts.kind.kind, "marketing": facts.kind.marketing, "evidence": list(facts.kind.evidence)},
        "path": w["path"], "exemplar_template_ids": w["exemplar_template_ids"], "language": w["language"],
        "language_detected": facts.language is None, "taglish": facts.taglish,
        "original": {"title": w["original_title"], "body": w["original_body"],
                     "error_type": original.get("error_type"), "feedback": original.get("feedback"),
                     "flags": original.get("flags") or [], "flag_details": original.get("flag_details"),
                     "terms": [{"kind": t.kind, "text": t.text, **({"role": t.role} if t.role else {})}
                               for t in reading.kept_terms],
                     "stale": [t.text for t in reading.stale], "personal": [p.text for p in reading.personal],
                     "injected": [i.text for i in reading.injected]},
        "rewrite": {"title": w["new_title"], "body": w["new_body"], "error_type": new.get("error_type")},
        "delivered": {"title": w["new_title"] if ok else w["original_title"],
                      "body": w["new_body"] if ok else w["original_body"], "from": "rewrite" if ok else "original"},
        "changes": w["changes"], "unable": w["unable"], "needs": w["needs"],
        "guardrails": {"passed": w["guard_passed"], "failed": [f"{c['name']}: {c['reason']}" for c in checks
                                                               if not c["passed"]]},
        "fallback": {"replaced_by_rules": w["replaced_by_rules"], "reason": w["fallback_reason"]},
        "scores": {k: score[k] for k in ("original_audience", "original_marketing", "rewrite_audience",
                                         "rewrite_marketing")} if score and score.get("status") == "ok" else None,
        "preference": {"verdict": pref["verdict"], "position_consistent": pref["position_consistent"]}
        if pref and pref.get("status") == "ok" else None,
        "backend": {"writer": w["backend"], "attempted": w["attempted_backend"],
                    "judge": score["backend"] if score else None, "model": w["model"]},
        "prompt_version": w["prompt_version"],
    }
