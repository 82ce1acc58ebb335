"""TemplateAgent on an LLM, against a real OpenAI-compatible server on 127.0.0.1: what a rewrite request says,
and that a rewrite which breaks a guardrail never comes back `ok` with another writer's text unannounced."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from crmagent_dagster.adhoc import rewrite_file
from crmagent_dagster.llm import LLMResource
from fake_openai import FakeOpenAI, Reply

GLOBE = {"segment": "potential_new_customers", "channel": "sms", "title": "",
         "body": "Globe: Miss ka na namin, ka-Globe! Balik-saya with GoUNLI350: UNLI data, calls & texts for 7 days, "
                 "P350 lang! Dial *143# o i-register sa GlobeOne app hanggang Aug 30. Text STOP to 2882."}
CART = {"segment": "abandoned_cart_buyers", "title": "Did you forget something?", "currency": "RM",
        "body": "You left items in your cart. Get RM3 off with code SAVE3 until 30 Jun. Just letting you know.",
        "voucher_type": "fixed_amount_off", "discount_value": 3, "voucher_code": "SAVE3"}
TOO_LONG = {"segment": "new_buyers", "title": "Your voucher",
            "body": " ".join(f"Code NEXT{i}0 gives RM{i} off at shop{i}.example.my until 30 Jun." for i in range(1, 6))}
AS_OF = date(2025, 6, 1)


def original_of(prompt: str) -> tuple[str, str]:
    block = prompt.split("<merchant_text>")[1].split("</merchant_text>")[0].strip()
    title, body = re.match(r"Title: (.*)\nBody: (.*)", block, re.S).groups()
    return title, body


def script(body: dict, n: int) -> Reply:
    schema = body["response_format"]["json_schema"]["name"]
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if schema == "Audit":
        return Reply(content=json.dumps({"error_type": "audience_assumption_error" if "Globe" in prompt
                                         else "weak_call_to_action", "feedback": "AUDIT-FEEDBACK-MARKER"}))
    if schema == "Rewrite":
        title, text = original_of(prompt)
        if "Globe" in prompt:  # a faithful edit: drop the assumption, keep every term
            return Reply(content=json.dumps({"title": title, "body": text.replace("Miss ka na namin, ka-Globe! ", "")}))
        return Reply(content=json.dumps({"title": "Fresh title", "body": "Clear offer. Shop now!"}))  # drops terms
    if schema == "Scores":
        return Reply(content=json.dumps({k: (3 if "score" in k else "ok") for k in (
            "audience_match_score_a", "audience_match_reason_a", "marketing_score_a", "marketing_reason_a",
            "audience_match_score_b", "audience_match_reason_b", "marketing_score_b", "marketing_reason_b")}))
    if schema == "Preference":
        return Reply(content=json.dumps({"preferred": "B", "reason": "ok"}))
    return Reply(status=400)


def run(tmp_path: Path, lines: list[dict]) -> tuple[list[dict], FakeOpenAI]:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    with FakeOpenAI(script) as server:
        llm = LLMResource(configured=True, base_url=server.base_url, api_key="k", default_model="writer",
                          max_validation_retries=1, backoff_base_s=0.01)
        rewrite_file(src, out, llm, as_of=AS_OF)
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()], server


def test_the_rewrite_request_states_audience_audit_language_channel_and_the_stated_terms(tmp_path):
    records, server = run(tmp_path, [GLOBE])
    prompt = next(b["messages"][-1]["content"] for b in server.bodies
                  if b["response_format"]["json_schema"]["name"] == "Rewrite")
    assert "Audience segment: Potential New Customers. They have never bought from the shop" in prompt
    assert "The audit found: audience assumption error. AUDIT-FEEDBACK-MARKER" in prompt
    assert "Write in Tagalog" in prompt and "Channel: sms" in prompt and "at most 459" in prompt
    terms_line = next(line for line in prompt.splitlines() if line.startswith("Terms the original states"))
    for term in ("GoUNLI350", "P350", "*143#", "GlobeOne", "Aug 30", "2882", "7 days"):
        assert term in terms_line, term
    assert "Voucher: none" in prompt and "<merchant_text>" in prompt
    # the LLM's faithful edit is delivered as it wrote it
    r = records[0]
    assert r["status"] == "ok" and r["backend"]["writer"] == "llm" and not r["fallback"]["replaced_by_rules"]
    assert "Miss ka na namin" not in r["rewrite"]["body"] and "P350" in r["rewrite"]["body"]


def test_a_guardrail_failure_never_yields_ok_with_another_writers_text_unannounced(tmp_path):
    records, server = run(tmp_path, [CART, TOO_LONG])
    cart, long_ = records
    # The LLM dropped RM3, SAVE3 and 30 Jun and was asked again with the violations (once per template over the
    # wire: its second re-ask is the same conversation, answered from the cache)...
    asked_again = [b for b in server.bodies if "breaks these rules: terms_kept" in b["messages"][-1]["content"]]
    assert len(asked_again) == 2
    # ...so the rule edit stands in where it passes every check itself, and the record says so and why.
    assert cart["status"] == "ok" and cart["backend"] == {**cart["backend"], "writer": "rules", "attempted": "llm"}
    assert cart["fallback"]["replaced_by_rules"] and "terms_kept" in cart["fallback"]["reason"]
    assert cart["guardrails"]["passed"] and cart["rewrite"]["body"] != "Clear offer. Shop now!"
    assert "RM3" in cart["rewrite"]["body"] and "SAVE3" in cart["rewrite"]["body"]
    # Where the rule edit cannot pass either (the terms alone do not fit a push), the LLM's failed text is kept
    # for review, the record is rejected with both sets of reasons, and the original is what goes out.
    assert long_["status"] == "rejected" and long_["rewrite"]["title"] == "Fresh title"
    assert "terms_kept" in long_["error"] and "cannot stand in" in long_["error"] and "length_ok" in long_["error"]
    assert long_["delivered"]["from"] == "original" and long_["delivered"]["body"] == TOO_LONG["body"]
    assert long_["scores"] is None and long_["preference"] is None  # nothing rejected is judged


def test_files_mode_one_requests_file_per_run_through_the_cli(tmp_path):
    """CRMAGENT_LLM_MODE=files: every request a run needs goes into one file, answers come back in one file."""
    import os
    import subprocess
    import sys

    crmagent = Path(sys.executable).parent / "crmagent"
    db, src, out = tmp_path / "wh.duckdb", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in (GLOBE, CART)), encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "CRMAGENT_LLM_MODE": "files",
           "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CRMAGENT_DUCKDB_PATH": str(db)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([crmagent, *args], capture_output=True, text=True, env=env)

    def answer(requests_file: Path, reply: dict) -> Path:
        results = tmp_path / f"results-{requests_file.stem}.jsonl"
        lines = []
        for line in requests_file.read_text(encoding="utf-8").splitlines():
            req = json.loads(line)
            body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(reply)}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
            lines.append(json.dumps({"custom_id": req["custom_id"], "response": {"status_code": 200, "body": body}}))
        results.write_text("\n".join(lines) + "\n")
        return results

    rewrite = ("rewrite", "--in", str(src), "--out", str(out), "--db", str(db), "--as-of", "2025-06-01")
    assert cli(*rewrite).returncode == 3  # nothing failed: the answers are not in yet
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["status"] == "failed" and "awaiting batch results" in r["error"] for r in records)

    first = tmp_path / "requests-1.jsonl"
    done = cli("batch", "export", "--out", str(first))
    assert done.returncode == 0 and "2 request(s)" in done.stdout
    ids = [json.loads(x)["custom_id"] for x in first.read_text().splitlines()]
    assert ids == ["template_audits|adhoc|abandoned_cart_buyers#line-2|original",
                   "template_audits|adhoc|potential_new_customers#line-1|original"]
    done = cli("batch", "import", "--in", str(answer(first, {"error_type": "weak_call_to_action", "feedback": "f"})))
    assert done.returncode == 0 and "2 answer(s) cached" in done.stdout, done.stdout + done.stderr

    assert cli(*rewrite).returncode == 3  # the audits are answered now: the rewrites are what is pending
    second = tmp_path / "requests-2.jsonl"
    assert cli("batch", "export", "--out", str(second)).returncode == 0
    ids = [json.loads(x)["custom_id"] for x in second.read_text().splitlines()]
    assert ids == ["template_rewrites|adhoc|abandoned_cart_buyers#line-2",
                   "template_rewrites|adhoc|potential_new_customers#line-1"]
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(json.dumps({"custom_id": "nobody#x", "response": {"status_code": 200, "body": {}}}) + "\n")
    done = cli("batch", "import", "--in", str(stranger))
    assert done.returncode == 1 and "unmatched custom_id" in done.stderr  # loud, and nothing is lost
