"""Bench: how faithful the offline rewrites are, per Appendix D error type, on real-style messages and on the
synthetic month: terms kept, terms invented, language kept, within the length limit, delivered / rejected.

The real-style sets (tests/data/real_style, and the held-out real_style_holdout) go through `crmagent rewrite`'s
own code; their terms are labelled by hand. The synthetic month goes through the Dagster assets, from raw logs
to template_rewrites; there the original's own parsed terms stand in for labels.

    .venv/bin/python bench/quality.py                  # both sets, and a fresh 150k-log synthetic month
    .venv/bin/python bench/quality.py --db data/crmagent.duckdb --month 2025-04   # a month already refreshed
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crmagent_dagster import quality  # noqa: E402
from crmagent_dagster.adhoc import rewrite_file  # noqa: E402
from crmagent_dagster.agents.facts import OfferFacts, month_start  # noqa: E402
from crmagent_dagster.llm import LLMResource  # noqa: E402
from crmagent_dagster.sql import fetch_dicts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SQL_JOIN = ("SELECT w.*, l.title, l.body, l.language AS declared_language, l.currency, l.product_name, l.category_l1, "
            "l.category_l2, l.category_l3, l.voucher_type, l.discount_value, l.min_spend, l.max_discount, "
            "l.voucher_code, l.expires_at FROM agents.template_rewrites w JOIN core.labelled_templates l "
            "USING (month, segment, aggregate_id) WHERE w.month = $month")


def labelled_set(folder: Path) -> dict[str, quality.Tally]:
    items = quality.load_set(folder)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps(quality.input_line(i), ensure_ascii=False) + "\n" for i in items),
                       encoding="utf-8")
        rewrite_file(src, out, LLMResource(), as_of=quality.REAL_STYLE_AS_OF)
        records = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    return quality.real_style_tallies(items, records)


def synthetic_month(db: str, month: str) -> dict[str, quality.Tally]:
    out: dict[str, quality.Tally] = {"all": quality.Tally()}
    with duckdb.connect(db, read_only=True) as conn:
        rows = fetch_dicts(conn, SQL_JOIN, {"month": month})
    for r in rows:
        facts = OfferFacts.from_row({**r, "language": r["declared_language"]}, month_start(month))
        for key in ("all", r["original_error_type"] or "error"):
            quality.score(out.setdefault(key, quality.Tally()), facts=facts, status=r["status"], title=r["new_title"],
                          body=r["new_body"], channel=r["channel"] or "push")
    return out


def build_month(logs: int) -> tuple[str, str]:
    """A fresh synthetic month through the real assets (raw -> template_rewrites), offline."""
    from crmagent_dagster.definitions import build_definitions
    from crmagent_dagster.segments import SEGMENT_KEYS

    tmp = tempfile.mkdtemp(prefix="crmagent-quality-")
    db = str(Path(tmp) / "wh.duckdb")
    defs = build_definitions(database=db, synthetic_logs=logs, synthetic=True)
    month = "2025-04"
    instance = dg.DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assert defs.resolve_job_def("monthly_logs_job").execute_in_process(partition_key=month, instance=instance,
                                                                     run_config=quiet).success
    for segment in SEGMENT_KEYS:
        key = dg.MultiPartitionKey({"month": month, "segment": segment})
        assert defs.resolve_job_def("segment_job").execute_in_process(partition_key=key, instance=instance,
                                                                      run_config=quiet).success, segment
    return db, month


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a refreshed month's DuckDB file (default: build a fresh synthetic month)")
    parser.add_argument("--month", default="2025-04")
    parser.add_argument("--logs", type=int, default=150_000, help="logs of the fresh synthetic month")
    args = parser.parse_args()
    for name in ("real_style", "real_style_holdout"):
        started = time.perf_counter()
        tallies = labelled_set(ROOT / "tests" / "data" / name)
        print(f"\n== {name} (offline rule engine, {time.perf_counter() - started:.1f}s) ==")
        print(quality.table(tallies))
        lost, made_up = tallies["all"].lost, tallies["all"].invented_terms
        print(f"terms lost: {lost or 'none'}; invented: {made_up or 'none'}")
    started = time.perf_counter()
    db, month = (args.db, args.month) if args.db else build_month(args.logs)
    built = time.perf_counter() - started
    tallies = synthetic_month(db, month)
    print(f"\n== synthetic month {month} ({db}{'' if args.db else f', built in {built:.0f}s'}) ==")
    print(quality.table(tallies))
    print(f"terms lost: {len(tallies['all'].lost)}; invented: {tallies['all'].invented_terms[:10] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
