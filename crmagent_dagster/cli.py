"""`crmagent`: generate a synthetic month, refresh a month through Dagster, print a summary."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from crmagent_dagster.synthetic.month import parse_month

PACKAGE_DIR = Path(__file__).resolve().parent


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to data/dagster_home, with the project's dagster.yaml (DuckDB writer pool = 1)."""
    from crmagent_dagster.resources import DATA_DIR

    home = Path(os.environ.get("DAGSTER_HOME") or DATA_DIR / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PACKAGE_DIR / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_generate(args: argparse.Namespace) -> int:
    from crmagent_dagster.landing import SYNTHETIC_MARKER, write_landing_month
    from crmagent_dagster.partitions import previous_month
    from crmagent_dagster.resources import connect_waiting, duckdb_path, landing_dir
    from crmagent_dagster.synthetic.deployed import load_campaigns
    from crmagent_dagster.synthetic.month import CHUNK_LOGS, generate_month, write_month_in_chunks

    campaigns = []
    if args.deploy_from:
        if args.deploy_from != previous_month(args.month):
            print(f"--deploy-from must be the month before {args.month} ({previous_month(args.month)}): experiments "
                  "are measured on the next month's deliveries", file=sys.stderr)
            return 2
        db = args.db or duckdb_path()
        if not Path(db).exists():
            print(f"--deploy-from reads agents.deployments from {db}, which does not exist", file=sys.stderr)
            return 2
        with connect_waiting(db, read_only=True) as conn:
            campaigns = load_campaigns(conn, args.deploy_from)
        print(f"sending {len(campaigns)} experiment(s) deployed in {args.deploy_from} (from {db})")
    started = time.perf_counter()
    if args.logs > CHUNK_LOGS and not campaigns:  # a big month goes to disk chunk by chunk, never whole in memory
        written = write_month_in_chunks(args.month, args.logs, args.out or landing_dir(), args.seed)
        for table, rows in written.rows.items():
            print(f"  {table:<18} {rows:>10,} rows")
        print(f"generated {args.month} ({args.logs:,} logs, seed {args.seed}, {written.parts} parts) in "
              f"{time.perf_counter() - started:.1f}s -> {written.folder}")
        print("materialize it with: crmagent refresh --month", args.month)
        return 0
    month = generate_month(args.month, args.logs, args.seed, campaigns=campaigns)
    generated = time.perf_counter() - started
    out = write_landing_month(month.tables, args.out or landing_dir(), args.month)
    month.template_truth.write_parquet(out / SYNTHETIC_MARKER)
    if month.experiment_truth is not None:
        month.experiment_truth.write_parquet(out / "_synthetic_experiment_truth.parquet")
    for table, frame in month.tables.items():
        print(f"  {table:<18} {frame.height:>10,} rows")
    print(f"generated {args.month} ({args.logs:,} logs, seed {args.seed}) in {generated:.1f}s -> {out}")
    print("materialize it with: crmagent refresh --month", args.month)
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_dead_runs(instance) -> list[str]:
    """Fail runs this CLI started whose process is gone (killed), and free their pool slots.

    Without a daemon nothing notices a killed in-process run: its `duckdb_writer` slot stays
    claimed and the next run would wait for it forever.
    """
    import socket

    import dagster as dg

    reclaimed = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                   tags={"crmagent/launcher": "cli"}))
    for run in runs:
        pid = int(run.tags.get("crmagent/pid", "0"))
        if run.tags.get("crmagent/host") != socket.gethostname() or not pid or _pid_alive(pid):
            continue
        instance.report_run_failed(run, f"process {pid} that ran it is gone (killed?); reclaimed by crmagent refresh")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(run.run_id)
    return reclaimed


def run_job(defs, job: str, partition_key, *, instance, tags: dict[str, str], run_config: dict | None = None
            ) -> list[str]:
    """Run one job in-process; return what failed, loudly: each failed step's error and each failed
    ERROR-severity check with its name and description (an empty list means everything held)."""
    import dagster as dg

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the UI has every log line
    result = defs.resolve_job_def(job).execute_in_process(partition_key=partition_key, instance=instance,
                                                          run_config={**quiet, **(run_config or {})}, tags=tags,
                                                          raise_on_error=False)
    graph = defs.resolve_asset_graph()
    problems = []
    for e in result.get_asset_check_evaluations():
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR:
            spec = graph.get_check_spec(e.asset_check_key)
            why = f" ({e.description})" if e.description else ""
            problems.append(f"check {e.asset_key.to_user_string()}:{e.check_name} failed: {spec.description}{why}")
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data is not None:
            error = event.step_failure_data.error
            cause = error.cause if error and error.cause and "DagsterExecutionStepExecutionError" in error.cls_name else error
            if cause is not None and "DagsterAssetCheckFailedError" not in (cause.cls_name or ""):
                problems.append(f"step {event.step_key} failed: {cause.cls_name}: {cause.message.strip()}")
    if not result.success and not problems:
        problems.append(f"{job} failed for {partition_key}")
    return problems


def cmd_refresh(args: argparse.Namespace) -> int:
    import socket

    import dagster as dg

    from crmagent_dagster.definitions import build_definitions
    from crmagent_dagster.segments import SEGMENT_KEYS

    home = ensure_dagster_home()
    synthetic = bool(args.synthetic or args.logs)
    defs = build_definitions(database=args.db, synthetic_logs=args.logs, synthetic=synthetic or None)
    instance = dg.DagsterInstance.get()
    for run_id in reclaim_dead_runs(instance):
        print(f"reclaimed run {run_id}: its process is gone, so it is marked failed and its slots are freed")
    tags = {"crmagent/launcher": "cli", "crmagent/pid": str(os.getpid()), "crmagent/host": socket.gethostname()}
    started = time.perf_counter()
    print(f"refreshing {args.month}: raw -> staging -> engagement ...", flush=True)
    problems = run_job(defs, "monthly_logs_job", args.month, instance=instance, tags=tags)
    if problems:
        _report_failure(f"the month {args.month} did not load", problems, home)
        return 1
    segments = args.segment or list(SEGMENT_KEYS)
    for segment in segments:  # last month's experiments are measured before this month's rewrites
        print(f"  segment {segment} ...", flush=True)
        key = dg.MultiPartitionKey({"month": args.month, "segment": segment})
        problems += run_job(defs, "experiments_job", key, instance=instance, tags=tags)
        problems += run_job(defs, "segment_job", key, instance=instance, tags=tags,
                            run_config=deployment_config(args.auto_approve))
    if not problems and not args.segment:  # the paper's tables need every segment of the month
        print("  results: Tables 1-3, judge validity, engagement predictor, figures ...", flush=True)
        problems += run_job(defs, "monthly_results_job", args.month, instance=instance, tags=tags)
    print(f"\nrefreshed {args.month} in {time.perf_counter() - started:.1f}s")
    print_summary(args.db, args.month)
    if problems:
        _report_failure(f"the refresh of {args.month} did not fully succeed", problems, home)
        return 1
    return _llm_gate(args.db, args.month, args.max_failed_share)


def _llm_gate(db: str | None, month: str, max_share: float) -> int:
    """Exit 1 when more than `max_share` of the rewrites that asked a model failed (all of them, against an endpoint
    that is down): the runs succeeded, but the month's rewrites did not happen, and the error says why."""
    from crmagent_dagster.resources import connect_waiting, duckdb_path
    from crmagent_dagster.summary import llm_failures

    with connect_waiting(db or duckdb_path(), read_only=True) as conn:
        failed, asked, error = llm_failures(conn, month)
    if asked and failed / asked > max_share:
        print(f"\n{failed} of {asked} rewrites that asked the model failed ({failed / asked:.0%}, more than "
              f"--max-failed-share {max_share:.0%}); the most common error: {error}\nFix the endpoint "
              f"(OPENAI_BASE_URL, OPENAI_API_KEY) and refresh again: only the failed ones are asked again.",
              file=sys.stderr)
        return 1
    return 0


def deployment_config(auto_approve: bool) -> dict:
    return {"ops": {"agents__deployments": {"config": {"auto_approve": auto_approve}}}}


def cmd_deploy(args: argparse.Namespace) -> int:
    """Re-materialize the month's deployments after a review, without re-running anything upstream."""
    import socket

    import dagster as dg

    from crmagent_dagster.definitions import build_definitions
    from crmagent_dagster.segments import SEGMENT_KEYS

    home = ensure_dagster_home()
    defs = build_definitions(database=args.db)
    instance = dg.DagsterInstance.get()
    tags = {"crmagent/launcher": "cli", "crmagent/pid": str(os.getpid()), "crmagent/host": socket.gethostname()}
    problems = []
    for segment in args.segment or list(SEGMENT_KEYS):
        key = dg.MultiPartitionKey({"month": args.month, "segment": segment})
        problems += run_job(defs, "deployments_job", key, instance=instance, tags=tags,
                            run_config=deployment_config(args.auto_approve))
    print_deployments(args.db, args.month)
    if problems:
        _report_failure(f"the deployments of {args.month} did not fully succeed", problems, home)
        return 1
    return 0


def print_deployments(db: str | None, month: str) -> None:
    from crmagent_dagster.experiments.deploy import sender_file
    from crmagent_dagster.resources import connect_waiting, duckdb_path
    from crmagent_dagster.summary import deployment_lines

    path = db or duckdb_path()
    with connect_waiting(path, read_only=True) as conn:
        print("\n".join(deployment_lines(conn, month)))
    print(f"Sender files: {sender_file(path, month, '*')}")


def _report_failure(headline: str, problems: list[str], home: Path) -> None:
    print(f"\nFAILED: {headline}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print(f"The previous version of what failed is kept. Runs and logs: DAGSTER_HOME={home} (make dev)", file=sys.stderr)


def print_summary(db: str | None, month: str) -> None:
    from crmagent_dagster.report import report_dir
    from crmagent_dagster.resources import connect_waiting, duckdb_path
    from crmagent_dagster.summary import month_summary

    path = db or duckdb_path()
    with connect_waiting(path, read_only=True) as conn:  # another run may hold the write lock
        print(month_summary(conn, month))
    print(f"\nDuckDB file: {path}")
    report = report_dir(path) / f"{month}.md"
    if report.exists():
        print(f"Report (tables and charts): {report}")
    print("Open the UI and the review page: `make dev`, then http://127.0.0.1:3000 (Dagster) and "
          "http://127.0.0.1:3001 (review)")


def cmd_rewrite(args: argparse.Namespace) -> int:
    from crmagent_dagster.adhoc import rewrite_file
    from crmagent_dagster.llm import llm_resource_from_env

    if args.month and not args.db:
        print("--month needs --db: retrieval reads that month's index from its DuckDB file", file=sys.stderr)
        return 2
    # Outside a Dagster run, EnvVar fields (the API key) resolve through the resource's own processing.
    llm = llm_resource_from_env().process_config_and_initialize()
    try:
        counts = rewrite_file(Path(args.src), Path(args.dst), llm, db=args.db, month=args.month, as_of=args.as_of,
                              rewrite_all=args.rewrite_all)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"{counts.get('ok', 0)} line(s) rewritten, {counts.get('unchanged', 0)} unchanged (nothing to fix, or no "
          f"sure fix: see 'error'), {counts.get('rejected', 0)} rejected (the original stands), "
          f"{counts.get('waiting', 0)} waiting, {counts.get('failed', 0)} failed, {counts.get('error', 0)} bad line(s) "
          f"-> {args.dst}")
    reasons = _reasons(Path(args.dst))
    for reason, n in reasons.most_common():
        print(f"  {n:>5}  {reason}")
    if counts.get("error") or counts.get("failed"):
        print(f"FAILED: {counts.get('failed', 0)} line(s) failed and {counts.get('error', 0)} line(s) are bad; a re-run "
              "retries what failed (answers already in the cache are not asked again)", file=sys.stderr)
        return 1
    if counts.get("waiting"):  # files mode: nothing broke, the answers are not in yet
        print(f"{counts['waiting']} line(s) wait for batch results: crmagent batch export, send the file, crmagent "
              "batch import, then run this again", file=sys.stderr)
        return 3
    return 0


def _reasons(out: Path):
    """Why lines were not rewritten, counted: bad lines by field, failed items by error, rejections by check."""
    import json
    import re
    from collections import Counter

    reasons: Counter = Counter()
    for line in out.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        error = record.get("error") or ""
        if record["status"] == "error":
            field = re.match(r"line \d+: ([^:;]+)", error)
            reasons[f"bad line: {field.group(1) if field else error}"] += 1
        elif record["status"] == "failed":
            reasons[f"failed: {re.split(r'[:(]', error.removeprefix('the audit of the original failed: '))[0].strip()}"] += 1
        elif record["status"] == "rejected":
            checks = [f.split(":")[0] for f in (record.get("guardrails") or {}).get("failed", [])]
            reasons[f"rejected: {', '.join(checks) if checks else error.split(':')[0]}"] += 1
        elif record["status"] == "unchanged":
            kind = (record.get("kind") or {}).get("kind", "?")
            reasons[f"unchanged ({kind}): {error.split(':')[0] if error.startswith('no error') else 'no sure fix'}"] += 1
        elif record["status"] == "waiting":
            reasons[f"waiting for: {', '.join(record.get('waiting_for') or ['batch results'])}"] += 1
    return reasons


def cmd_batch_export(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from crmagent_dagster.llm import llm_resource_from_env
    from crmagent_dagster.llm.batch import export_pending
    from crmagent_dagster.resources import connect_waiting, duckdb_path

    path = Path(args.out) if args.out else Path(llm_resource_from_env().batch_dir) / (
        f"requests-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.jsonl")
    with connect_waiting(args.db or duckdb_path()) as conn:
        n = export_pending(conn, path, args.scope)
    if not n:
        print("no pending requests: every request of the last runs in files mode is answered", file=sys.stderr)
        return 1
    print(f"{n} request(s) -> {path}\nsend it to your provider's Batch API (or answer it elsewhere), then: "
          f"crmagent batch import --in <results.jsonl>")
    return 0


def cmd_batch_import(args: argparse.Namespace) -> int:
    from crmagent_dagster.llm import llm_resource_from_env
    from crmagent_dagster.llm.batch import import_file
    from crmagent_dagster.resources import connect_waiting, duckdb_path

    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    with connect_waiting(args.db or duckdb_path()) as conn:
        report = import_file(conn, lines, llm_resource_from_env().prices)
    print(f"{args.src}: {report.lines} line(s), {report.ok} answer(s) cached, {report.errors} failed request(s), "
          f"{len(report.unmatched)} unmatched, {len(report.duplicates)} duplicate(s), {len(report.malformed)} malformed")
    for problem in report.malformed[:20]:
        print(f"  malformed: {problem}", file=sys.stderr)
    for cid in report.unmatched[:20]:
        print(f"  unmatched custom_id (no pending request): {cid}", file=sys.stderr)
    if report.ok:
        print("re-run the same refresh or rewrite: cached answers are used, and what failed is asked again")
    return 0 if report.ok and not report.malformed and not report.unmatched else 1


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(args.db, args.month)
    return 0


def _month(value: str) -> str:
    try:
        parse_month(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive count, got {value}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmagent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic month as landing Parquet files")
    gen.add_argument("--month", type=_month, required=True, help="YYYY-MM")
    gen.add_argument("--logs", type=_positive, default=1_000_000, help="delivery logs to generate")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--out", help="landing folder (default $CRMAGENT_LANDING_DIR or data/landing)")
    gen.add_argument("--deploy-from", type=_month, help="also send the experiments deployed in this month (the one "
                                                        "before --month) by their assignment rule")
    gen.add_argument("--db", help="DuckDB file holding those deployments (default $CRMAGENT_DUCKDB_PATH)")
    gen.set_defaults(func=cmd_generate)

    ref = sub.add_parser("refresh", help="materialize a month (all stages, every segment) through Dagster")
    ref.add_argument("--month", type=_month, required=True)
    ref.add_argument("--synthetic", action="store_true",
                     help="generate the month if it has no landing folder (demo mode); a landing folder is always used")
    ref.add_argument("--logs", type=_positive, default=None, help="logs to generate (implies --synthetic)")
    ref.add_argument("--segment", action="append", help="only these segments (repeatable); default all 11")
    ref.add_argument("--db", help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    ref.add_argument("--auto-approve", action="store_true",
                     help="deploy rewrites nobody reviewed yet when they pass every guardrail and the judge prefers "
                          "them in both orders (the policy); reviewers' decisions always win")
    ref.add_argument("--max-failed-share", type=float, default=0.5,
                     help="exit 1 when more than this share of the model-written rewrites failed (default 0.5)")
    ref.set_defaults(func=cmd_refresh)

    dep = sub.add_parser("deploy", help="turn a month's approved rewrites into experiments (after a review)")
    dep.add_argument("--month", type=_month, required=True)
    dep.add_argument("--segment", action="append", help="only these segments (repeatable); default all 11")
    dep.add_argument("--auto-approve", action="store_true", help="also deploy what the policy approves")
    dep.add_argument("--db", help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    dep.set_defaults(func=cmd_deploy)

    rw = sub.add_parser("rewrite", help="audit, rewrite and judge templates from a JSONL file (outside Dagster)")
    rw.add_argument("--in", dest="src", required=True, help="input JSONL: segment, title, body, optional facts")
    rw.add_argument("--out", dest="dst", required=True, help="output JSONL, one record per input line")
    rw.add_argument("--month", type=_month, help="retrieve exemplars from this materialized month (path 2)")
    rw.add_argument("--db", help="DuckDB file: the month to retrieve from, and where the LLM cache and batch "
                                 "requests are kept (needed for CRMAGENT_LLM_MODE=files)")
    rw.add_argument("--as-of", type=_date, default=None,
                    help="send date YYYY-MM-DD of lines without their own send_date: deadlines before it are flagged "
                         "as stale (default today)")
    rw.add_argument("--rewrite-all", action="store_true",
                    help="rewrite templates the audit finds no error in too (by default they are left unchanged)")
    rw.set_defaults(func=cmd_rewrite)

    batch = sub.add_parser("batch", help="files mode (CRMAGENT_LLM_MODE=files): one requests file out, one results "
                                         "file back in")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True)
    exp = batch_sub.add_parser("export", help="write every pending LLM request into one Batch API JSONL file")
    exp.add_argument("--out", help="requests file (default <batch_dir>/requests-<UTC time>.jsonl)")
    exp.add_argument("--db", help="DuckDB file holding the pending requests (default $CRMAGENT_DUCKDB_PATH)")
    exp.add_argument("--scope", help="only scopes starting with this, e.g. 'template_rewrites|2025-04'")
    exp.set_defaults(func=cmd_batch_export)
    imp = batch_sub.add_parser("import", help="read one Batch API results JSONL file into the LLM cache")
    imp.add_argument("--in", dest="src", required=True, help="results file (the provider's output JSONL)")
    imp.add_argument("--db", help="DuckDB file holding the pending requests (default $CRMAGENT_DUCKDB_PATH)")
    imp.set_defaults(func=cmd_batch_import)

    from crmagent_dagster.review.cli import register as register_review

    register_review(sub)  # crmagent review [export|import]

    summ = sub.add_parser("summary", help="print a month's summary from DuckDB")
    summ.add_argument("--month", type=_month, required=True)
    summ.add_argument("--db")
    summ.set_defaults(func=cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
