"""The batch route: OpenAI Batch API JSONL out, results JSONL in, by API or by files.

Files mode is for a person who uploads a batch to a provider (or answers it elsewhere): every request a run
could not answer from the cache waits in `llm.batch_requests`; `crmagent batch export` writes all of them into
one requests file, with the scope inside each custom_id, and `crmagent batch import` reads one results file
back into the cache, so the next run uses the answers.

Export writes one line per request: {"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body": <the exact body the online engine would send>}. Import accepts the Batch API's output
format from anyone (OpenAI, another provider, an air-gapped team) and checks every line:
unmatched, duplicate and malformed lines are reported, good lines are kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai

from crmagent_dagster.llm.core import LLMResult, ReplyInvalid, cost_usd, estimate_tokens, parse_reply
from crmagent_dagster.llm.engine import OnlineEngine, Prepared
from crmagent_dagster.sql import run

BATCH_URL = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class ImportReport:
    lines: int = 0
    matched: int = 0
    ok: int = 0
    errors: int = 0  # lines whose request failed (error object, non-200 status, invalid reply)
    unmatched: list[str] = field(default_factory=list)  # custom_ids we never asked for
    duplicates: list[str] = field(default_factory=list)  # custom_ids seen twice (the first line wins)
    malformed: list[str] = field(default_factory=list)  # "line N: why"

    def as_metadata(self) -> dict[str, object]:
        return {"lines": self.lines, "matched": self.matched, "ok": self.ok, "errors": self.errors,
                "unmatched": len(self.unmatched), "duplicates": len(self.duplicates), "malformed": len(self.malformed)}


def batch_line(engine: OnlineEngine, p: Prepared) -> dict:
    return {"custom_id": p.request.custom_id, "method": "POST", "url": BATCH_URL,
            "body": engine.body(p, p.request.messages)}


def export_jsonl(engine: OnlineEngine, prepared: Sequence[Prepared], path: Path) -> Path:
    ids = [p.request.custom_id for p in prepared]
    if len(set(ids)) != len(ids):
        raise ValueError("custom_id values must be unique within a batch")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in prepared:
            f.write(json.dumps(batch_line(engine, p), ensure_ascii=False) + "\n")
    return path


def import_results(lines: Iterable[str], prepared: Sequence[Prepared], prices: dict[str, list[float]]
                   ) -> tuple[dict[str, LLMResult], ImportReport]:
    """Turn Batch API output lines into results for the requests they answer."""
    by_id = {p.request.custom_id: p for p in prepared}
    report = ImportReport()
    results: dict[str, LLMResult] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        report.lines += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            report.malformed.append(f"line {number}: not JSON ({e.msg})")
            continue
        cid = obj.get("custom_id") if isinstance(obj, dict) else None
        if not isinstance(cid, str):
            report.malformed.append(f"line {number}: no custom_id")
            continue
        if cid not in by_id:
            report.unmatched.append(cid)
            continue
        if cid in results:
            report.duplicates.append(cid)
            continue
        report.matched += 1
        p = by_id[cid]
        result = LLMResult(custom_id=cid, agent=p.request.agent, model=p.settings.model, cache_key=p.key,
                           status="failed", attempts=1, prompt_version=p.request.prompt_version)
        results[cid] = result
        response = obj.get("response") or {}
        if obj.get("error") or response.get("status_code") != 200:
            report.errors += 1
            result.error = f"batch line {number}: {obj.get('error') or 'status ' + str(response.get('status_code'))}"
            continue
        body = response.get("body") or {}
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            report.malformed.append(f"line {number}: response body has no choices[0].message.content")
            result.error = f"batch line {number}: malformed response body"
            continue
        result.raw_text = text
        usage = body.get("usage") or {}
        result.tokens_in = usage.get("prompt_tokens")
        result.tokens_out = usage.get("completion_tokens")
        if result.tokens_in is None:
            result.usage_estimated = True
            result.tokens_in = estimate_tokens(json.dumps(list(p.request.messages)))
            result.tokens_out = estimate_tokens(text or "")
        result.cost_usd = cost_usd(prices, result.model, result.tokens_in, result.tokens_out, batch=True)
        try:
            result.parsed, result.reasoning = parse_reply(text, p.request.schema, p.settings.chain_of_thought)
            result.status = "ok"
            report.ok += 1
        except ReplyInvalid as e:
            report.errors += 1
            result.error = f"batch line {number}: invalid reply: {e}"
    return results, report


def _missing(p: Prepared, why: str, status: str = "failed") -> LLMResult:
    return LLMResult(custom_id=p.request.custom_id, agent=p.request.agent, model=p.settings.model, cache_key=p.key,
                     status=status, error=why, prompt_version=p.request.prompt_version)


# --- files mode: one requests file per run out, one results file back in ---------------------------
PENDING_DDL = """
CREATE TABLE IF NOT EXISTS llm.batch_requests (
    batch_custom_id VARCHAR PRIMARY KEY,  -- '<scope>#<custom_id>': the scope rides inside the custom_id
    scope VARCHAR, custom_id VARCHAR, cache_key VARCHAR, agent VARCHAR, model VARCHAR, chain_of_thought BOOLEAN,
    schema_name VARCHAR, prompt_version VARCHAR, line_json VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp, exported_at TIMESTAMP
)
"""
AWAITING = ("awaiting batch results: `crmagent batch export` writes every pending request into one file; send it, "
            "then `crmagent batch import` the results file and re-run")


def batch_id(scope: str, custom_id: str) -> str:
    return f"{scope}#{custom_id}"


def queue_files(conn, engine: OnlineEngine, prepared: Sequence[Prepared], scope: str) -> list[LLMResult]:
    """Files mode: keep each request that the cache cannot answer until someone exports it; answer 'awaiting'."""
    run(conn, PENDING_DDL)
    rows = [(batch_id(scope, p.request.custom_id), scope, p.request.custom_id, p.key, p.request.agent, p.settings.model,
             p.settings.chain_of_thought, p.request.schema.__name__, p.request.prompt_version,
             json.dumps({**batch_line(engine, p), "custom_id": batch_id(scope, p.request.custom_id)}, ensure_ascii=False))
            for p in prepared]
    # the scope's latest run says what it still needs: requests it no longer makes (a prompt changed) are dropped
    run(conn, "DELETE FROM llm.batch_requests WHERE scope = $scope", {"scope": scope})
    conn.executemany("INSERT OR REPLACE INTO llm.batch_requests (batch_custom_id, scope, custom_id, cache_key, agent, "
                     "model, chain_of_thought, schema_name, prompt_version, line_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                     "?, ?)", rows)
    return [_missing(p, AWAITING, status="waiting") for p in prepared]


def _open(conn) -> list[dict]:
    """Pending requests the cache does not answer yet."""
    run(conn, PENDING_DDL)
    cur = conn.execute("SELECT * FROM llm.batch_requests b WHERE NOT EXISTS "
                       "(SELECT 1 FROM llm.cache c WHERE c.cache_key = b.cache_key) ORDER BY scope, custom_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def export_pending(conn, path: Path, scope_prefix: str | None = None) -> int:
    """Write every open request (of scopes starting with `scope_prefix`) into one Batch API requests file."""
    rows = [r for r in _open(conn) if not scope_prefix or r["scope"].startswith(scope_prefix)]
    if not rows:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(r["line_json"] + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    run(conn, "UPDATE llm.batch_requests SET exported_at = current_timestamp WHERE list_contains($ids, batch_custom_id)",
              {"ids": [r["batch_custom_id"] for r in rows]})
    return len(rows)


def import_file(conn, lines: Iterable[str], prices: dict[str, list[float]]) -> ImportReport:
    """Read one Batch API results file; cache every good answer so the next run uses it."""
    from crmagent_dagster.llm import cache
    from crmagent_dagster.llm.core import AgentSettings, LLMRequest
    from crmagent_dagster.llm.replies import REPLY_MODELS

    prepared = [Prepared(LLMRequest(r["batch_custom_id"], r["agent"], (), REPLY_MODELS[r["schema_name"]],
                                    r["prompt_version"] or ""),
                         AgentSettings(model=r["model"], chain_of_thought=bool(r["chain_of_thought"])), r["cache_key"])
                for r in _open(conn)]
    results, report = import_results(lines, prepared, prices)
    cache.ensure_tables(conn)
    cache.store(conn, results.values())
    return report


async def run_batch_api(engine: OnlineEngine, prepared: Sequence[Prepared], prices: dict[str, list[float]], *,
                        poll_s: float, max_rounds: int, log: Callable[[str], None]) -> tuple[list[LLMResult], ImportReport]:
    """Submit through the Batch API, poll, collect; resubmit only failed or expired lines, up to max_rounds."""
    cfg = engine.config
    client = openai.AsyncOpenAI(api_key=cfg.api_key or "no-key", base_url=cfg.base_url, max_retries=3,
                                timeout=cfg.timeout_s)
    results: dict[str, LLMResult] = {}
    total = ImportReport()
    pending = list(prepared)
    try:
        for round_ in range(1, max_rounds + 1):
            payload = "".join(json.dumps(batch_line(engine, p), ensure_ascii=False) + "\n" for p in pending)
            uploaded = await client.files.create(file=("requests.jsonl", payload.encode()), purpose="batch")
            batch = await client.batches.create(input_file_id=uploaded.id, endpoint=BATCH_URL, completion_window="24h")
            log(f"batch round {round_}: {len(pending)} request(s) submitted as {batch.id}")
            while batch.status not in TERMINAL:
                await asyncio.sleep(poll_s)
                batch = await client.batches.retrieve(batch.id)
            lines: list[str] = []
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await client.files.content(file_id)
                    lines += content.text.splitlines()
            got, report = import_results(lines, pending, prices)
            for name in ("lines", "matched", "ok", "errors"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.unmatched += report.unmatched
            total.duplicates += report.duplicates
            total.malformed += report.malformed
            results.update(got)
            pending = [p for p in pending if not (p.request.custom_id in results and results[p.request.custom_id].ok)]
            log(f"batch round {round_}: status {batch.status}, {report.ok} ok, {len(pending)} to resubmit")
            if not pending:
                break
    finally:
        await client.close()
    out = [results.get(p.request.custom_id) or _missing(p, f"no result after {max_rounds} batch round(s)")
           for p in prepared]
    return out, total
