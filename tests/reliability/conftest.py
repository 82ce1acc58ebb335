"""Reliability cases record what they measured; `make test` prints the totals at the end."""

from __future__ import annotations

from collections import defaultdict

import pytest

RESULTS: list[dict] = []


class Recorder:
    def __init__(self, case: str):
        self.case = case

    def record(self, kind: str, rows_lost: int = 0, reader_errors: int = 0, partial_reads: int = 0, **extra) -> None:
        RESULTS.append({"kind": kind, "case": self.case, "rows_lost": rows_lost, "reader_errors": reader_errors,
                        "partial_reads": partial_reads, **extra})


@pytest.fixture
def reliability(request) -> Recorder:
    return Recorder(request.node.name)


def _tried_and_passed(terminalreporter) -> dict[str, list[int]]:
    """Per file of tests/reliability: cases tried and cases passed (a failed case records nothing itself)."""
    by_file: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            path = getattr(report, "nodeid", "").split("::")[0]
            if "tests/reliability/" not in path or getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if report.when == "setup" and outcome == "passed":
                continue  # a passed setup is counted with its call
            name = path.rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
            by_file[name][0] += 1
            by_file[name][1] += outcome == "passed"
    return by_file


def pytest_terminal_summary(terminalreporter):
    tried = _tried_and_passed(terminalreporter)
    if tried:
        tr = terminalreporter
        tr.section("reliability cases (tests/reliability): tried / passed")
        for name in sorted(tried):
            tr.write_line(f"{name:<28} {tried[name][0]:>5} {tried[name][1]:>6}")
        tr.write_line(f"{'total':<28} {sum(t[0] for t in tried.values()):>5} {sum(t[1] for t in tried.values()):>6}")
    if not RESULTS:
        return
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in RESULTS:
        k = by_kind[r["kind"]]
        k["cases"] += 1
        for field in ("rows_lost", "reader_errors", "partial_reads"):
            k[field] += r[field]
    tr = terminalreporter
    tr.section("reliability summary (tests/reliability)")
    tr.write_line(f"{'kind':<22} {'cases':>5} {'rows lost':>9} {'reader errors':>13} {'partial reads':>13}")
    for kind in sorted(by_kind):
        k = by_kind[kind]
        tr.write_line(f"{kind:<22} {k['cases']:>5} {k['rows_lost']:>9} {k['reader_errors']:>13} {k['partial_reads']:>13}")
    total = {f: sum(r[f] for r in RESULTS) for f in ("rows_lost", "reader_errors", "partial_reads")}
    tr.write_line(f"{'total':<22} {len(RESULTS):>5} {total['rows_lost']:>9} {total['reader_errors']:>13} "
                  f"{total['partial_reads']:>13}")
    for r in RESULTS:
        extra = {k: v for k, v in r.items() if k not in ("kind", "case", "rows_lost", "reader_errors", "partial_reads")}
        if extra:
            tr.write_line(f"  {r['case']}: {extra}")
