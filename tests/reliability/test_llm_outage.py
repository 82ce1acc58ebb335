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
