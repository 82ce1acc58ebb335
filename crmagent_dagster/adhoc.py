"""`crmagent rewrite`: audit, rewrite and judge templates from a JSONL file, outside Dagster.

Input, one JSON object per line: segment, title, body, and optionally language, merchant_id,
voucher fields (voucher_type, discount_value, min_spend, max_discount, currency, voucher_code,
expires_at) and product fields (product_name, category_l1..3). Each line gets one output record;
a bad line gets an error record naming the line and field, and the rest are processed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmagent_dagster.agents import workflow
from crmagent_dagster.agents.io import index_path
from crmagent_dagster.agents.retrieval import IndexUnavailable
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.segments import SEGMENT_KEYS

Segment = Literal[SEGMENT_KEYS]  # type: ignore[valid-type]


class TemplateLine(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    segment: Segment
    title: str
    body: str
    language: str | None = None
    merchant_id: str = Field(default="adhoc", alias="shop_id")
    voucher_type: Literal["percentage_off", "fixed_amount_off", "free_shipping"] | None = None
    discount_value: float | None = Field(default=None, ge=0)
    min_spend: float | None = Field(default=None, ge=0)
    max_discount: float | None = Field(default=None, gt=0)
    currency: str | None = None
    voucher_code: str | None = None
    expires_at: datetime | None = None
    product_name: str | None = None
    category_l1: str | None = None
    category_l2: str | None = None
    category_l3: str | None = None


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


def _row(n: int, line: TemplateLine) -> dict[str, Any]:
    row = line.model_dump()
    row.update(aggregate_id=f"line-{n}", template_id=f"line-{n}", shop_id=line.merchant_id, performance_label="weak",
               mean_score=0.0, category_path=" > ".join(c for c in (line.category_l1, line.category_l2, line.category_l3) if c))
    row["metadata_text"] = metadata_text(row)
    row["voucher_text"] = row["metadata_text"].split("voucher: ", 1)[1] if row["metadata_text"] and "voucher: " in row["metadata_text"] else None
    return row


def rewrite_file(src: Path, dst: Path, llm: LLMResource, db: str | None = None, month: str | None = None,
                 top_k: int = 3, min_similarity: float = 0.6) -> dict[str, int]:
    """Process every line of `src` into `dst`; returns counts of ok and error lines."""
    conn = duckdb.connect(db or ":memory:", read_only=False)
    counts = {"ok": 0, "error": 0}
    records: dict[int, dict[str, Any]] = {}
    by_segment: dict[str, list[dict[str, Any]]] = {}
    for n, text in enumerate(src.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = TemplateLine.model_validate(json.loads(text))
        except json.JSONDecodeError as e:
            records[n] = {"line": n, "status": "error", "error": f"line {n}: not JSON ({e.msg})"}
            continue
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            records[n] = {"line": n, "status": "error", "error": f"line {n}: {problems}"}
            continue
        by_segment.setdefault(line.segment, []).append(_row(n, line))
    try:
        for segment, rows in by_segment.items():
            ctx = workflow.Context(month or "adhoc", segment, conn, llm, log=lambda m: None)
            matches: dict[str, list[dict[str, Any]]] = {}
            if month and db:
                try:
                    found = workflow.match_exemplars(ctx, rows, index_path(db, month, segment), top_k, min_similarity)
                except (IndexUnavailable, duckdb.CatalogException) as e:
                    for r in rows:  # this segment cannot retrieve: its lines get error records, others go on
                        n = int(r["aggregate_id"].split("-")[1])
                        records[n] = {"line": n, "status": "error", "error": f"line {n}: {e}"}
                    continue
                for m in found:
                    matches.setdefault(m["aggregate_id"], []).append(m)
                strong = {m["exemplar_aggregate_id"] for ms in matches.values() for m in ms}
                rows_all = rows + [r for r in workflow.load_labelled(conn, month, segment) if r["aggregate_id"] in strong]
            else:
                rows_all = rows
            audits = {(a["aggregate_id"], a["version"]): a for a in workflow.audit_templates(ctx, rows, [])}
            rewrites = workflow.rewrite_weak(ctx, rows_all, matches, {}, "", cap=None)
            scores, prefs = workflow.evaluate(ctx, rewrites, {r["aggregate_id"]: r for r in rows_all})
            audits.update({(a["aggregate_id"], a["version"]): a for a in workflow.audit_templates(ctx, rows, rewrites)})
            s_by, p_by = {s["aggregate_id"]: s for s in scores}, {p["aggregate_id"]: p for p in prefs}
            for w in rewrites:
                n = int(w["aggregate_id"].split("-")[1])
                records[n] = _record(n, w, audits, s_by.get(w["aggregate_id"]), p_by.get(w["aggregate_id"]))
    finally:
        conn.close()
    with dst.open("w", encoding="utf-8") as out:
        for n in sorted(records):
            counts["ok" if records[n]["status"] == "ok" else "error"] += 1
            out.write(json.dumps(records[n], ensure_ascii=False, default=str) + "\n")
    return counts


def _record(n: int, w: dict, audits: dict, score: dict | None, pref: dict | None) -> dict[str, Any]:
    original = audits.get((w["aggregate_id"], "original"), {})
    new = audits.get((w["aggregate_id"], "rewrite"), {})
    return {
        "line": n, "status": w["status"], "error": w["error"], "segment": w["segment"], "path": w["path"],
        "exemplar_template_ids": w["exemplar_template_ids"], "language": w["language"],
        "original": {"title": w["original_title"], "body": w["original_body"],
                     "error_type": original.get("error_type"), "feedback": original.get("feedback")},
        "rewrite": {"title": w["new_title"], "body": w["new_body"], "error_type": new.get("error_type")},
        "scores": {k: score[k] for k in ("original_audience", "original_marketing", "rewrite_audience",
                                         "rewrite_marketing")} if score else None,
        "preference": {"verdict": pref["verdict"], "position_consistent": pref["position_consistent"]} if pref else None,
        "backend": {"writer": w["backend"], "judge": score["backend"] if score else None, "model": w["model"]},
        "prompt_version": w["prompt_version"],
    }
