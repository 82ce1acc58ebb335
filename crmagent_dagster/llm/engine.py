"""The online engine: many chat-completion calls in flight, bounded, rate limited, retried and validated.

Transport faults (timeouts, connection errors, 429 honouring Retry-After, 5xx) are retried with
exponential backoff and jitter by tenacity; other 4xx fail the item at once. A reply that is not
valid JSON for the schema is retried with the validation error fed back. Whatever still fails
becomes a failed LLMResult carrying the error and raw text: one item never fails the batch.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from aiolimiter import AsyncLimiter
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from crmagent_dagster.llm.core import (
    AgentSettings,
    LLMRequest,
    LLMResult,
    ReplyInvalid,
    cost_usd,
    estimate_tokens,
    parse_reply,
    redact,
    reply_model,
    strict_json_schema,
)

FORMATS = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class EngineConfig:
    base_url: str
    api_key: str | None
    concurrency: int = 16
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    max_validation_retries: int = 2
    response_format: str = "auto"  # auto | json_schema | json_object | none
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_cap_s: float = 120.0
    rate_period_s: float = 60.0  # the "per minute" window; only tests shorten it


@dataclass(frozen=True)
class Prepared:
    request: LLMRequest
    settings: AgentSettings
    key: str


class EmptyReply(RuntimeError):
    """A 200 reply without choices: treated like a transient server fault."""


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.APIResponseValidationError,
                        json.JSONDecodeError, EmptyReply)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds asked for by a 429's Retry-After (or retry-after-ms) header, if any."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def _format_rejected(exc: BaseException) -> bool:
    """A 400 that says the endpoint does not support the structured-output parameter we sent."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    text = str(exc).lower()
    return "response_format" in text or "json_schema" in text or "json_object" in text


class OnlineEngine:
    def __init__(self, config: EngineConfig, prices: dict[str, list[float]], log: Callable[[str], None] = print):
        self.config = config
        self.prices = prices
        self.log = log
        self.format = "json_schema" if config.response_format == "auto" else config.response_format
        self._exp = wait_random_exponential(multiplier=config.backoff_base_s, max=config.backoff_max_s)
        self.in_flight = 0
        self.max_in_flight = 0

    # --- wire format -------------------------------------------------------------------------------
    def body(self, p: Prepared, messages: Sequence[dict[str, str]]) -> dict[str, Any]:
        model = reply_model(p.request.schema, p.settings.chain_of_thought)
        schema = strict_json_schema(model)  # a copy: the body is handed to other code
        system: list[str] = []
        if p.settings.chain_of_thought:
            system.append("First think step by step in the `reasoning` field, then give your final answer in `answer`.")
        if self.format != "json_schema":
            system.append("Reply with only one JSON object, no prose, matching this JSON schema:\n"
                          + json.dumps(schema, ensure_ascii=False))
        wire = ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + list(messages)
        body: dict[str, Any] = {"model": p.settings.model, "messages": wire, "temperature": p.settings.temperature,
                                "max_tokens": p.settings.max_tokens}
        if self.format == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}
        elif self.format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _wait(self, state: RetryCallState) -> float:
        asked = retry_after_s(state.outcome.exception() if state.outcome else None)
        if asked is not None:
            return min(asked, self.config.retry_after_cap_s)
        return self._exp(state)

    # --- one call ----------------------------------------------------------------------------------
    async def _create(self, client: openai.AsyncOpenAI, p: Prepared, messages) -> Any:
        """One HTTP call; in auto mode, step down json_schema -> json_object -> none while the endpoint rejects it."""
        body = self.body(p, messages)
        while True:
            try:
                # The body is already exactly what goes on the wire: post it as-is (the client's documented
                # route for prepared requests) instead of re-walking the nested schema on every call.
                return await client.post("/chat/completions", cast_to=ChatCompletion, body=body)
            except openai.BadRequestError as e:
                used = (body.get("response_format") or {}).get("type", "none")
                if self.config.response_format != "auto" or not _format_rejected(e) or used == "none":
                    raise
                if self.format == used:  # concurrent calls may already have stepped down
                    self.format = FORMATS[FORMATS.index(used) + 1]
                    self.log(f"endpoint rejected response_format '{used}'; falling back to '{self.format}'")
                body = self.body(p, messages)

    async def _send(self, client: openai.AsyncOpenAI, p: Prepared, messages, limits, tries: list[int]) -> Any:
        """One chat completion with transport retries; counts attempts in tries[0] even when it raises."""
        retrying = AsyncRetrying(stop=stop_after_attempt(self.config.max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(retryable), reraise=True)
        async for attempt in retrying:
            with attempt:
                tries[0] += 1
                for limiter, amount in limits(lambda: self.body(p, messages)):
                    await limiter.acquire(amount)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    response = await self._create(client, p, messages)
                finally:
                    self.in_flight -= 1
                if not getattr(response, "choices", None):
                    raise EmptyReply("the endpoint answered without choices")
                return response
        raise AssertionError("unreachable")

    async def call(self, client: openai.AsyncOpenAI, p: Prepared, limits) -> LLMResult:
        started = time.perf_counter()
        result = LLMResult(custom_id=p.request.custom_id, agent=p.request.agent, model=p.settings.model,
                           cache_key=p.key, status="failed", prompt_version=p.request.prompt_version)
        messages = list(p.request.messages)
        tokens_in = tokens_out = 0
        estimated = False
        tries = [0]
        try:
            for round_ in range(self.config.max_validation_retries + 1):
                response = await self._send(client, p, messages, limits, tries)
                text = response.choices[0].message.content
                result.raw_text = text
                usage = getattr(response, "usage", None)
                if usage is not None and usage.prompt_tokens is not None:
                    tokens_in += usage.prompt_tokens
                    tokens_out += usage.completion_tokens or 0
                else:  # servers such as some llama.cpp builds omit usage
                    estimated = True
                    tokens_in += estimate_tokens(json.dumps(self.body(p, messages)["messages"]))
                    tokens_out += estimate_tokens(text or "")
                try:
                    result.parsed, result.reasoning = parse_reply(text, p.request.schema, p.settings.chain_of_thought)
                    result.status, result.error = "ok", None
                    break
                except ReplyInvalid as e:
                    result.error = f"invalid reply after {round_ + 1} attempt(s): {e}"
                    messages = messages + [
                        {"role": "assistant", "content": text or ""},
                        {"role": "user", "content": f"Your reply was not valid: {e}. "
                                                    "Reply again with only the JSON object that matches the schema."},
                    ]
        except Exception as e:  # noqa: BLE001 - a failed call fails its item, never the batch
            result.error = redact(f"{type(e).__name__}: {e}", self.config.api_key)
        result.attempts = tries[0]
        result.tokens_in, result.tokens_out, result.usage_estimated = tokens_in or None, tokens_out or None, estimated
        result.latency_s = time.perf_counter() - started
        result.cost_usd = cost_usd(self.prices, result.model, result.tokens_in, result.tokens_out)
        return result

    # --- many calls --------------------------------------------------------------------------------
    async def run(self, prepared: Sequence[Prepared], on_result: Callable[[LLMResult], None]) -> list[LLMResult]:
        cfg = self.config
        rpm = AsyncLimiter(cfg.requests_per_minute, cfg.rate_period_s) if cfg.requests_per_minute else None
        tpm = AsyncLimiter(cfg.tokens_per_minute, cfg.rate_period_s) if cfg.tokens_per_minute else None

        def limits(body: Callable[[], dict[str, Any]]):
            out = []
            if rpm:
                out.append((rpm, 1))
            if tpm:  # prompt estimate plus the reply budget, capped at the bucket size
                wire = body()
                want = estimate_tokens(json.dumps(wire["messages"])) + wire.get("max_tokens", 0)
                out.append((tpm, min(want, cfg.tokens_per_minute)))
            return out

        semaphore = asyncio.Semaphore(cfg.concurrency)
        client = openai.AsyncOpenAI(api_key=cfg.api_key or "no-key", base_url=cfg.base_url, max_retries=0,
                                    timeout=cfg.timeout_s)

        async def bounded(p: Prepared) -> LLMResult:
            async with semaphore:
                return await self.call(client, p, limits)

        results: list[LLMResult] = []
        last_log = time.monotonic()
        try:
            for done in asyncio.as_completed([bounded(p) for p in prepared]):
                result = await done
                results.append(result)
                on_result(result)
                if time.monotonic() - last_log > 10 or len(results) == len(prepared):
                    failed = sum(not r.ok for r in results)
                    self.log(f"LLM calls: {len(results)}/{len(prepared)} done, {failed} failed")
                    last_log = time.monotonic()
        finally:
            await client.close()
        return results

