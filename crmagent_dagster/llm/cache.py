"""The persistent LLM cache and call log, in DuckDB schema `llm`.

llm.cache holds every *successful* reply by cache key, so a re-run pays nothing for them and
retries only what failed. It is written as results arrive, so a killed run keeps what it paid for.
llm.calls holds one row per request of the last run of each scope (asset + partition).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import polars as pl

from crmagent_dagster.llm.core import LLMResult
from crmagent_dagster.sql import registered_frame, run, transaction

DDL = """
CREATE SCHEMA IF NOT EXISTS llm;
CREATE TABLE IF NOT EXISTS llm.cache (
    cache_key VARCHAR PRIMARY KEY,
    model VARCHAR,
    agent VARCHAR,
    parsed_json VARCHAR,
    reasoning VARCHAR,
    raw_text VARCHAR,
    tokens_in BIGINT,
    tokens_out BIGINT,
    usage_estimated BOOLEAN,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS llm.calls (
    scope VARCHAR,
    custom_id VARCHAR,
    agent VARCHAR,
    model VARCHAR,
    prompt_version VARCHAR,
    cache_key VARCHAR,
    status VARCHAR,
    cached BOOLEAN,
    attempts INTEGER,
    tokens_in BIGINT,
    tokens_out BIGINT,
    usage_estimated BOOLEAN,
    latency_s DOUBLE,
    cost_usd DOUBLE,
    error VARCHAR,
    raw_text VARCHAR,
    recorded_at TIMESTAMP DEFAULT current_timestamp
);
"""


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            run(conn, statement)


def lookup(conn: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT cache_key, parsed_json, reasoning, raw_text, tokens_in, tokens_out, usage_estimated "
        "FROM llm.cache WHERE list_contains($keys, cache_key)", {"keys": list(set(keys))}
    ).fetchall()
    return {r[0]: {"parsed": json.loads(r[1]), "reasoning": r[2], "raw_text": r[3], "tokens_in": r[4],
                   "tokens_out": r[5], "usage_estimated": r[6]} for r in rows}


def store(conn: duckdb.DuckDBPyConnection, results: Iterable[LLMResult]) -> int:
    """Add successful, freshly called results to the cache (same key = same reply, so first one wins)."""
    rows = [{"cache_key": r.cache_key, "model": r.model, "agent": r.agent, "parsed_json": json.dumps(r.parsed),
             "reasoning": r.reasoning, "raw_text": r.raw_text, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
             "usage_estimated": r.usage_estimated} for r in results if r.ok and not r.cached]
    if not rows:
        return 0
    schema = {"cache_key": pl.Utf8, "model": pl.Utf8, "agent": pl.Utf8, "parsed_json": pl.Utf8, "reasoning": pl.Utf8,
              "raw_text": pl.Utf8, "tokens_in": pl.Int64, "tokens_out": pl.Int64, "usage_estimated": pl.Boolean}
    with registered_frame(conn, "__llm_new", pl.DataFrame(rows, schema=schema)):
        run(conn, "INSERT OR IGNORE INTO llm.cache BY NAME SELECT * FROM __llm_new")
    return len(rows)


def record_calls(conn: duckdb.DuckDBPyConnection, scope: str, results: Sequence[LLMResult]) -> None:
    """Replace the scope's call log with this run's results."""
    rows = [{"scope": scope, "custom_id": r.custom_id, "agent": r.agent, "model": r.model,
             "prompt_version": r.prompt_version, "cache_key": r.cache_key, "status": r.status, "cached": r.cached,
             "attempts": r.attempts, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
             "usage_estimated": r.usage_estimated, "latency_s": r.latency_s, "cost_usd": r.cost_usd,
             "error": r.error, "raw_text": None if r.ok else r.raw_text} for r in results]
    schema = {"scope": pl.Utf8, "custom_id": pl.Utf8, "agent": pl.Utf8, "model": pl.Utf8, "prompt_version": pl.Utf8,
              "cache_key": pl.Utf8, "status": pl.Utf8, "cached": pl.Boolean, "attempts": pl.Int32,
              "tokens_in": pl.Int64, "tokens_out": pl.Int64, "usage_estimated": pl.Boolean, "latency_s": pl.Float64,
              "cost_usd": pl.Float64, "error": pl.Utf8, "raw_text": pl.Utf8}
    with registered_frame(conn, "__llm_calls", pl.DataFrame(rows, schema=schema)), transaction(conn):
        run(conn, "DELETE FROM llm.calls WHERE scope = $scope", {"scope": scope})
        run(conn, "INSERT INTO llm.calls BY NAME SELECT * FROM __llm_calls")
