"""Bench: is what we deliver better than what the merchant wrote? Judged blind, on real messages.

Two kinds of figures.

1. Real-message sets (bench/real_messages/: public SMS from banks, telcos, e-wallets, shops and governments, and
   merchant-style templates written apart from the code; `*_dev` were tuned on, `*_holdout` were not). Each
   message goes through `crmagent rewrite` twice: offline (the rule engine) and with an LLM in files mode, whose
   requests are answered from recordings of a strong model's answers. The original and what each writer delivered
   are then judged blind (shuffled, 1-10 each, invented / dropped / broken per version) by the `blind_judge` prompt,
   also through files mode and also answered from recordings. Printed: better / same / worse against the
   original per writer, by language and by message kind, with broken, invented, valid deadlines dropped and sales
   calls to action put on non-marketing messages.

   Nothing here needs a model: the recordings under bench/quality/ answer every request the current code makes.
   A request the code makes that no recording answers (a prompt changed, a rewrite changed) is counted as "not
   judged" and written to bench/out/quality/<set>.<llm|judge>-pending.jsonl for a model to answer:
     .venv/bin/python bench/quality.py --record-answers results.jsonl --stage judge --set sms_holdout
   adds its answers to the recordings. With an endpoint (OPENAI_BASE_URL / OPENAI_API_KEY), `--live` asks it for
   every request no recording answers and records the answers.

2. The labelled real-style sets of tests/data and a synthetic month through the Dagster assets: terms kept and
   invented, language kept, within the length limit (`--faithfulness`).

    .venv/bin/python bench/quality.py                         # the holdout sets, from the recordings
    .venv/bin/python bench/quality.py --sets sms_dev merchant_dev
    .venv/bin/python bench/quality.py --faithfulness          # part 2 (builds a 150k-log synthetic month)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crmagent_dagster import quality  # noqa: E402
from crmagent_dagster.adhoc import rewrite_file  # noqa: E402
from crmagent_dagster.agents.facts import OfferFacts, month_start  # noqa: E402
from crmagent_dagster.llm import LLMResource  # noqa: E402
from crmagent_dagster.llm.batch import export_pending, import_file  # noqa: E402
from crmagent_dagster.sql import fetch_dicts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "quality"
DEFAULT_SETS = ("merchant_fresh6", "merchant_fresh5", "merchant_fresh4", "sms_fresh3", "merchant_fresh3", "sms_fresh2", "merchant_fresh2", "sms_fresh", "merchant_fresh", "sms_holdout", "merchant_holdout")
Answerer = Callable[[dict[str, Any]], dict[str, Any] | None]


# --- part 1: real messages, judged blind -----------------------------------------------------------------
def files_llm() -> LLMResource:
    return LLMResource(configured=True, mode="files", base_url=quality.FILES_URL, default_model=quality.FILES_MODEL)


def answer_from(recording: quality.Recording, live: Answerer | None) -> tuple[Answerer, list[dict[str, Any]]]:
    """An answerer that takes recorded answers first, then the live endpoint (whose answers it keeps)."""
    fresh: list[dict[str, Any]] = []

    def answer(line: dict[str, Any]) -> dict[str, Any] | None:
        got = recording.answer(line)
        if got is None and live is not None:
            got = live(line)
            if got is not None:
                got = {**got, "request_key": quality.request_key(line["body"])}
                recording.answers[got["request_key"]] = got
                fresh.append(got)
        return got

    return answer, fresh


def answer_round(db: Path, folder: Path, answer: Answerer, name: str) -> tuple[int, list[dict[str, Any]]]:
    """Export what waits, answer what can be answered, import it. Returns (answered, still unanswered)."""
    requests = folder / f"{name}.requests.jsonl"
    with duckdb.connect(str(db)) as conn:
        if not export_pending(conn, requests):
            return 0, []
    lines = [json.loads(x) for x in requests.read_text(encoding="utf-8").splitlines() if x.strip()]
    answered = [(line, answer(line)) for line in lines]
    got = [json.dumps(a, ensure_ascii=False) for _, a in answered if a is not None]
    if got:
        with duckdb.connect(str(db)) as conn:
            import_file(conn, got, {})
    return len(got), [line for line, a in answered if a is None]


def write_inputs(items: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(quality.input_line(i), ensure_ascii=False) + "\n" for i in items),
                    encoding="utf-8")


def run_offline(items: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    src, out = folder / "offline.in.jsonl", folder / "offline.out.jsonl"
    write_inputs(items, src)
    rewrite_file(src, out, LLMResource())
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


def run_llm(items: list[dict[str, Any]], folder: Path, answer: Answerer) -> tuple[list[dict[str, Any]], list[dict]]:
    """`crmagent rewrite` in files mode, each round's requests answered, until nothing more can be answered."""
    src, out, db = folder / "llm.in.jsonl", folder / "llm.out.jsonl", folder / "writer-files.duckdb"
    write_inputs(items, src)
    pending: list[dict[str, Any]] = []
    for _ in range(12):  # audit, rewrite, re-asks, scores and judgments, audit of the rewrite
        rewrite_file(src, out, files_llm(), db=str(db))
        answered, pending = answer_round(db, folder, answer, "llm")
        if not answered:
            break
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()], pending


def run_judge(items: list[dict[str, Any]], delivered: dict[str, dict[str, tuple[str, str]]], folder: Path,
              answer: Answerer, set_name: str) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, str]], list]:
    """The blind judge's verdict per item and version label, and the labels each writer's text got."""
    llm, db = files_llm(), folder / "judge-files.duckdb"
    requests, labels = [], {}
    for item in items:
        order, labels[item["id"]] = quality.versions_of(item, delivered[item["id"]])
        if len(order) > 1:  # one text only: nothing was changed, nothing to judge
            requests.append(quality.judge_request(item, order, item["id"]))
    pending: list[dict[str, Any]] = []
    results = {}
    for _ in range(3):
        with duckdb.connect(str(db)) as conn:
            results = {r.custom_id: r for r in llm.run(requests, conn=conn, scope=f"blind_judge|{set_name}",
                                                       log=lambda m: None).results}
        if all(r.ok for r in results.values()):
            break
        answered, pending = answer_round(db, folder, answer, "judge")
        if not answered:
            break
    verdicts = {cid: {v["label"]: v for v in (r.parsed or {}).get("versions", [])} for cid, r in results.items() if r.ok}
    return verdicts, labels, pending


def delivered_text(record: dict[str, Any]) -> tuple[str, str]:
    return record["delivered"]["title"] or "", record["delivered"]["body"] or ""


def real_set(name: str, live: Answerer | None) -> list[quality.Judged]:
    items = quality.load_file(quality.SETS_DIR / f"{name}.jsonl")
    OUT.mkdir(parents=True, exist_ok=True)
    llm_rec = quality.Recording.read(quality.RECORDINGS / "llm" / f"{name}.answers.jsonl")
    judge_rec = quality.Recording.read(quality.RECORDINGS / "judge" / f"{name}.answers.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        offline = run_offline(items, folder)
        llm_answer, llm_fresh = answer_from(llm_rec, live)
        llm_records, llm_pending = run_llm(items, folder, llm_answer)
        delivered = {i["id"]: {"offline": delivered_text(o), "llm": delivered_text(m)}
                     for i, o, m in zip(items, offline, llm_records, strict=True)}
        judge_answer, judge_fresh = answer_from(judge_rec, live)
        verdicts, labels, judge_pending = run_judge(items, delivered, folder, judge_answer, name)
        took = time.perf_counter() - started
    for stage, fresh in (("llm", llm_fresh), ("judge", judge_fresh)):
        if fresh:
            append_recording(quality.RECORDINGS / stage / f"{name}.answers.jsonl", fresh)
    for stage, pending in (("llm", llm_pending), ("judge", judge_pending)):
        path = OUT / f"{name}.{stage}-pending.jsonl"
        path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pending), encoding="utf-8")
    rows = []
    for item, o, m in zip(items, offline, llm_records, strict=True):
        for writer, record in (("offline", o), ("llm", m)):
            rows.append(quality.judged(item, writer, record, verdicts.get(item["id"]), labels[item["id"]]))
    waiting = sum(r["status"] == "waiting" for r in llm_records)
    print(f"\n== {name}: {len(items)} messages ({took:.0f}s); LLM path: "
          f"{sum(r['status'] == 'ok' for r in llm_records)} rewritten, {waiting} still waiting for answers; "
          f"{len(llm_pending)} LLM and {len(judge_pending)} judge request(s) unanswered"
          + (f" -> {OUT}/{name}.*-pending.jsonl" if llm_pending or judge_pending else ""))
    print(quality.quality_table(rows, "language"))
    print()
    print(quality.quality_table(rows, "kind"))
    return rows


def append_recording(path: Path, answers: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for a in answers:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")


def record_answers(results: Path, stage: str, name: str) -> int:
    """Add a results file (Batch API output lines) answering `<set>.<stage>-pending.jsonl` to the recordings."""
    pending = {json.loads(x)["custom_id"]: json.loads(x) for x in
               (OUT / f"{name}.{stage}-pending.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()}
    fresh, unknown = [], []
    for line in results.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        request = pending.get(obj.get("custom_id"))
        if request is None:
            unknown.append(obj.get("custom_id"))
            continue
        fresh.append({**obj, "request_key": quality.request_key(request["body"])})
    append_recording(quality.RECORDINGS / stage / f"{name}.answers.jsonl", fresh)
    print(f"{len(fresh)} answer(s) recorded for {name} ({stage}); {len(unknown)} answer no pending request: {unknown[:5]}")
    return 1 if unknown else 0


def live_answerer() -> Answerer:
    """Answer requests from the configured OpenAI-compatible endpoint, in the Batch API's output format."""
    from crmagent_dagster.llm import llm_resource_from_env

    llm = llm_resource_from_env().process_config_and_initialize()
    import openai

    client = openai.OpenAI(api_key=llm.api_key or "no-key", base_url=llm.base_url)

    def answer(line: dict[str, Any]) -> dict[str, Any] | None:
        body = {**line["body"], "model": llm.default_model}
        try:
            reply = client.chat.completions.create(**body)
        except openai.OpenAIError as e:
            print(f"  {line['custom_id']}: {type(e).__name__}: {e}", file=sys.stderr)
            return None
        return {"custom_id": line["custom_id"], "answered_by": llm.default_model,
                "response": {"status_code": 200, "body": reply.model_dump()}}

    return answer


def summary(rows: list[quality.Judged], name: str) -> list[str]:
    """The issue's bars for one set, as lines that say whether each holds."""
    out = []
    for writer in quality.WRITERS:
        rs = [r for r in rows if r.writer == writer]
        n, changed = len(rs), [r for r in rs if r.changed]
        worse = sum(r.verdict == "worse" for r in rs)
        better = sum(r.verdict == "better" for r in rs)
        better_changed = sum(r.verdict == "better" for r in changed)
        erring = [r for r in rs if r.has_error]
        better_erring = sum(r.verdict == "better" for r in erring)
        out.append(f"{name} {writer}: better {better}/{n} ({100 * better / n:.0f}%), worse {worse}/{n} "
                   f"({100 * worse / n:.1f}%), better among changed {better_changed}/{len(changed)}, better among "
                   f"those with something to fix {better_erring}/{len(erring)}, broken "
                   f"{sum(r.broken for r in rs)}, invented {sum(bool(r.invented) for r in rs)}, valid deadlines "
                   f"dropped {sum(bool(r.dropped_deadlines) for r in rs)}, sales CTA on non-marketing "
                   f"{sum(r.sales_cta_added and r.kind not in quality.MARKETING_KINDS for r in rs)}, not judged "
                   f"{sum(r.verdict == 'not_judged' for r in rs)}")
    return out


# --- part 2: faithfulness on the labelled sets and a synthetic month -------------------------------------
SQL_JOIN = ("SELECT w.*, l.title, l.body, l.language AS declared_language, l.currency, l.product_name, l.category_l1, "
            "l.category_l2, l.category_l3, l.voucher_type, l.discount_value, l.min_spend, l.max_discount, "
            "l.voucher_code, l.expires_at FROM agents.template_rewrites w JOIN core.labelled_templates l "
            "USING (month, segment, aggregate_id) WHERE w.month = $month")


def labelled_set(folder: Path) -> dict[str, quality.Tally]:
    items = quality.load_set(folder)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        write_inputs(items, src)
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


def faithfulness(args: argparse.Namespace) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="sets under bench/real_messages/")
    parser.add_argument("--live", action="store_true", help="ask the configured endpoint what no recording answers")
    parser.add_argument("--record-answers", type=Path, help="a results file answering a pending file (with --stage, --set)")
    parser.add_argument("--stage", choices=("llm", "judge"))
    parser.add_argument("--set")
    parser.add_argument("--report", type=Path, help="also write the tables as Markdown to this file")
    parser.add_argument("--faithfulness", action="store_true", help="part 2: labelled sets and a synthetic month")
    parser.add_argument("--db", help="with --faithfulness: a refreshed month's DuckDB file (default: build one)")
    parser.add_argument("--month", default="2025-04")
    parser.add_argument("--logs", type=int, default=150_000, help="logs of the fresh synthetic month")
    args = parser.parse_args()
    if args.record_answers:
        if not (args.stage and args.set):
            parser.error("--record-answers needs --stage and --set")
        return record_answers(args.record_answers, args.stage, args.set)
    if args.faithfulness:
        faithfulness(args)
        return 0
    live = live_answerer() if args.live else None
    lines, every = [], {}
    for name in args.sets:
        every[name] = real_set(name, live)
        lines += summary(every[name], name)
    print("\n" + "\n".join(lines))
    if args.report:
        args.report.write_text(report(every), encoding="utf-8")
        print(f"tables -> {args.report}")
    return 0


def report(every: dict[str, list[quality.Judged]]) -> str:
    """The README's tables: per set and writer, then per language and per kind."""
    head = ["set", "writer", "messages", "changed", "better", "same", "worse", "not judged", "better % of changed",
            "better / to fix", "broken", "invented", "deadlines dropped", "sales CTA on non-marketing"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name, rows in every.items():
        for writer in quality.WRITERS:
            rs = [r for r in rows if r.writer == writer]
            changed = [r for r in rs if r.changed]
            erring = [r for r in rs if r.has_error]
            count = lambda v, among=rs: sum(r.verdict == v for r in among)  # noqa: E731
            cells = [name, writer, len(rs), len(changed), count("better"), count("same"), count("worse"),
                     count("not_judged"), f"{100 * count('better', changed) / len(changed):.0f}" if changed else "-",
                     f"{count('better', erring)}/{len(erring)}", sum(r.broken for r in rs),
                     sum(bool(r.invented) for r in rs), sum(bool(r.dropped_deadlines) for r in rs),
                     sum(r.sales_cta_added and r.kind not in quality.MARKETING_KINDS for r in rs)]
            out.append("| " + " | ".join(str(c) for c in cells) + " |")
    for name, rows in every.items():
        out += ["", f"**{name}**, per language:", "", quality.quality_table(rows, "language"),
                "", f"**{name}**, per kind:", "", quality.quality_table(rows, "kind")]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
