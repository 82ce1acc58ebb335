"""SIGKILL in the middle of a partition: every table stays at a complete version; the re-run pays only for what's missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from fake_openai import FakeOpenAI, Reply

BIN = Path(sys.executable).parent
SEGMENT = "new_buyers"
ANSWERS = {
    "ContentDiagnosis": {"analysis": "Strong ones state the offer.", "success_patterns": ["State it"], "failure_patterns": ["Vague"]},
    "ProblemAnalysis": {"reason": "No clear call to action."},
    "Rewrite": {"title": "Your next favourite is here", "body": "Find your next favourite. Shop now!"},
    "Scores": {"audience_match_score_a": 3, "audience_match_reason_a": "ok", "marketing_score_a": 3,
               "marketing_reason_a": "ok", "audience_match_score_b": 5, "audience_match_reason_b": "ok",
               "marketing_score_b": 5, "marketing_reason_b": "ok"},
    "SingleScores": {"audience_match_score": 3, "audience_match_reason": "ok", "marketing_score": 3,
                     "marketing_reason": "ok"},
    "Preference": {"preferred": "B", "reason": "clearer"},
    "Audit": {"error_type": "weak_call_to_action", "feedback": "No CTA."},
}


def answer(body: dict, n: int) -> Reply:
    return Reply(content=json.dumps(ANSWERS[body["response_format"]["json_schema"]["name"]]), delay_s=0.05)


def refresh(tmp: Path, server: FakeOpenAI) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(tmp / "home"), "CRMAGENT_LANDING_DIR": str(tmp / "landing"),
           "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", "CRMAGENT_LLM_CONCURRENCY": "2"}
    return subprocess.Popen([BIN / "crmagent", "refresh", "--month", "2025-04", "--logs", "40000", "--segment", SEGMENT,
                             "--db", str(tmp / "wh.duckdb")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


KEYS = {  # table -> key that must be unique, for the duplicate check after every step
    "staging.delivery_logs": "month, log_id", "core.engagement_aggregates": "aggregate_id",
    "core.quartile_labels": "aggregate_id", "agents.problem_analyses": "aggregate_id",
    "agents.template_rewrites": "aggregate_id", "agents.rewrite_scores": "aggregate_id",
    "agents.preference_judgments": "aggregate_id", "agents.template_audits": "aggregate_id, version",
}


def state(db: Path) -> dict:
    with duckdb.connect(str(db), read_only=True) as c:
        tables = {f"{s}.{t}" for s, t in c.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        out = {"duplicates": 0, "rows": {}}
        for table, key in KEYS.items():
            if table in tables:
                out["duplicates"] += c.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {table}").fetchall()[0][0]
                out["rows"][table] = c.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        if "staging.quarantine" in tables and "staging.delivery_logs" in tables:
            raw = c.execute("SELECT count(*) FROM raw.delivery_logs").fetchall()[0][0]
            out["staging_conserved"] = raw == out["rows"]["staging.delivery_logs"] + c.execute(
                "SELECT count(*) FROM staging.quarantine WHERE source_table = 'raw.delivery_logs'").fetchall()[0][0]
        weak = c.execute("SELECT count(*) FROM core.labelled_templates WHERE performance_label = 'weak'").fetchall()[0][0] \
            if "core.labelled_templates" in tables else None
        out["weak"] = weak
        out["cached"] = c.execute("SELECT count(*) FROM llm.cache").fetchall()[0][0] if "llm.cache" in tables else 0
        out["rewrites"] = sorted(c.execute("SELECT aggregate_id, new_title, new_body, status FROM agents.template_rewrites"
                                           ).fetchall()) if "agents.template_rewrites" in tables else None
    return out


def test_sigkill_mid_partition_then_rerun(tmp_path, reliability):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    with FakeOpenAI(answer) as server:
        run = refresh(reference, server)
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:]
        expected = state(reference / "wh.duckdb")
        total_calls = server.requests

        before = server.requests
        run = refresh(crashed, server)
        deadline = time.monotonic() + 300
        while server.requests - before < total_calls // 2:  # half way through the segment's LLM work
            assert run.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        after_kill = state(crashed / "wh.duckdb")
        assert after_kill["duplicates"] == 0
        assert after_kill.get("staging_conserved", True)
        # The partition being written when killed is absent or whole, never half.
        if after_kill["rewrites"] is not None:
            assert len(after_kill["rewrites"]) in (0, expected["weak"])
        cached = after_kill["cached"]
        assert 0 < cached < total_calls

        calls_before_rerun = server.requests
        run = refresh(crashed, server)
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:]
        rerun_calls = server.requests - calls_before_rerun
    final = state(crashed / "wh.duckdb")
    lost = sum(max(0, expected["rows"][t] - final["rows"].get(t, 0)) for t in expected["rows"])
    reliability.record("crash", rows_lost=lost + final["duplicates"], llm_calls_total=total_calls,
                       cached_at_kill=cached, calls_on_rerun=rerun_calls)
    assert final["duplicates"] == 0 and final["rows"] == expected["rows"]
    assert final["rewrites"] == expected["rewrites"]
    assert rerun_calls == total_calls - cached  # only what the killed run had not paid for
