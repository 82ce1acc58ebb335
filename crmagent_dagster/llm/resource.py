"""`LLMResource`: the one LLM layer every agent uses, configured per agent, online or batch.

Point it at any OpenAI-compatible endpoint (OpenAI, Azure OpenAI's /openai/v1, vLLM, Ollama,
llama.cpp server) with `base_url`, `api_key` (an EnvVar) and per-agent models. Every run checks
the DuckDB cache first, so an unchanged partition makes zero calls and a re-run calls only for
items that failed or were never answered.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from crmagent_dagster.llm import cache
from crmagent_dagster.llm.batch import ImportReport, queue_files, run_batch_api
from crmagent_dagster.llm.core import AGENTS, AgentSettings, LLMRequest, LLMResult, cache_key
from crmagent_dagster.llm.engine import EngineConfig, OnlineEngine, Prepared
from crmagent_dagster.resources import DATA_DIR

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# USD per 1M tokens [input, output]; override per deployment. The Batch API bills half.
DEFAULT_PRICES: dict[str, list[float]] = {
    "gpt-4o": [2.50, 10.00],
    "gpt-4o-mini": [0.15, 0.60],
    "gpt-4.1": [2.00, 8.00],
    "gpt-4.1-mini": [0.40, 1.60],
    "o3": [2.00, 8.00],
    "deepseek-reasoner": [0.55, 2.19],
}
FLUSH_EVERY = 25


class AgentModelConfig(dg.Config):
    backend: str = Field(default="auto", description="auto (llm when an endpoint is configured, else rules) | llm | rules")
    model: str | None = Field(default=None, description="Model for this agent; empty = the resource's default_model.")
    temperature: float = 0.2
    max_tokens: int = 800
    chain_of_thought: bool = Field(default=False, description="Ask for step-by-step reasoning before the answer.")


@dataclass
class LLMRun:
    results: list[LLMResult]  # in request order
    batch_report: ImportReport | None = None

    def metadata(self) -> dict[str, Any]:
        fresh = [r for r in self.results if not r.cached]
        latencies = [r.latency_s for r in fresh if r.attempts]
        md: dict[str, Any] = {
            "llm_items": len(self.results),
            "llm_requests": sum(r.attempts for r in fresh),
            "llm_cache_hits": sum(r.cached for r in self.results),
            "llm_failures": sum(not r.ok for r in self.results),
            "llm_tokens_in": sum(r.tokens_in or 0 for r in fresh),
            "llm_tokens_out": sum(r.tokens_out or 0 for r in fresh),
            "llm_usage_estimated": sum(r.usage_estimated for r in fresh),
            "llm_cost_usd": round(sum(r.cost_usd or 0.0 for r in fresh), 9),
            "llm_median_latency_s": round(median(latencies), 3) if latencies else 0.0,
            "llm_models": ", ".join(sorted({r.model for r in self.results})),
        }
        if self.batch_report is not None:
            md.update({f"batch_{k}": v for k, v in self.batch_report.as_metadata().items()})
        return md


class LLMResource(dg.ConfigurableResource):
    """Chat completions for the agents, through the `openai` client, with cache, retries and batching."""

    configured: bool = Field(default=False, description="An endpoint was configured (OPENAI_API_KEY or OPENAI_BASE_URL "
                                                        "set): 'auto' agents use the LLM instead of the rule engine.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key: str | None = Field(default=None, description="Use EnvVar('OPENAI_API_KEY'); never stored or logged.")
    default_model: str = "gpt-4o"
    content: AgentModelConfig = AgentModelConfig()
    template: AgentModelConfig = AgentModelConfig()
    evaluate: AgentModelConfig = AgentModelConfig()
    audit: AgentModelConfig = AgentModelConfig()
    mode: str = Field(default="online", description="online | batch (Batch API) | files (export/import JSONL)")
    concurrency: int = 16
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 60.0
    max_retries: int = Field(default=5, description="Transport retries per call (timeouts, 429, 5xx).")
    max_validation_retries: int = Field(default=2, description="Re-asks with the validation error fed back.")
    response_format: str = Field(default="auto", description="auto | json_schema | json_object | none")
    backoff_base_s: float = 0.5
    prices: dict[str, list[float]] = DEFAULT_PRICES
    batch_dir: str = Field(default=str(DATA_DIR / "batches"),
                           description="Where `crmagent batch export` writes its requests file by default.")
    batch_poll_s: float = 30.0
    batch_max_rounds: int = 3

    def agent_settings(self, agent: str) -> AgentSettings:
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}; expected one of {AGENTS}")
        cfg: AgentModelConfig = getattr(self, agent)
        return AgentSettings(model=cfg.model or self.default_model, temperature=cfg.temperature,
                             max_tokens=cfg.max_tokens, chain_of_thought=cfg.chain_of_thought)

    def backend_for(self, agent: str) -> str:
        """'llm' or 'rules' for this agent."""
        choice = getattr(self, agent).backend if agent in AGENTS else None
        if choice not in ("auto", "llm", "rules"):
            raise ValueError(f"{agent}.backend must be auto, llm or rules, got {choice!r}")
        if choice == "auto":
            return "llm" if self.configured else "rules"
        return choice

    def engine(self, log: Callable[[str], None] = print) -> OnlineEngine:
        if self.mode not in ("online", "batch", "files"):
            raise ValueError(f"mode must be online, batch or files, got {self.mode!r}")
        config = EngineConfig(
            base_url=self.base_url, api_key=self.api_key, concurrency=self.concurrency,
            requests_per_minute=self.requests_per_minute, tokens_per_minute=self.tokens_per_minute,
            timeout_s=self.timeout_s, max_retries=self.max_retries, max_validation_retries=self.max_validation_retries,
            response_format=self.response_format, backoff_base_s=self.backoff_base_s,
        )
        return OnlineEngine(config, self.prices, log)

    def prepare(self, requests: Sequence[LLMRequest]) -> list[Prepared]:
        prepared = []
        for r in requests:
            settings = self.agent_settings(r.agent)
            prepared.append(Prepared(r, settings, cache_key(self.base_url, settings, r)))
        return prepared

    def run(self, requests: Sequence[LLMRequest], *, conn: duckdb.DuckDBPyConnection, scope: str,
            log: Callable[[str], None] = print) -> LLMRun:
        """Answer every request: from the cache where possible, else from the endpoint. Never raises per item."""
        ids = [r.custom_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{scope}: custom_id values must be unique")
        cache.ensure_tables(conn)
        prepared = self.prepare(requests)
        hits = cache.lookup(conn, [p.key for p in prepared])
        done: dict[str, LLMResult] = {}
        for p in prepared:
            hit = hits.get(p.key)
            if hit:
                done[p.request.custom_id] = LLMResult(
                    custom_id=p.request.custom_id, agent=p.request.agent, model=p.settings.model, cache_key=p.key,
                    status="ok", parsed=hit["parsed"], reasoning=hit["reasoning"], raw_text=hit["raw_text"],
                    cached=True, tokens_in=hit["tokens_in"], tokens_out=hit["tokens_out"],
                    usage_estimated=bool(hit["usage_estimated"]), cost_usd=0.0,
                    prompt_version=p.request.prompt_version)
        pending = [p for p in prepared if p.request.custom_id not in done]
        log(f"{scope}: {len(prepared)} item(s), {len(done)} from cache, {len(pending)} to call ({self.mode})")
        engine = self.engine(log)
        report = None
        if pending and self.mode == "online":
            buffer: list[LLMResult] = []

            def on_result(result: LLMResult) -> None:
                buffer.append(result)
                if len(buffer) >= FLUSH_EVERY:
                    cache.store(conn, buffer)
                    buffer.clear()

            fresh = asyncio.run(engine.run(pending, on_result))
            cache.store(conn, buffer)
        elif pending and self.mode == "batch":
            fresh, report = asyncio.run(run_batch_api(engine, pending, self.prices, poll_s=self.batch_poll_s,
                                                      max_rounds=self.batch_max_rounds, log=log))
            cache.store(conn, fresh)
        elif pending:
            fresh = queue_files(conn, engine, pending, scope)
        else:
            fresh = []
        done.update({r.custom_id: r for r in fresh})
        results = [done[r.custom_id] for r in requests]
        cache.record_calls(conn, scope, results)
        return LLMRun(results, report)


def llm_resource_from_env() -> LLMResource:
    """The LLM layer as configured by the environment: OPENAI_BASE_URL, OPENAI_API_KEY, CRMAGENT_LLM_MODEL,
    CRMAGENT_LLM_MODE, CRMAGENT_LLM_CONCURRENCY, CRMAGENT_LLM_MAX_RETRIES (transport retries per call; 0 fails fast
    against an endpoint known to be down)."""
    return LLMResource(
        configured=bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")),
        base_url=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None,
        default_model=os.environ.get("CRMAGENT_LLM_MODEL") or "gpt-4o",
        mode=os.environ.get("CRMAGENT_LLM_MODE") or "online",
        concurrency=int(os.environ.get("CRMAGENT_LLM_CONCURRENCY") or 16),
        max_retries=int(os.environ.get("CRMAGENT_LLM_MAX_RETRIES") or 5),
    )
