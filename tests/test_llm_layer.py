"""The LLM layer against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/fake_openai.py)."""

import json
import time

import dagster as dg
import duckdb
import pytest

from crmagent_dagster.llm import LLMRequest, LLMResource
from crmagent_dagster.llm.batch import export_jsonl, export_pending, import_file, import_results
from crmagent_dagster.llm.replies import Preference, Rewrite
from crmagent_dagster.resources import CRMWarehouse
from fake_openai import FakeOpenAI, Reply

GOOD = json.dumps({"title": "Your cart is waiting", "body": "Check out now!"})


def requests(n: int, agent: str = "template", schema=Rewrite, text: str = "rewrite") -> list[LLMRequest]:
    return [LLMRequest(custom_id=f"item-{i}", agent=agent, schema=schema,
                       messages=({"role": "user", "content": f"{text} {i}"},)) for i in range(n)]


def item_of(body: dict) -> str:
    return body["messages"][-1]["content"].split()[-1] if body["messages"][-1]["role"] == "user" else "?"


def resource(server: FakeOpenAI, **kw) -> LLMResource:
    base = dict(base_url=server.base_url, api_key="test-key", default_model="gpt-4o-mini", concurrency=8,
                timeout_s=5, max_retries=3, backoff_base_s=0.01)
    return LLMResource(**{**base, **kw})


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def by_id(run):
    return {r.custom_id: r for r in run.results}


def test_structured_output_success_records_tokens_and_cost(conn):
    with FakeOpenAI(lambda body, n: Reply(content=GOOD)) as server:
        run = resource(server).run(requests(5), conn=conn, scope="t")
    assert all(r.ok and r.parsed == json.loads(GOOD) for r in run.results)
    sent = server.bodies[0]
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["title", "body"] and schema["additionalProperties"] is False
    md = run.metadata()
    assert md["llm_requests"] == 5 and md["llm_tokens_in"] == 5 * 11 and md["llm_tokens_out"] == 5 * 7
    assert md["llm_cost_usd"] == pytest.approx(5 * (11 * 0.15 + 7 * 0.60) / 1e6)


def test_429_with_retry_after_is_honoured(conn):
    seen: dict[str, int] = {}

    def script(body, n):
        item = item_of(body)
        seen[item] = seen.get(item, 0) + 1
        if item == "0" and seen[item] == 1:
            return Reply(status=429, headers={"Retry-After": "1"})
        return Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        started = time.perf_counter()
        run = resource(server).run(requests(3), conn=conn, scope="t")
    assert all(r.ok for r in run.results)
    assert by_id(run)["item-0"].attempts == 2 and by_id(run)["item-1"].attempts == 1
    assert time.perf_counter() - started >= 0.95  # waited the server's Retry-After, not the 10 ms backoff


def test_5xx_is_retried_then_fails_only_that_item(conn):
    def script(body, n):
        return Reply(status=500) if item_of(body) == "1" else Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        run = resource(server, max_retries=2).run(requests(4), conn=conn, scope="t")
    bad = by_id(run)["item-1"]
    assert not bad.ok and bad.attempts == 3 and "InternalServerError" in bad.error
    assert sum(r.ok for r in run.results) == 3
    assert server.requests == 3 + 3
    stored = conn.execute("SELECT status, error FROM llm.calls WHERE custom_id = 'item-1'").fetchall()[0]
    assert stored[0] == "failed" and "500" in stored[1]


def test_other_4xx_fail_at_once(conn):
    with FakeOpenAI(lambda body, n: Reply(status=404)) as server:
        run = resource(server).run(requests(2), conn=conn, scope="t")
    assert [r.attempts for r in run.results] == [1, 1] and server.requests == 2
    assert all("NotFoundError" in r.error for r in run.results)


def test_slow_reply_past_the_timeout_is_retried_then_failed(conn):
    def script(body, n):
        return Reply(content=GOOD, delay_s=1.5) if item_of(body) == "0" else Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        run = resource(server, timeout_s=0.4, max_retries=1).run(requests(3), conn=conn, scope="t")
    slow = by_id(run)["item-0"]
    assert not slow.ok and slow.attempts == 2 and "Timeout" in slow.error
    assert by_id(run)["item-1"].ok and by_id(run)["item-2"].ok


def test_malformed_json_is_fed_back_and_fixed(conn):
    def script(body, n):
        return Reply(content='{"title": "Cart",') if len(body["messages"]) == 1 else Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        run = resource(server).run(requests(1), conn=conn, scope="t")
    assert run.results[0].ok and run.results[0].attempts == 2
    retry = server.bodies[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"title": "Cart",'}
    assert "not valid JSON" in retry[-1]["content"]


def test_off_schema_json_fails_with_the_raw_text_recorded(conn):
    with FakeOpenAI(lambda body, n: Reply(content='{"headline": "x"}')) as server:
        run = resource(server, max_validation_retries=2).run(requests(2), conn=conn, scope="t")
    assert server.requests == 2 * 3
    r = run.results[0]
    assert not r.ok and r.raw_text == '{"headline": "x"}' and "title" in r.error
    raw = conn.execute("SELECT raw_text FROM llm.calls WHERE custom_id = 'item-0'").fetchall()[0][0]
    assert raw == '{"headline": "x"}'


def test_missing_usage_is_estimated_and_flagged(conn):
    with FakeOpenAI(lambda body, n: Reply(content=GOOD, usage=False)) as server:
        run = resource(server).run(requests(2), conn=conn, scope="t")
    r = run.results[0]
    assert r.ok and r.usage_estimated and r.tokens_in > 0 and r.tokens_out > 0
    assert run.metadata()["llm_usage_estimated"] == 2


def test_endpoint_without_response_format_falls_back_to_instructions(conn):
    def script(body, n):
        if "response_format" in body:
            return Reply(status=400, json_body={"error": {"message": "response_format is not supported"}})
        return Reply(content=f"Sure! ```json\n{GOOD}\n```")

    with FakeOpenAI(script) as server:
        run = resource(server).run(requests(3), conn=conn, scope="t")
    assert all(r.ok for r in run.results)
    plain = [b for b in server.bodies if "response_format" not in b]
    assert plain and "JSON schema" in plain[0]["messages"][0]["content"]
    assert plain[0]["messages"][-1]["content"].startswith("rewrite")  # merchant text stays in its own message


def test_api_key_never_stored_or_logged(conn):
    secret = "sk-test-SECRET-4242"

    def script(body, n):  # a hostile server that echoes the key back in its error
        return Reply(status=401, json_body={"error": {"message": f"bad key {secret}"}})

    logs: list[str] = []
    with FakeOpenAI(script) as server:
        run = resource(server, api_key=secret).run(requests(2), conn=conn, scope="t", log=logs.append)
    assert server.auth_headers[0] == f"Bearer {secret}"  # it was sent ...
    assert all(secret not in (r.error or "") for r in run.results)  # ... but never kept
    dump = json.dumps(conn.execute("SELECT * FROM llm.calls").fetchall(), default=str)
    assert secret not in dump and "***" in dump
    assert secret not in json.dumps(run.metadata()) and all(secret not in line for line in logs)


def test_concurrency_bound_and_throughput(conn):
    latency, n, c = 0.2, 40, 8
    with FakeOpenAI(lambda body, k: Reply(content=GOOD, delay_s=latency)) as server:
        started = time.perf_counter()
        run = resource(server, concurrency=c).run(requests(n), conn=conn, scope="t")
        elapsed = time.perf_counter() - started
    assert all(r.ok for r in run.results)
    assert server.max_in_flight == c  # reached and never exceeded
    ideal = n / c * latency
    assert ideal * 0.95 <= elapsed <= ideal * 1.8, (elapsed, ideal)


def test_requests_and_tokens_per_minute_are_limited(conn):
    import dataclasses

    from crmagent_dagster.llm.engine import OnlineEngine

    with FakeOpenAI(lambda body, n: Reply(content=GOOD)) as server:
        llm = resource(server, concurrency=32)
        engine = llm.engine()
        prepared = llm.prepare(requests(12))
        # A one-second "minute" keeps the test short: 4 requests per window, so 12 need about 2 s.
        fast = OnlineEngine(dataclasses.replace(engine.config, requests_per_minute=4, rate_period_s=1.0), {})
        started = time.perf_counter()
        results = __import__("asyncio").run(fast.run(prepared, lambda r: None))
        rpm_elapsed = time.perf_counter() - started
        tokens = fast.body(prepared[0], prepared[0].request.messages)
        per_call = len(json.dumps(tokens["messages"])) // 4 + 1 + tokens["max_tokens"]
        slow = OnlineEngine(dataclasses.replace(engine.config, tokens_per_minute=3 * per_call, rate_period_s=1.0), {})
        started = time.perf_counter()
        __import__("asyncio").run(slow.run(prepared[:6], lambda r: None))
        tpm_elapsed = time.perf_counter() - started
    assert all(r.ok for r in results)
    assert 1.8 <= rpm_elapsed <= 4.0, rpm_elapsed
    assert 0.8 <= tpm_elapsed <= 3.0, tpm_elapsed  # 3 calls' tokens per window: the second three wait ~1 s


def test_per_agent_models_and_chain_of_thought(conn):
    def script(body, n):
        if body["model"] == "judge-model":
            return Reply(content=json.dumps({"reasoning": "B states the offer.", "answer": {"preferred": "B",
                                                                                           "reason": "clearer"}}))
        return Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        res = resource(server, template={"model": "writer-model"},
                       evaluate={"model": "judge-model", "chain_of_thought": True, "temperature": 0.0})
        run = res.run(requests(1) + [LLMRequest("judge-0", "evaluate", ({"role": "user", "content": "A or B"},),
                                                Preference)], conn=conn, scope="t")
    models = {b["model"] for b in server.bodies}
    assert models == {"writer-model", "judge-model"}
    judge = by_id(run)["judge-0"]
    assert judge.ok and judge.parsed == {"preferred": "B", "reason": "clearer"}
    assert judge.reasoning == "B states the offer."
    judge_body = next(b for b in server.bodies if b["model"] == "judge-model")
    assert judge_body["temperature"] == 0.0
    assert judge_body["response_format"]["json_schema"]["schema"]["required"] == ["reasoning", "answer"]


# --- cache, through real materializations ------------------------------------------------------------
PROMPTS = ["rewrite"] * 6


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["2025-04|new_buyers"]))
def llm_probe(context: dg.AssetExecutionContext, duckdb: CRMWarehouse, llm: LLMResource) -> dg.MaterializeResult:
    reqs = [LLMRequest(f"item-{i}", "template", ({"role": "user", "content": f"{p} {i}"},), Rewrite)
            for i, p in enumerate(PROMPTS)]
    with duckdb.get_connection() as conn:
        run = llm.run(reqs, conn=conn, scope=f"llm_probe|{context.partition_key}", log=context.log.info)
    return dg.MaterializeResult(metadata=run.metadata())


def test_cache_makes_a_rerun_free_and_a_prompt_change_calls_only_what_it_touches(tmp_path):
    failing = {"item-2"}

    def script(body, n):
        return Reply(status=500) if f"item-{item_of(body)}" in failing else Reply(content=GOOD)

    with FakeOpenAI(script) as server:
        res = {"duckdb": CRMWarehouse(database=str(tmp_path / "wh.duckdb")), "llm": resource(server, max_retries=0)}

        def materialize():
            result = dg.materialize([llm_probe], partition_key="2025-04|new_buyers", resources=res)
            return result.asset_materializations_for_node("llm_probe")[0].metadata

        first = materialize()
        assert server.requests == 6 and first["llm_failures"].value == 1
        failing.clear()
        second = materialize()  # only the failed item is called again
        assert server.requests == 7 and second["llm_cache_hits"].value == 5 and second["llm_failures"].value == 0
        third = materialize()  # unchanged: zero requests
        assert server.requests == 7 and third["llm_cache_hits"].value == 6 and third["llm_requests"].value == 0
        PROMPTS[4] = "rewrite differently"
        try:
            fourth = materialize()
        finally:
            PROMPTS[4] = "rewrite"
        assert server.requests == 8 and fourth["llm_cache_hits"].value == 5


# --- batch -----------------------------------------------------------------------------------------
def batch_output(line: dict, content: str = GOOD) -> dict:
    body = {"id": "c", "object": "chat.completion", "created": 0, "model": line["body"]["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}
    return {"id": "r", "custom_id": line["custom_id"], "response": {"status_code": 200, "request_id": "q", "body": body},
            "error": None}


def test_files_mode_one_requests_file_out_one_results_file_in(tmp_path, conn):
    llm = LLMResource(base_url="http://127.0.0.1:9/v1", default_model="gpt-4o", mode="files", batch_dir=str(tmp_path))
    reqs = requests(4)
    first = llm.run(reqs, conn=conn, scope="rewrites|2025-04|new_buyers")
    llm.run(requests(2, text="other"), conn=conn, scope="rewrites|2025-04|price_drop")  # a second scope, same run
    assert all(not r.ok and "awaiting batch results" in r.error for r in first.results)
    assert not list(tmp_path.glob("*/"))  # no folder per scope: requests wait in DuckDB until exported

    out = tmp_path / "requests.jsonl"
    assert export_pending(conn, out) == 6  # one file for everything pending
    exported = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in exported] == [f"rewrites|2025-04|new_buyers#item-{i}" for i in range(4)] + \
        [f"rewrites|2025-04|price_drop#item-{i}" for i in range(2)]  # the scope rides inside the custom_id
    assert all(x["url"] == "/v1/chat/completions" and x["body"]["model"] == "gpt-4o" for x in exported)

    lines = [json.dumps(batch_output(exported[0])), json.dumps(batch_output(exported[1])),
             json.dumps(batch_output(exported[1])),  # duplicate
             json.dumps({**batch_output(exported[2]), "response": {"status_code": 500, "body": {}}}),  # failed request
             '{"custom_id": "rewrites|2025-04|new_buyers#item-3", "response": ',  # truncated line
             json.dumps(batch_output({**exported[0], "custom_id": "stranger"})),  # unmatched
             json.dumps(batch_output(exported[4]))]  # the other scope, same file
    report = import_file(conn, lines, llm.prices)
    assert (report.matched, len(report.duplicates), len(report.unmatched), len(report.malformed), report.errors,
            report.ok) == (4, 1, 1, 1, 1, 3)
    second = llm.run(reqs, conn=conn, scope="rewrites|2025-04|new_buyers")
    assert {r.custom_id: r.ok for r in second.results} == {"item-0": True, "item-1": True, "item-2": False,
                                                           "item-3": False}
    assert second.metadata()["llm_cache_hits"] == 2
    # What is still open goes out again, and only that.
    assert export_pending(conn, out) == 3
    assert {json.loads(x)["custom_id"].split("#")[1] for x in out.read_text().splitlines()} == {"item-2", "item-3",
                                                                                                 "item-1"}


def test_import_rejects_non_json_and_keeps_good_lines(tmp_path):
    llm = LLMResource(base_url="http://127.0.0.1:9/v1")
    prepared = llm.prepare(requests(2))
    engine = llm.engine()
    path = export_jsonl(engine, prepared, tmp_path / "requests.jsonl")
    exported = [json.loads(x) for x in path.read_text().splitlines()]
    results, report = import_results(["not json at all", json.dumps(batch_output(exported[1]))], prepared, {})
    assert list(results) == ["item-1"] and results["item-1"].ok
    assert report.malformed == ["line 1: not JSON (Expecting value)"]


def test_batch_api_path_resubmits_only_expired_lines(conn):
    submitted: dict[str, int] = {}

    def batch_line(line: dict):
        submitted[line["custom_id"]] = submitted.get(line["custom_id"], 0) + 1
        if line["custom_id"] == "item-2" and submitted["item-2"] == 1:
            return None  # expired in the first batch
        return batch_output(line)

    with FakeOpenAI() as server:
        server.batch_line = batch_line
        llm = resource(server, mode="batch", batch_poll_s=0.01)
        run = llm.run(requests(4), conn=conn, scope="t")
    assert all(r.ok for r in run.results)
    assert len(server.batches) == 2
    second_batch = list(server.batches.values())[1]
    resubmitted = [json.loads(x)["custom_id"] for x in server.files[second_batch["input_file_id"]].decode().splitlines()]
    assert resubmitted == ["item-2"]
    assert server.requests == 0  # nothing went through the online route
