"""Requests, results, schemas, parsing, cache keys and costs: the pure parts of the LLM layer."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

AGENTS = ("content", "template", "evaluate", "audit")


@dataclass(frozen=True)
class AgentSettings:
    """What one agent sends: its own model, sampling and chain-of-thought switch (Table 3 ablations)."""

    model: str
    temperature: float = 0.2
    max_tokens: int = 800
    chain_of_thought: bool = False


@dataclass(frozen=True)
class LLMRequest:
    """One item of work. `custom_id` says what it is (e.g. 'rewrite|2025-04|new_buyers|<aggregate_id>')."""

    custom_id: str
    agent: str
    messages: tuple[dict[str, str], ...]
    schema: type[BaseModel]
    prompt_version: str = ""

    def __post_init__(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"{self.custom_id}: unknown agent {self.agent!r}; expected one of {AGENTS}")


@dataclass
class LLMResult:
    custom_id: str
    agent: str
    model: str
    cache_key: str
    status: str  # "ok" | "failed" | "waiting" (files mode: the request waits for a batch results file)
    parsed: dict[str, Any] | None = None
    reasoning: str | None = None
    raw_text: str | None = None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    tokens_in: int | None = None
    tokens_out: int | None = None
    usage_estimated: bool = False
    latency_s: float = 0.0
    cost_usd: float | None = None
    prompt_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def waiting(self) -> bool:
        return self.status == "waiting"


def combined_status(*results: "LLMResult") -> str:
    """One item's status from the calls it needs: failed if any failed, else waiting if any waits, else ok."""
    if any(not r.ok and not r.waiting for r in results):
        return "failed"
    return "waiting" if any(r.waiting for r in results) else "ok"


class ReplyInvalid(ValueError):
    """A reply that is not JSON, or JSON that does not match the schema; the message is fed back."""


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI's strict structured outputs accept (a fresh copy)."""
    return copy.deepcopy(_strict_json_schema(model))


@functools.lru_cache(maxsize=256)
def _strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    # Generating a schema costs ~0.4 ms and every request needs it several times: compute once per model.
    schema = copy.deepcopy(model.model_json_schema())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@functools.lru_cache(maxsize=256)
def reply_model(schema: type[BaseModel], chain_of_thought: bool) -> type[BaseModel]:
    """With chain of thought the model first writes `reasoning`, then the `answer` in the agent's schema."""
    if not chain_of_thought:
        return schema
    return create_model(f"{schema.__name__}WithReasoning", reasoning=(str, ...), answer=(schema, ...))


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def extract_json(text: str | None) -> Any:
    """Parse a reply that should be a JSON object; tolerate code fences and prose around one object."""
    if text is None or not text.strip():
        raise ReplyInvalid("the reply was empty")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except json.JSONDecodeError as first:
        start, end = body.find("{"), body.rfind("}")
        if start == -1:
            raise ReplyInvalid("the reply contains no JSON object") from None
        if end > start:  # prose around one object
            try:
                return json.loads(body[start : end + 1])
            except json.JSONDecodeError as e:
                first = e
        raise ReplyInvalid(f"the reply is not valid JSON ({first.msg} at char {first.pos})") from None


def parse_reply(text: str | None, schema: type[BaseModel], chain_of_thought: bool) -> tuple[dict[str, Any], str | None]:
    """Validate a reply; returns (answer as a dict, reasoning or None). Raises ReplyInvalid."""
    data = extract_json(text)
    try:
        validated = reply_model(schema, chain_of_thought).model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors())
        raise ReplyInvalid(f"the JSON does not match the schema: {problems}") from None
    if chain_of_thought:
        return validated.answer.model_dump(mode="json"), validated.reasoning
    return validated.model_dump(mode="json"), None


def cache_key(endpoint: str, settings: AgentSettings, request: LLMRequest) -> str:
    """Key of the *logical* call: endpoint, model, rendered messages, schema and sampling settings.

    Independent of the wire format (json_schema vs instructions), so a fallback never re-pays.
    """
    payload = {
        "endpoint": endpoint.rstrip("/"),
        "model": settings.model,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "chain_of_thought": settings.chain_of_thought,
        "messages": list(request.messages),
        "schema": _strict_json_schema(reply_model(request.schema, settings.chain_of_thought)),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def estimate_tokens(text: str) -> int:
    """About four characters a token: used only when an endpoint omits `usage`."""
    return max(1, math.ceil(len(text) / 4))


def cost_usd(prices: dict[str, list[float]], model: str, tokens_in: int | None, tokens_out: int | None,
             batch: bool = False) -> float | None:
    """Estimated cost from a price table {model: [USD per 1M input tokens, USD per 1M output tokens]}."""
    price = prices.get(model)
    if price is None or tokens_in is None or tokens_out is None:
        return None
    usd = (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
    return usd * 0.5 if batch else usd  # the Batch API bills half


def redact(text: str, *secrets: str | None) -> str:
    """Remove secrets (the API key) from any text we store or log."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
