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
    # Taglish stays Taglish; an SMS is one body within the parts the original took (190 GSM-7 characters: 2 parts)
    assert "Write in Taglish" in prompt and "Channel: SMS: one body and no title" in prompt
    assert "Write one SMS body of at most 306 characters (2 SMS part(s)" in prompt and "leave the title empty" in prompt
    assert "Send date: 2025-06-01" in prompt and "What the message is: a promotional offer" in prompt
    terms_line = next(line for line in prompt.splitlines() if line.startswith("Terms the original states"))
    for term in ("GoUNLI350", "P350 (amount, a price)", "*143#", "GlobeOne", "Aug 30 (date, offer's deadline)", "2882",
                 "7 days", "STOP (keyword)"):
        assert term in terms_line, term
    assert "Voucher: none" in prompt and "<merchant_text>" in prompt
    # the LLM's faithful edit is delivered as it wrote it
    r = records[0]
    assert r["status"] == "ok" and r["backend"]["writer"] == "llm" and not r["fallback"]["replaced_by_rules"]
    assert "Miss ka na namin" not in r["rewrite"]["body"] and "P350" in r["rewrite"]["body"]


def test_a_guardrail_failure_never_yields_ok_with_another_writers_text_unannounced(tmp_path):
    records, server = run(tmp_path, [CART, TOO_LONG])
    cart, long_ = records
    # The LLM dropped RM3, SAVE3 and 30 Jun and was asked again with the violations, twice per template (the
    # configured rounds), each re-ask carrying the whole conversation so far...
    asked_again = [b for b in server.bodies if "That rewrite breaks these rules:\n- terms_kept: drops what the original "
                   "states" in b["messages"][-1]["content"]]
    assert len(asked_again) == 4 and sorted(len(b["messages"]) for b in asked_again) == [4, 4, 6, 6]
    assert "stopped after 2 re-ask(s)" in cart["fallback"]["reason"] and "stopped after 2 re-ask(s)" in long_["error"]
    # the re-ask says what failed and quotes the text that failed
    assert all('The text that failed: {"title": "Fresh title", "body": "Clear offer. Shop now!"}' in b["messages"][-1]["content"]
               for b in asked_again)
    # ...so the rule edit stands in where it passes every check itself, and the record says so and why.
    assert cart["status"] == "ok" and cart["backend"] == {**cart["backend"], "writer": "rules", "attempted": "llm"}
    assert cart["fallback"]["replaced_by_rules"] and "terms_kept" in cart["fallback"]["reason"]
    assert cart["guardrails"]["passed"] and cart["rewrite"]["body"] != "Clear offer. Shop now!"
    assert "RM3" in cart["rewrite"]["body"] and "SAVE3" in cart["rewrite"]["body"]
    # Where the rule edit cannot pass either (the terms alone do not fit a push), the LLM's failed text is kept
    # for review, the record is rejected with both sets of reasons, and the original is what goes out.
    assert long_["status"] == "rejected" and long_["rewrite"]["title"] == "Fresh title"
    assert "terms_kept" in long_["error"] and "the rule edit cannot stand in: it changes nothing" in long_["error"]
    assert long_["delivered"]["from"] == "original" and long_["delivered"]["body"] == TOO_LONG["body"]
    assert long_["scores"] is None and long_["preference"] is None  # nothing rejected is judged


def files_reply(body: dict) -> dict:
    """What a strong model would answer to each kind of request of this test's two lines."""
    schema = body["response_format"]["json_schema"]["name"]
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if schema == "Audit":  # the originals have an error; the rewrites have none
        return {"error_type": "none" if "Check out now" in prompt or "Balik-saya" in prompt.split("Original Template")[1][:60]
                and "Miss ka" not in prompt else "weak_call_to_action", "feedback": "f"}
    if schema == "Rewrite":
        title, text = original_of(prompt)
        return {"title": title, "body": text.replace("Miss ka na namin, ka-Globe! ", "").replace("Just letting you know.",
                                                                                               "Check out now!")}
    if schema == "Scores":
        return {k: (5 if k.endswith("_b") and "score" in k else 3 if "score" in k else "r") for k in (
            "audience_match_score_a", "audience_match_reason_a", "marketing_score_a", "marketing_reason_a",
            "audience_match_score_b", "audience_match_reason_b", "marketing_score_b", "marketing_reason_b")}
    a = prompt.split("Message A:")[1].split("Message B:")[0]
    worse = ("Miss ka na namin", "Just letting you know")
    return {"preferred": "B" if any(w in a for w in worse) else "A", "reason": "r"}


def test_files_mode_nothing_is_ok_until_every_stage_has_answered(tmp_path, monkeypatch, capsys):
    """CRMAGENT_LLM_MODE=files through the CLI's own entry point (in-process: a dozen runs; the console script
    itself is run in tests/test_landing_and_cli.py): each run writes what it still needs into the pending requests;
    a line is `waiting` (exit 3), naming the stage, until its audit, rewrite, scores, both-order judgment and the
    audit of the rewrite are all answered; only then `ok` (exit 0). Two input files on one --db keep their own
    requests, under their own scope and custom_ids."""
    import re
    from types import SimpleNamespace

    import duckdb

    from crmagent_dagster.cli import main

    db, src, out = tmp_path / "wh.duckdb", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in (GLOBE, CART)), encoding="utf-8")
    for name, value in {"HF_HUB_OFFLINE": "1", "CRMAGENT_LLM_MODE": "files", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                        "CRMAGENT_DUCKDB_PATH": str(db)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def cli(*args: str) -> SimpleNamespace:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        printed = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=printed.out, stderr=printed.err)

    def export_and_answer(n: int) -> list[str]:
        requests = tmp_path / f"requests-{n}.jsonl"
        assert cli("batch", "export", "--out", str(requests)).returncode == 0
        lines = [json.loads(x) for x in requests.read_text(encoding="utf-8").splitlines()]
        results = tmp_path / f"results-{n}.jsonl"
        results.write_text("".join(json.dumps({"custom_id": r["custom_id"], "response": {"status_code": 200, "body": {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(files_reply(r["body"]))}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}}}}) + "\n" for r in lines))
        done = cli("batch", "import", "--in", str(results))
        assert done.returncode == 0 and f"{len(lines)} answer(s) cached" in done.stdout, done.stdout + done.stderr
        return [r["custom_id"] for r in lines]

    def records() -> list[dict]:
        return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]

    rewrite = ("rewrite", "--in", str(src), "--out", str(out), "--db", str(db), "--as-of", "2025-06-01")
    done = cli(*rewrite)
    assert done.returncode == 3 and "2 line(s) wait for batch results" in done.stderr  # nothing failed: not in yet
    assert [(r["status"], r["waiting_for"]) for r in records()] == [("waiting", ["the audit of the original"])] * 2
    with duckdb.connect(str(db)) as conn:  # the calls are recorded as waiting, not failed
        assert {s for (s,) in conn.execute("SELECT DISTINCT status FROM llm.calls").fetchall()} == {"waiting"}

    ids = export_and_answer(1)
    scope = r"adhoc-[0-9a-f]{8}\|template_audits\|adhoc\|"
    assert len(ids) == 2 and all(re.fullmatch(scope + r"\w+#line-\d-[0-9a-f]{8}\|original", i) for i in ids), ids
    assert cli(*rewrite).returncode == 3  # the audits are answered: the rewrites are what waits
    assert [r["waiting_for"] for r in records()] == [["the rewrite"]] * 2
    export_and_answer(2)
    done = cli(*rewrite)
    # the rewrites pass their guardrails, but nothing is ok until it is judged
    assert done.returncode == 3, done.stdout + done.stderr
    assert all(r["status"] == "waiting" and r["rewrite"]["body"] and r["delivered"]["from"] == "original"
               and set(r["waiting_for"]) == {"scores", "judgment in both orders", "audit of the rewrite"}
               for r in records()), records()
    export_and_answer(3)
    done = cli(*rewrite)
    assert done.returncode == 0, done.stdout + done.stderr
    final = records()
    assert all(r["status"] == "ok" and r["scores"] and r["preference"]["verdict"] == "rewrite"
               and r["rewrite"]["error_type"] == "none" and r["delivered"]["from"] == "rewrite" for r in final), final
    assert "Miss ka na namin" not in final[0]["delivered"]["body"] and final[0]["delivered"]["title"] == ""

    # a second input file on the same --db: its requests wait beside the first file's, under their own ids
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({**CART, "body": CART["body"].replace("RM3", "RM4").replace("SAVE3", "SAVE4"),
                                 "discount_value": 4, "voucher_code": "SAVE4"}) + "\n", encoding="utf-8")
    assert cli("rewrite", "--in", str(other), "--out", str(tmp_path / "other.out"), "--db", str(db),
               "--as-of", "2025-06-01").returncode == 3
    src.write_text(json.dumps(GLOBE, ensure_ascii=False) + "\n" + json.dumps({**CART, "title": "Still there?"}) + "\n",
                   encoding="utf-8")
    assert cli(*rewrite).returncode == 3  # the first file changed a line: only that line waits again
    pending = tmp_path / "pending.jsonl"
    assert cli("batch", "export", "--out", str(pending)).returncode == 0
    waiting = [json.loads(x)["custom_id"] for x in pending.read_text().splitlines()]
    assert len(waiting) == 2 and len({w.split("|")[0] for w in waiting}) == 2, waiting  # one per file, both kept
    assert sorted(w.split("#")[1].split("-")[1] for w in waiting) == ["1", "2"]  # other.jsonl's line 1, src's line 2

    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(json.dumps({"custom_id": "nobody#x", "response": {"status_code": 200, "body": {}}}) + "\n")
    done = cli("batch", "import", "--in", str(stranger))
    assert done.returncode == 1 and "unmatched custom_id" in done.stderr  # loud, and nothing is lost
