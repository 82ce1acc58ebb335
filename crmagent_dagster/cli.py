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
    from crmagent_dagster.landing import write_landing_month
    from crmagent_dagster.resources import landing_dir
    from crmagent_dagster.synthetic.month import generate_month

    started = time.perf_counter()
    month = generate_month(args.month, args.logs, args.seed)
    generated = time.perf_counter() - started
    out = write_landing_month(month.tables, args.out or landing_dir(), args.month)
    month.template_truth.write_parquet(out / "_synthetic_template_truth.parquet")
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


def cmd_refresh(args: argparse.Namespace) -> int:
    import dagster as dg

    from crmagent_dagster.definitions import build_definitions
    from crmagent_dagster.segments import SEGMENT_KEYS

    home = ensure_dagster_home()
    defs = build_definitions(database=args.db, synthetic_logs=args.logs)
    import socket

    instance = dg.DagsterInstance.get()
    for run_id in reclaim_dead_runs(instance):
        print(f"reclaimed run {run_id}: its process is gone, so it is marked failed and its slots are freed")
    tags = {"crmagent/launcher": "cli", "crmagent/pid": str(os.getpid()), "crmagent/host": socket.gethostname()}
    # The runs (with every log line) are in the UI; the terminal only needs warnings and our progress.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    started = time.perf_counter()
    print(f"refreshing {args.month}: raw -> staging -> engagement ...", flush=True)
    result = defs.resolve_job_def("monthly_logs_job").execute_in_process(
        partition_key=args.month, instance=instance, run_config=quiet, tags=tags)
    if not result.success:
        print(f"monthly_logs_job failed for {args.month}; see the run in the UI (DAGSTER_HOME={home})", file=sys.stderr)
        return 1
    segments = args.segment or list(SEGMENT_KEYS)
    failed = []
    for segment in segments:
        print(f"  segment {segment} ...", flush=True)
        key = dg.MultiPartitionKey({"month": args.month, "segment": segment})
        run = defs.resolve_job_def("segment_job").execute_in_process(partition_key=key, instance=instance,
                                                                     run_config=quiet, tags=tags)
        if not run.success:
            failed.append(segment)
    if not failed and not args.segment:  # the paper's tables need every segment of the month
        print("  results: Tables 1-3, judge validity, engagement predictor, figures ...", flush=True)
        if not defs.resolve_job_def("monthly_results_job").execute_in_process(
                partition_key=args.month, instance=instance, run_config=quiet, tags=tags).success:
            failed.append("results")
    print(f"\nrefreshed {args.month} in {time.perf_counter() - started:.1f}s")
    print_summary(args.db, args.month)
    if failed:
        print(f"segment runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


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
    print(f"Open the UI: DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '<unset>')} .venv/bin/dagster dev   "
          "(or `make dev`), then http://127.0.0.1:3000")


def cmd_rewrite(args: argparse.Namespace) -> int:
    from crmagent_dagster.adhoc import rewrite_file
    from crmagent_dagster.llm import llm_resource_from_env

    if bool(args.month) != bool(args.db):
        print("--month and --db go together: retrieval needs a materialized month's index", file=sys.stderr)
        return 2
    counts = rewrite_file(Path(args.src), Path(args.dst), llm_resource_from_env(), db=args.db, month=args.month)
    print(f"{counts['ok']} line(s) rewritten, {counts['error']} error record(s) -> {args.dst}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(args.db, args.month)
    return 0


def _month(value: str) -> str:
    try:
        parse_month(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


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
    gen.set_defaults(func=cmd_generate)

    ref = sub.add_parser("refresh", help="materialize a month (all stages, every segment) through Dagster")
    ref.add_argument("--month", type=_month, required=True)
    ref.add_argument("--logs", type=_positive, default=None, help="logs to generate when the month has no landing data")
    ref.add_argument("--segment", action="append", help="only these segments (repeatable); default all 11")
    ref.add_argument("--db", help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    ref.set_defaults(func=cmd_refresh)

    rw = sub.add_parser("rewrite", help="audit, rewrite and judge templates from a JSONL file (outside Dagster)")
    rw.add_argument("--in", dest="src", required=True, help="input JSONL: segment, title, body, optional facts")
    rw.add_argument("--out", dest="dst", required=True, help="output JSONL, one record per input line")
    rw.add_argument("--month", type=_month, help="retrieve exemplars from this materialized month (path 2)")
    rw.add_argument("--db", help="the DuckDB file of that month")
    rw.set_defaults(func=cmd_rewrite)

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
