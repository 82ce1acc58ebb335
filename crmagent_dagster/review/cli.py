"""`crmagent review`: serve the review page, or round-trip a month's rewrites through a CSV file.

    crmagent review [--month M] [--db PATH] [--host 127.0.0.1] [--port 3001]
    crmagent review export --month M [--segment S] --out file.csv [--db PATH]
    crmagent review import --in file.csv [--reviewer NAME] [--db PATH]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path


def _month(value: str) -> str:
    # Checked here rather than with synthetic.month.parse_month: the page needs none of the generator's imports.
    try:
        datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"month must look like 2025-04, got {value!r}") from None
    return value


def _db(args: argparse.Namespace) -> str:
    from crmagent_dagster.resources import duckdb_path

    return getattr(args, "db", None) or duckdb_path()


def _existing_db(args: argparse.Namespace) -> str | None:
    """The warehouse a CSV command works on, or None (said on stderr) when there is none yet."""
    db = _db(args)
    if Path(db).exists():
        return db
    print(f"no warehouse at {db}", file=sys.stderr)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    import duckdb
    import uvicorn

    from crmagent_dagster.resources import connect_waiting
    from crmagent_dagster.review.items import newest_month
    from crmagent_dagster.review.server import create_app

    db = _db(args)
    month = args.month
    if month is None and Path(db).exists():
        try:
            with connect_waiting(db, timeout_s=20) as conn:
                month = newest_month(conn)
        except duckdb.IOException:  # a run holds the lock: the page picks the newest month once it can read
            month = None
    if not Path(db).exists():
        print(f"no warehouse at {db} yet: the page will show nothing until a month is refreshed", file=sys.stderr)
    print(f"review page for {month or 'no month yet'} on {db}: http://{args.host}:{args.port}/  (Ctrl+C stops it)")
    print("approved rewrites go out when the `deployments` asset is materialized, or with "
          f"`crmagent deploy --month {month or 'YYYY-MM'}`")
    listen = () if args.host in ("0.0.0.0", "::", "") else (args.host,)
    uvicorn.run(create_app(db, month, allowed_hosts=(*listen, *(args.allowed_host or ()))), host=args.host,
                port=args.port, log_level="warning")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from crmagent_dagster.resources import connect_waiting
    from crmagent_dagster.review.csvio import export_month

    db = _existing_db(args)
    if db is None:
        return 1
    with connect_waiting(db) as conn:
        n = export_month(conn, args.month, Path(args.out), args.segment)
    if not n:
        Path(args.out).unlink(missing_ok=True)
        where = f"{args.month}, segment {args.segment}" if args.segment else args.month
        print(f"no rewrites for {where} in {db}: nothing exported", file=sys.stderr)
        return 1
    print(f"{n} rewrite(s) -> {args.out}\nfill in decision (approve, edit or reject), edited_title/edited_body for an "
          f"edit and an optional note, then: crmagent review import --in {args.out} --reviewer <your name>")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from crmagent_dagster.resources import connect_waiting
    from crmagent_dagster.review.csvio import CsvFileError, import_file

    db = _existing_db(args)
    if db is None:
        return 1
    try:
        with connect_waiting(db) as conn:
            report = import_file(conn, Path(args.src), args.reviewer)
    except (CsvFileError, OSError, UnicodeDecodeError) as e:
        print(f"cannot read {args.src}: {e}", file=sys.stderr)
        return 1
    print(f"{args.src}: {report.rows} row(s): {len(report.recorded)} decision(s) recorded, "
          f"{report.unchanged} already recorded, {report.blank} without a decision, {len(report.problems)} failed")
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    if report.problems:
        print("fix the rows named above and import the file again (rows already recorded are not repeated)",
              file=sys.stderr)
    return 1 if report.problems else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `review` (serve) with `export` and `import` to a parser's subcommands."""
    review = subparsers.add_parser("review", help="approve, edit or reject rewrites on a local web page (or via CSV)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    review.add_argument("--month", type=_month, help="month the page opens on (default the newest with rewrites)")
    review.add_argument("--db", help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    review.add_argument("--port", type=int, default=3001)
    review.add_argument("--allowed-host", action="append", metavar="NAME",
                        help="a name the page is served under besides 127.0.0.1/localhost (repeatable); any other "
                             "Host header is refused, which stops DNS-rebinding pages")
    review.set_defaults(func=cmd_serve)
    sub = review.add_subparsers(dest="review_command")
    # SUPPRESS: an option left out here keeps what `review --db` set instead of overwriting it with None.
    exp = sub.add_parser("export", help="write a month's rewrites as a CSV to review in a spreadsheet")
    exp.add_argument("--month", type=_month, required=True)
    exp.add_argument("--segment", help="only this segment")
    exp.add_argument("--out", required=True, help="CSV file to write (UTF-8 with BOM, opens in Excel)")
    exp.add_argument("--db", default=argparse.SUPPRESS, help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    exp.set_defaults(func=cmd_export)
    imp = sub.add_parser("import", help="record the decisions of a filled-in export; bad rows are reported")
    imp.add_argument("--in", dest="src", required=True, help="the filled-in CSV")
    imp.add_argument("--reviewer", help="who decided (a reviewer column in the file wins where filled)")
    imp.add_argument("--db", default=argparse.SUPPRESS, help="DuckDB file (default $CRMAGENT_DUCKDB_PATH)")
    imp.set_defaults(func=cmd_import)
