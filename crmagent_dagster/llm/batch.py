"""The batch route: OpenAI Batch API JSONL out, results JSONL in, by API or by files.

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


def _missing(p: Prepared, why: str) -> LLMResult:
    return LLMResult(custom_id=p.request.custom_id, agent=p.request.agent, model=p.settings.model, cache_key=p.key,
                     status="failed", error=why, prompt_version=p.request.prompt_version)


def run_files(engine: OnlineEngine, prepared: Sequence[Prepared], folder: Path, prices: dict[str, list[float]]
              ) -> tuple[list[LLMResult], ImportReport]:
    """Files only: write requests.jsonl; import results.jsonl if someone has put it there."""
    export_jsonl(engine, prepared, folder / "requests.jsonl")
    results_path = folder / "results.jsonl"
    report = ImportReport()
    got: dict[str, LLMResult] = {}
    if results_path.exists():
        got, report = import_results(results_path.read_text(encoding="utf-8").splitlines(), prepared, prices)
    out = [got.get(p.request.custom_id) or _missing(p, f"awaiting batch results: put the Batch API output at "
                                                     f"{results_path} and re-materialize") for p in prepared]
    return out, report


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
