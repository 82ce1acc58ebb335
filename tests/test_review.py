"""Reviewer decisions: the store's rules, the page's read model, the JSON API and the CSV round trip, on a real
warehouse (one month and one segment materialized through Dagster, copied per test)."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime, timedelta

import duckdb
import pytest
from starlette.testclient import TestClient

from crmagent_dagster import cli
from crmagent_dagster.review import csvio, items, store
from crmagent_dagster.review.server import BUSY_MESSAGE, create_app
from crmagent_dagster.review.store import EditBlocked, ReviewDecision, ReviewError
from review_fixtures import INVENTED_DISCOUNT, Scenario, review_db, scenario  # noqa: F401  (fixtures)


def decision(s: Scenario, aggregate_id: str, kind: str, **kw) -> ReviewDecision:
    return ReviewDecision(s.month, s.segment, aggregate_id, kind, kw.pop("reviewer", "ana"), **kw)


def stored(db: str) -> list[tuple]:
    with duckdb.connect(db) as c:
        if not c.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'rewrite_reviews'"
                         ).fetchall()[0][0]:
            return []
        return c.execute("SELECT aggregate_id, decision, reviewer, edited_title, edited_body, note, source "
                         "FROM agents.rewrite_reviews ORDER BY decided_at").fetchall()


# ---- store ---------------------------------------------------------------------------------------------------------

def test_record_refuses_bad_decisions_naming_the_rewrite(scenario, review_db):
    s = scenario
    with duckdb.connect(review_db) as conn:
        with pytest.raises(ReviewError, match=f"aggregate {s.approve_id}: decision must be one of"):
            store.record(conn, decision(s, s.approve_id, "maybe"))
        with pytest.raises(ReviewError, match="aggregate no-such-id: no such rewrite"):
            store.record(conn, decision(s, "no-such-id", "approve"))
        with pytest.raises(ReviewError, match="reviewer is required"):
            store.record(conn, decision(s, s.approve_id, "approve", reviewer="  "))
        rejected = s.rejected_id
        if rejected is None:  # the month happens to have none: the writer's rejection, as its asset records one
            rejected = s.reject_id
            conn.execute("UPDATE agents.template_rewrites SET status = 'rejected', error = 'unchanged' "
                         "WHERE aggregate_id = $a", {"a": rejected})
        with pytest.raises(ReviewError, match=f"aggregate {rejected}: the rewrite is (rejected|unchanged) .*only an edit"):
            store.record(conn, decision(s, rejected, "approve"))
        # An edit is how a rejected or unchanged template gets a text that goes out.
        assert store.record(conn, decision(s, rejected, "reject")).decision == "reject"
    assert [r[:2] for r in stored(review_db)] == [(rejected, "reject")]


def test_blocked_edit_raises_with_the_failed_checks_and_writes_nothing(scenario, review_db):
    s = scenario
    with duckdb.connect(review_db) as conn:
        with pytest.raises(EditBlocked) as blocked:
            store.record(conn, decision(s, s.edit_id, "edit", edited_title=s.edit_title, edited_body=s.blocked_body))
    failed = {c.name for c in blocked.value.checks if not c.passed}
    assert failed & {"incentive_supported", "percentages_supported"}, failed
    assert "70%" in str(blocked.value) and s.edit_id in str(blocked.value)
    assert stored(review_db) == []


def test_history_keeps_every_decision_and_the_latest_counts(scenario, review_db):
    s = scenario
    t0 = datetime(2025, 5, 2, 9, 0)
    with duckdb.connect(review_db) as conn:
        store.record(conn, decision(s, s.edit_id, "approve", reviewer="ana"), now=t0)
        store.record(conn, decision(s, s.edit_id, "edit", reviewer="ben", edited_title=s.edit_title,
                                    edited_body=s.valid_body, note="warmer"), now=t0 + timedelta(minutes=5))
        store.record(conn, decision(s, s.approve_id, "reject", reviewer="ana"), now=t0 + timedelta(minutes=1))
        latest = store.latest_decisions(conn, s.month, s.segment)
        past = store.history(conn, s.month)
    assert [(d.aggregate_id, d.decision, d.reviewer) for d in past] == [
        (s.edit_id, "approve", "ana"), (s.approve_id, "reject", "ana"), (s.edit_id, "edit", "ben")]
    now = latest[(s.segment, s.edit_id)]
    assert (now.decision, now.reviewer, now.edited_body, now.note) == ("edit", "ben", s.valid_body, "warmer")
    assert all(c["passed"] for c in now.guard_checks) and len(now.guard_checks) >= 10  # the checks it passed, kept
    assert latest[(s.segment, s.approve_id)].decision == "reject" and len(latest) == 2


def test_a_decision_on_an_older_rewrite_text_stops_counting(scenario, review_db):
    s = scenario
    with duckdb.connect(review_db) as conn:
        store.record(conn, decision(s, s.edit_id, "approve"))
        assert (s.segment, s.edit_id) in store.latest_decisions(conn, s.month)
        # A re-run writes a different rewrite: the approval was of the old text, so it waits for review again.
        conn.execute("UPDATE agents.template_rewrites SET new_body = new_body || ' Order today.' "
                     "WHERE aggregate_id = $a", {"a": s.edit_id})
        assert store.latest_decisions(conn, s.month) == {}
        assert len(store.history(conn, s.month)) == 1
        item = next(i for i in items.load_items(conn, s.month) if i.aggregate_id == s.edit_id)
    assert item.review_status == "to_review" and item.decision is None
    assert len(item.history) == 1 and item.history[0].rewrite_hash != item.rewrite_hash


# ---- the read model ------------------------------------------------------------------------------------------------

def test_items_carry_each_rewrite_with_its_evidence(scenario, review_db):
    s = scenario
    with duckdb.connect(review_db) as conn:
        got = {i.aggregate_id: i for i in items.load_items(conn, s.month, s.segment)}
        expected = {r[0]: r[1:] for r in conn.execute("""
            SELECT w.aggregate_id, w.status, w.new_body, ao.error_type, ar.error_type, j.original_as_a, j.verdict,
                   s.rewrite_marketing, w.status = 'ok' AND w.guard_passed AND j.verdict = 'rewrite'
                       AND j.position_consistent IS TRUE
            FROM agents.template_rewrites w
            LEFT JOIN agents.preference_judgments j USING (month, segment, aggregate_id)
            LEFT JOIN agents.rewrite_scores s USING (month, segment, aggregate_id)
            LEFT JOIN agents.template_audits ao ON ao.aggregate_id = w.aggregate_id AND ao.version = 'original'
            LEFT JOIN agents.template_audits ar ON ar.aggregate_id = w.aggregate_id AND ar.version = 'rewrite'
            """).fetchall()}
        analysis = conn.execute("SELECT analysis FROM agents.segment_diagnoses").fetchall()[0][0]
        other_segment = items.load_items(conn, s.month, "new_buyers")
    assert set(got) == set(expected) and other_segment == []
    for agg, (status, body, audit_o, audit_r, as_a, verdict, marketing, policy) in expected.items():
        i = got[agg]
        assert (i.status, i.new_body, i.audit_original.error_type) == (status, body, audit_o)
        assert (i.audit_rewrite.error_type if i.audit_rewrite else None) == audit_r
        assert (i.verdicts.original_as_a if i.verdicts else None, i.verdicts.verdict if i.verdicts else None) == (as_a, verdict)
        assert (i.scores.rewrite_marketing if i.scores else None) == marketing
        assert i.policy_approves is bool(policy) and i.can_approve is (status == "ok")
        assert i.segment_diagnosis == analysis and i.problem_reason
        assert i.review_status == "to_review" and i.history == []
    assert {i.policy_approves for i in got.values()} == {True, False}  # the month has both kinds
    edit = got[s.edit_id]
    assert len(edit.guard_checks) >= 10 and all(c.passed for c in edit.guard_checks)
    assert {c.name for c in edit.guard_checks} >= {"incentive_supported", "percentages_supported", "language_kept"}


def test_items_of_a_warehouse_without_rewrites_are_empty(tmp_path):
    with duckdb.connect(str(tmp_path / "fresh.duckdb")) as conn:
        assert items.load_items(conn, "2025-04") == [] and items.months(conn) == []
        conn.execute("CREATE SCHEMA agents")
        store.ensure_table(conn)  # decisions table but no rewrites yet
        assert items.load_items(conn, "2025-04") == [] and store.latest_decisions(conn, "2025-04") == {}


# ---- the JSON API --------------------------------------------------------------------------------------------------

def test_api_lists_records_and_explains_refusals(scenario, review_db):
    s = scenario
    client = TestClient(create_app(review_db), base_url="http://127.0.0.1")
    page = client.get("/")
    assert page.status_code == 200 and "crmagent deploy --month" in page.text and "deployments" in page.text
    assert client.get("/api/months").json() == {"months": [{"month": s.month, "segments": [s.segment]}],
                                                "default": s.month}
    listed = client.get("/api/items", params={"segment": s.segment, "status": "to_review"}).json()
    assert listed["counts"]["to_review"] == listed["counts"]["all"] == len(listed["items"]) >= 4

    body = {"month": s.month, "segment": s.segment, "aggregate_id": s.edit_id, "reviewer": "ana", "note": None}
    blocked = client.post("/api/decisions", json={**body, "decision": "edit", "edited_title": s.edit_title,
                                                  "edited_body": s.blocked_body})
    assert blocked.status_code == 422
    failed = {c["name"] for c in blocked.json()["checks"] if not c["passed"]}
    assert failed & {"incentive_supported", "percentages_supported"} and "70%" in blocked.json()["error"]
    bad = client.post("/api/decisions", json={**body, "decision": "ship it"})
    assert bad.status_code == 400 and s.edit_id in bad.json()["error"]
    assert client.post("/api/decisions", json={**body, "reviewer": ""}).status_code == 400
    # A plain-text post (what another site's page could send without asking) records nothing.
    assert client.post("/api/decisions", content='{"decision": "approve"}',
                       headers={"Content-Type": "text/plain"}).status_code == 415
    assert stored(review_db) == []

    ok = client.post("/api/decisions", json={**body, "decision": "approve"})
    assert ok.status_code == 200
    assert ok.json()["decision"]["decision"] == "approve" and ok.json()["item"]["review_status"] == "approved"
    approved = client.get("/api/items", params={"status": "approved"}).json()["items"]
    assert [(i["aggregate_id"], i["decision"]["reviewer"]) for i in approved] == [(s.edit_id, "ana")]
    assert stored(review_db) == [(s.edit_id, "approve", "ana", None, None, None, "web")]


def test_api_says_busy_while_a_run_holds_the_warehouse(review_db, tmp_path):
    # The page holds the file only during a request: another process (a run) can take the lock right after.
    assert TestClient(create_app(review_db), base_url="http://127.0.0.1").get("/api/items").status_code == 200
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", review_db],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        client = TestClient(create_app(review_db, lock_timeout_s=0.3), base_url="http://127.0.0.1")
        for r in (client.get("/api/items"), client.get("/api/months")):
            assert r.status_code == 503 and r.text == BUSY_MESSAGE
    finally:
        holder.kill()
        holder.wait()
    # No warehouse file at all: an empty page, and no file created by looking.
    missing = tmp_path / "none" / "wh.duckdb"
    client = TestClient(create_app(str(missing)), base_url="http://127.0.0.1")
    assert client.get("/api/months").json() == {"months": [], "default": None}
    assert client.get("/api/items", params={"month": "2025-04"}).json()["items"] == []
    assert not missing.exists()


# ---- CSV round trip ------------------------------------------------------------------------------------------------

def test_csv_round_trip_records_good_rows_and_reports_bad_ones(scenario, review_db, tmp_path, capsys):
    s = scenario
    out = tmp_path / "review.csv"
    assert cli.main(["review", "export", "--month", s.month, "--segment", s.segment, "--out", str(out),
                     "--db", review_db]) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    with duckdb.connect(review_db, read_only=True) as conn:  # every template of the segment, whatever its status
        written = conn.execute("SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM agents.template_rewrites "
                               "WHERE month = $m AND segment = $s", {"m": s.month, "s": s.segment}).fetchall()[0]
    assert list(rows[0]) == list(csvio.COLUMNS) and len(rows) == written[0] and written[1] == len(s.ok_ids)
    by_id = {r["aggregate_id"]: r for r in rows}
    assert by_id[s.edit_id]["new_body"] == s.edit_body and by_id[s.edit_id]["guardrails_passed"] == "yes"
    unknown_word = next(a for a in s.ok_ids if a not in (s.approve_id, s.edit_id, s.reject_id))

    by_id[s.approve_id].update(decision="Approved", note="clear and true")
    by_id[s.edit_id].update(decision="edit", edited_title=s.edit_title, edited_body=s.valid_body)
    by_id[s.reject_id].update(decision="edit", edited_title=by_id[s.reject_id]["new_title"],
                              edited_body=by_id[s.reject_id]["new_body"] + INVENTED_DISCOUNT)
    by_id[unknown_word].update(decision="maybe")
    rows.append({**rows[0], "aggregate_id": "not-a-rewrite", "decision": "approve"})
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=csvio.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    row_of = {r["aggregate_id"]: n for n, r in enumerate(rows, start=2)}  # the header is row 1

    capsys.readouterr()
    assert cli.main(["review", "import", "--in", str(out), "--reviewer", "Carla", "--db", review_db]) == 1
    err = capsys.readouterr().err
    assert f"row {row_of[unknown_word]}, decision: unknown decision 'maybe'" in err
    assert f"row {row_of['not-a-rewrite']}, aggregate_id: no rewrite not-a-rewrite" in err
    blocked_line = next(line for line in err.splitlines() if f"row {row_of[s.reject_id]}," in line)
    assert "edited_title/edited_body" in blocked_line and "70%" in blocked_line
    assert ("incentive_supported" in blocked_line) or ("percentages_supported" in blocked_line)
    assert sorted(stored(review_db)) == sorted([
        (s.approve_id, "approve", "Carla", None, None, "clear and true", "csv"),
        (s.edit_id, "edit", "Carla", s.edit_title, s.valid_body, None, "csv")])

    # Importing the same file again repeats nothing that is already the current decision.
    with duckdb.connect(review_db) as conn:
        again = csvio.import_file(conn, out, "Carla")
    assert (len(again.recorded), again.unchanged, len(again.problems)) == (0, 2, 3)
    assert len(stored(review_db)) == 2


def test_csv_import_refuses_a_file_without_the_needed_columns(review_db, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("template_id,verdict\nt1,approve\n", encoding="utf-8")
    assert cli.main(["review", "import", "--in", str(bad), "--reviewer", "x", "--db", review_db]) == 1
    assert "lacks column(s) month, segment, aggregate_id, decision" in capsys.readouterr().err
