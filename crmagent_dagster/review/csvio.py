"""A month's rewrites as a CSV for teams that review in a spreadsheet, and the filled-in file back as decisions.

Export writes UTF-8 with a BOM so Excel shows accents and emoji; import accepts the file with or without it. Each
row with a decision goes through store.record, the same validation and guardrails as the page. A bad row never
stops the file: it is reported by its spreadsheet row number (the header is row 1) and field, and the good rows
are recorded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crmagent_dagster.review import items as read_model
from crmagent_dagster.review import store
from crmagent_dagster.review.items import ReviewItem
from crmagent_dagster.review.store import EditBlocked, RecordedDecision, ReviewDecision, ReviewError
from crmagent_dagster.sql import table_exists

# What the reviewer reads, then the columns they fill in.
INFO_COLUMNS = ("month", "segment", "aggregate_id", "template_id", "status", "original_title", "original_body",
                "new_title", "new_body", "guardrails_passed", "verdict", "policy_approves", "current_decision",
                "current_reviewer")
FILL_COLUMNS = ("decision", "edited_title", "edited_body", "note")
COLUMNS = INFO_COLUMNS + FILL_COLUMNS
REQUIRED_COLUMNS = ("month", "segment", "aggregate_id", "decision")
# A cell a spreadsheet would run as a formula ("=HYPERLINK(...)", "+1", "-2", "@SUM"; a leading tab or CR too) is
# written behind an apostrophe, as OWASP's CSV-injection guidance says; import takes the apostrophe off again.
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
# A cell longer than any message or note: reported by its row and column, never read into a decision.
MAX_CELL = 20_000
# Spreadsheet users write the past tense as often as the verb.
_DECISION_WORDS = {"approve": "approve", "approved": "approve", "edit": "edit", "edited": "edit",
                   "reject": "reject", "rejected": "reject"}


class CsvFileError(ValueError):
    """The file as a whole cannot be read (no header, a required column missing)."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str
    message: str
    failed_checks: tuple[str, ...] = ()  # for a blocked edit: "name: reason" of each failed guardrail

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclass
class ImportReport:
    rows: int = 0  # data rows read
    recorded: list[RecordedDecision] = field(default_factory=list)
    blank: int = 0  # rows without a decision: not reviewed yet
    unchanged: int = 0  # the same decision is already the current one (a file imported twice)
    problems: list[RowProblem] = field(default_factory=list)


# ---- export --------------------------------------------------------------------------------------------------------

def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def export_row(item: ReviewItem) -> dict[str, str]:
    v = item.verdicts
    verdict = "" if v is None else (v.verdict or "") + ("" if v.position_consistent else " (orders disagree)")
    return {
        "month": item.month, "segment": item.segment, "aggregate_id": item.aggregate_id,
        "template_id": item.template_id or "", "status": item.status, "original_title": item.original_title or "",
        "original_body": item.original_body or "", "new_title": item.new_title or "", "new_body": item.new_body or "",
        "guardrails_passed": _yes_no(item.guard_passed), "verdict": verdict,
        "policy_approves": _yes_no(item.policy_approves),
        "current_decision": item.decision.decision if item.decision else "",
        "current_reviewer": item.decision.reviewer if item.decision else "",
        **dict.fromkeys(FILL_COLUMNS, ""),
    }


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet shows, never runs."""
    return "'" + value if value.startswith(_FORMULA_LEAD) else value


def unescape_cell(value: str) -> str:
    """A cell as the reviewer meant it: the apostrophe export put before a formula character comes off."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_LEAD) else value


def write_csv(rows: Iterable[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)


def export_month(conn: duckdb.DuckDBPyConnection, month: str, path: Path, segment: str | None = None) -> int:
    """One row per rewrite of the month (or segment); returns the number of rows."""
    found = read_model.load_items(conn, month, segment)
    write_csv((export_row(i) for i in found), path)
    return len(found)


# ---- import --------------------------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, row) for each data row; cells stripped and unescaped, missing cells empty. A cell
    over the csv module's default limit is read (and reported by `_check_row`), not a crash."""
    csv.field_size_limit(max(csv.field_size_limit(), 64 * MAX_CELL))
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CsvFileError(f"{path}: the header lacks column(s) {', '.join(missing)} "
                               f"(export a file with `crmagent review export` to get them)")
        reader.fieldnames = header
        # A spreadsheet shows a record (even one with line breaks inside a cell) as one row, the header as row 1.
        return [(n, {k: unescape_cell((v or "").strip()) for k, v in row.items() if k is not None})
                for n, row in enumerate(reader, start=2)]


def _same_text(a: str | None, b: str | None) -> bool:
    """Equal up to whitespace: spreadsheets rewrite line endings and trailing spaces."""
    return " ".join((a or "").split()) == " ".join((b or "").split())


def _check_row(n: int, row: dict[str, str], reviewer: str | None,
               rewrites: dict[tuple[str, str, str], ReviewItem]) -> RowProblem | ReviewDecision | None:
    """The row's decision, a problem naming its field, or None for a row nobody decided on."""
    oversized = next((k for k, v in row.items() if len(v) > MAX_CELL), None)
    if oversized:
        return RowProblem(n, oversized, f"{len(row[oversized]):,} characters; a cell holds at most {MAX_CELL:,}")
    word = row.get("decision", "").lower()
    if not word:
        if row.get("edited_body") or row.get("edited_title"):
            return RowProblem(n, "decision", "edited text without a decision; write 'edit' in the decision column")
        return None
    if word not in _DECISION_WORDS:
        return RowProblem(n, "decision", f"unknown decision {row['decision']!r}; use approve, edit or reject")
    for name in ("month", "segment", "aggregate_id"):
        if not row.get(name):
            return RowProblem(n, name, "empty")
    item = rewrites.get((row["month"], row["segment"], row["aggregate_id"]))
    if item is None:
        return RowProblem(n, "aggregate_id", f"no rewrite {row['aggregate_id']} in month {row['month']}, "
                                             f"segment {row['segment']}")
    # A decision is about the text the reviewer read: if a re-run changed it since the export, ask for a new file.
    for name in ("new_title", "new_body"):
        if name in row and not _same_text(row[name], getattr(item, name)):
            return RowProblem(n, name, "the rewrite changed since this file was exported; export the month again")
    who = row.get("reviewer") or reviewer
    if not who:
        return RowProblem(n, "reviewer", "no reviewer: give --reviewer or fill the reviewer column")
    # Edited text goes along with any decision: store.record refuses it with approve or reject (ambiguous).
    return ReviewDecision(month=row["month"], segment=row["segment"], aggregate_id=row["aggregate_id"],
                          decision=_DECISION_WORDS[word], reviewer=who, note=row.get("note") or None,
                          edited_title=row.get("edited_title") or None, edited_body=row.get("edited_body") or None,
                          source="csv")


def _unchanged(d: ReviewDecision, current: RecordedDecision | None) -> bool:
    return current is not None and (current.decision, current.reviewer, current.edited_title or None,
                                    current.edited_body or None, current.note) == (
        d.decision, d.reviewer.strip(), d.edited_title, d.edited_body, d.note)


def _field_of(e: ReviewError) -> str:
    """Which column a store error is about, for the report."""
    return "edited_body" if "needs edited_body" in str(e) else "decision"


def _rewrites_of(conn: duckdb.DuckDBPyConnection, months: set[str]) -> dict[tuple[str, str, str], ReviewItem]:
    out: dict[tuple[str, str, str], ReviewItem] = {}
    if not table_exists(conn, "agents.template_rewrites"):
        return out
    for month in months:
        for item in read_model.load_items(conn, month):
            out[(item.month, item.segment, item.aggregate_id)] = item
    return out


def import_file(conn: duckdb.DuckDBPyConnection, path: Path, reviewer: str | None) -> ImportReport:
    """Record every decided row of a filled-in export; bad rows are reported and skipped, never fatal."""
    rows = read_rows(path)
    report = ImportReport(rows=len(rows))
    rewrites = _rewrites_of(conn, {row["month"] for _, row in rows if row.get("month") and row.get("decision")})
    # the current decision per rewrite, kept up to date as rows are recorded: a row repeating the one just
    # recorded (the same approval pasted 10,000 times) is unchanged, not another history row
    current = {key: item.decision for key, item in rewrites.items()}
    for n, row in rows:
        checked = _check_row(n, row, reviewer, rewrites)
        if checked is None:
            report.blank += 1
        elif isinstance(checked, RowProblem):
            report.problems.append(checked)
        elif _unchanged(checked, current[(checked.month, checked.segment, checked.aggregate_id)]):
            report.unchanged += 1
        else:
            before = len(report.recorded)
            _record(conn, n, checked, report)
            if len(report.recorded) > before:
                current[(checked.month, checked.segment, checked.aggregate_id)] = report.recorded[-1]
    return report


def _record(conn: duckdb.DuckDBPyConnection, n: int, d: ReviewDecision, report: ImportReport) -> None:
    try:
        report.recorded.append(store.record(conn, d))
    except EditBlocked as e:
        failed = tuple(f"{c.name}: {c.reason}" for c in e.checks if not c.passed)
        report.problems.append(RowProblem(n, "edited_title/edited_body",
                                          "the edit breaks the guardrails: " + "; ".join(failed), failed))
    except ReviewError as e:
        report.problems.append(RowProblem(n, _field_of(e), str(e)))
