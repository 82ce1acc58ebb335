"""The review page in a real browser (Debian's Chromium through Playwright) on the real server and warehouse:
filter, approve with the keyboard, an edit the guardrails block and then a valid one, a reject; then DuckDB holds
exactly those three decisions."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import duckdb
import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from crmagent_dagster.review.server import create_app
from dagster_helpers import free_port
from review_fixtures import review_db, scenario  # noqa: F401  (fixtures)

REVIEWER = "Rita Reviewer"
REJECT_NOTE = "rejected: a vague promise, keep the original"  # has a, e, r, j and k: none may fire while typed


@pytest.fixture
def server(review_db) -> Iterator[str]:
    """uvicorn on a free 127.0.0.1 port in a thread, serving the copied warehouse."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(review_db), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the review server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by `make test`"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        pg = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, errors


def settled(page: Page) -> None:
    """The list answer for the current filters has arrived (the page fetches it asynchronously)."""
    expect(page.locator("body:not([data-loading])")).to_have_count(1)


def pick(page: Page, aggregate_id: str) -> None:
    page.locator(f'#list button[data-aggregate="{aggregate_id}"]').click()
    expect(page.locator("#d-meta")).to_contain_text(aggregate_id)


def saved(page: Page, text: str) -> None:
    expect(page.locator("#message")).to_contain_text(text)


def stored(db: str) -> list[tuple]:
    with duckdb.connect(db) as c:
        exists = c.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'rewrite_reviews'"
                           ).fetchall()[0][0]
        return c.execute("SELECT aggregate_id, decision, reviewer, edited_title, edited_body, note, source "
                         "FROM agents.rewrite_reviews ORDER BY decided_at").fetchall() if exists else []


def test_review_page_approve_edit_reject(scenario, review_db, server, page):
    s = scenario
    with duckdb.connect(review_db) as c:
        policy = {a for (a,) in c.execute(
            "SELECT w.aggregate_id FROM agents.template_rewrites w JOIN agents.preference_judgments j "
            "USING (month, segment, aggregate_id) WHERE w.status = 'ok' AND w.guard_passed AND j.verdict = 'rewrite' "
            "AND j.position_consistent").fetchall()}
        total = c.execute("SELECT count(*) FROM agents.template_rewrites").fetchall()[0][0]

    page.goto(server + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    settled(page)
    expect(page.locator("#next-step")).to_contain_text(f"crmagent deploy --month {s.month}")
    page.select_option("#segment", s.segment)
    settled(page)
    expect(page.locator("#list button")).to_have_count(total)  # nothing decided yet: all are to review
    marked = {b.get_attribute("data-aggregate") for b in page.locator("#list button:has(.policy)").all()}
    assert marked == policy and policy  # the auto-approve policy's picks are marked, and only those
    page.fill("#reviewer", REVIEWER)

    # Approve with the keyboard: j/k move through the list, `a` approves the selected one.
    pick(page, s.approve_id)
    order = page.locator("#list button").evaluate_all("els => els.map(e => e.dataset.aggregate)")
    away, back = ("k", "j") if order.index(s.approve_id) == len(order) - 1 else ("j", "k")
    page.keyboard.press(away)
    expect(page.locator("#d-meta")).not_to_contain_text(s.approve_id)
    page.keyboard.press(back)
    expect(page.locator("#d-meta")).to_contain_text(s.approve_id)
    page.keyboard.press("a")
    saved(page, "Approved")
    expect(page.locator(f'#list button[data-aggregate="{s.approve_id}"]')).to_have_count(0)  # left "to review"

    # Edit: an invented discount is blocked next to the form, the text stays, nothing is stored.
    pick(page, s.edit_id)
    page.keyboard.press("e")
    expect(page.locator("#edit-body")).to_have_value(s.edit_body)
    page.fill("#edit-body", s.blocked_body)
    page.keyboard.press("Control+Enter")
    blocked = page.locator("#blocked")
    expect(blocked).to_be_visible()
    expect(blocked).to_contain_text("70%")
    failed = set(blocked.locator("li.fail").evaluate_all("els => els.map(e => e.dataset.check)"))
    assert failed & {"incentive_supported", "percentages_supported"}, failed
    expect(page.locator("#edit-body")).to_have_value(s.blocked_body)
    assert [r[1] for r in stored(review_db)] == ["approve"]
    page.fill("#edit-body", s.valid_body)
    page.keyboard.press("Control+Enter")
    saved(page, "Edited")
    expect(page.locator("#edit-form")).to_be_hidden()

    # Reject with a note typed in the field: its letters are text, not shortcuts.
    pick(page, s.reject_id)
    page.locator("#note").click()
    page.keyboard.type(REJECT_NOTE)
    page.locator("#reject").click()
    saved(page, "Rejected")

    # Every rewrite, with each decision and who made it.
    page.select_option("#status", "all")
    settled(page)
    for agg, word in ((s.approve_id, "approved"), (s.edit_id, "edited"), (s.reject_id, "rejected")):
        expect(page.locator(f'#list button[data-aggregate="{agg}"]')).to_contain_text(f"{word} · {REVIEWER}")
    pick(page, s.edit_id)
    expect(page.locator("#d-edited")).to_contain_text(s.valid_body)
    if s.rejected_id:  # the writer rejected it: it can be edited or rejected, not approved
        pick(page, s.rejected_id)
        expect(page.locator("#approve")).to_be_disabled()

    assert sorted(stored(review_db)) == sorted([
        (s.approve_id, "approve", REVIEWER, None, None, None, "web"),
        (s.edit_id, "edit", REVIEWER, s.edit_title, s.valid_body, None, "web"),
        (s.reject_id, "reject", REVIEWER, None, None, REJECT_NOTE, "web"),
    ])
