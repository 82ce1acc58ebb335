"""A refresh whose model calls all failed (an endpoint that is down) exits 1 and names the error, instead of 0 with
every rewrite failed and nothing on stderr (issue 22, point 4). The gate reads the month's real rewrite table."""

from __future__ import annotations

import duckdb

from crmagent_dagster import cli

ROWS = [("2025-04", "failed", "APIConnectionError: Connection refused (127.0.0.1:9)", "openai")] * 8 + [
    ("2025-04", "ok", None, "openai")] * 2 + [("2025-04", "unchanged", None, "rules")] * 5 + [
    ("2025-03", "failed", "timeout", "openai")] * 50


def _db(tmp_path, rows) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = str(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute("CREATE SCHEMA agents; CREATE TABLE agents.template_rewrites (month VARCHAR, status VARCHAR, "
                     "error VARCHAR, attempted_backend VARCHAR)")
        conn.executemany("INSERT INTO agents.template_rewrites VALUES (?, ?, ?, ?)", rows)
    return path


def test_a_month_whose_model_calls_failed_exits_1_and_names_the_error(tmp_path, capsys, reliability):
    db = _db(tmp_path, ROWS)
    assert cli._llm_gate(db, "2025-04", 0.5) == 1  # 8 of 10 asked failed; the rule-written ones do not count
    err = capsys.readouterr().err
    assert "8 of 10 rewrites that asked the model failed (80%" in err and "Connection refused" in err
    assert cli._llm_gate(db, "2025-04", 0.9) == 0  # the share is the team's to set
    assert cli._llm_gate(_db(tmp_path / "x", ROWS[8:15]), "2025-04", 0.0) == 0  # nothing failed
    reliability.record("llm_outage", exit_code=1)


def test_refresh_against_an_endpoint_that_is_down_exits_1_naming_the_error(tmp_path, reliability):
    """End to end: the real `crmagent refresh` with OPENAI_BASE_URL on a closed port of 127.0.0.1."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DAGSTER_HOME": str(tmp_path / "home"),
           "CRMAGENT_LANDING_DIR": str(tmp_path / "landing"), "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
           "OPENAI_API_KEY": "sk-test-down", "CRMAGENT_LLM_MAX_RETRIES": "0"}
    done = subprocess.run([Path(sys.executable).parent / "crmagent", "refresh", "--month", "2025-04", "--synthetic",
                           "--logs", "40000", "--segment", "new_buyers", "--db", str(tmp_path / "wh.duckdb")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "rewrites that asked the model failed (100%" in done.stderr and "Connection error" in done.stderr
    reliability.record("llm_outage", exit_code=done.returncode)
