"""A team's first real run (issue 12): typed Parquet part files, empty and header-only exports, bad bytes, a kill
mid-load, and `crmagent rewrite` with a real key, JSON Lines with U+2028, 150% off and failing lines."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from crmagent_dagster import pipeline as P
from crmagent_dagster.landing import LandingError, load_landing_month, write_landing_month
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.segments import SEGMENT_KEYS
from crmagent_dagster.synthetic.month import generate_month
from dagster_helpers import MONTHLY
from fake_openai import FakeOpenAI, Reply

BIN = Path(sys.executable).parent
MONTH = "2025-04"
ZONE = "Asia/Kuala_Lumpur"  # the platform's zone in these tests: UTC+8


@pytest.fixture(scope="module")
def month():
    return generate_month(MONTH, 30_000, seed=13)


def res(tmp: Path, landing: Path, **kw) -> dict:
    return {"duckdb": CRMWarehouse(database=str(tmp / "wh.duckdb")),
            "log_source": LogSource(landing_dir=str(landing), timezone=ZONE, **kw)}


def q(db: Path, sql: str, params: dict | None = None):
    with duckdb.connect(str(db), read_only=True) as c:
        return c.execute(sql, params or {}).fetchall()


def stamp(text: pl.Series) -> list[dt.datetime | None]:
    """Text times as typed values; a value no typed column could hold (the generator's '2025-02-30 25:61:00')
    exports as null, as a warehouse would."""
    def one(v: str | None) -> dt.datetime | None:
        try:
            return dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
        except (TypeError, ValueError):
            return None
    return [one(v) for v in text.to_list()]


def typed_export(tables: dict[str, pl.DataFrame], folder: Path) -> None:
    """The month the way Spark, BigQuery or pandas export it: native types, part files, zones, compressed CSV."""
    folder.mkdir(parents=True)
    logs = tables["delivery_logs"]
    local = stamp(logs["sent_at"])  # platform-local wall time -> an instant in UTC, stored with its zone
    utc = [None if t is None else (t - dt.timedelta(hours=8)).replace(tzinfo=dt.timezone.utc) for t in local]
    logs_arrow = logs.drop("sent_at").to_arrow().append_column("sent_at", pa.array(utc, pa.timestamp("us", tz="UTC")))
    logs_arrow = logs_arrow.set_column(logs_arrow.schema.get_field_index("segment"), "segment",
                                       logs_arrow.column("segment").dictionary_encode())
    third = logs_arrow.num_rows // 3
    pq.write_table(logs_arrow.slice(0, third), folder / "delivery_logs.parquet")
    pq.write_table(logs_arrow.slice(third, third), folder / "delivery_logs_part2.parquet")
    pq.write_table(logs_arrow.slice(2 * third), folder / "delivery_logs (1).parquet")
    events = tables["engagement_events"]
    ev = events.drop("event_at").to_arrow().append_column("event_at", pa.array(stamp(events["event_at"]),
                                                                               pa.timestamp("ms")))  # no zone
    (folder / "engagement_events").mkdir()
    half = ev.num_rows // 2
    pq.write_table(ev.slice(0, half), folder / "engagement_events" / "part-00000.parquet")
    pq.write_table(ev.slice(half), folder / "engagement_events" / "part-00001.parquet")
    v = tables["vouchers"]
    num = lambda s: pa.array([None if x in (None, "") else float(x) for x in s.to_list()], pa.float64())  # noqa: E731
    dec = lambda s: pa.array([None if x in (None, "") else __import__("decimal").Decimal(x).quantize(  # noqa: E731
        __import__("decimal").Decimal("0.01")) for x in s.to_list()], pa.decimal128(18, 2))
    expires = pa.array([None if x in (None, "") else dt.date.fromisoformat(x[:10]) for x in v["expires_at"].to_list()],
                       pa.date32())
    vt = v.select([c for c in v.columns if c not in ("discount_value", "min_spend", "max_discount", "expires_at")]).to_arrow()
    for name, arr in (("discount_value", dec(v["discount_value"])), ("min_spend", num(v["min_spend"])),
                      ("max_discount", num(v["max_discount"])), ("expires_at", expires)):
        vt = vt.append_column(name, arr)
    pq.write_table(vt, folder / "vouchers-0001.parquet")
    t = tables["templates"].to_arrow()
    t = t.set_column(t.schema.get_field_index("body"), "body", t.column("body").cast(pa.large_string()))
    pq.write_table(t, folder / "templates.parquet")
    with pa.CompressedOutputStream(str(folder / "shops.csv.gz"), "gzip") as out:
        pacsv.write_csv(tables["shops"].to_arrow(), out)
    with pa.CompressedOutputStream(str(folder / "plans-0001.csv.zst"), "zstd") as out:
        pacsv.write_csv(tables["plans"].to_arrow(), out)
    tables["products"].write_parquet(folder / "products.parquet")


def test_typed_parquet_part_files_load_to_the_same_labels_as_the_generators_format(tmp_path, month, reliability):
    plain, typed = tmp_path / "plain", tmp_path / "typed"
    write_landing_month(month.tables, plain / "landing", MONTH)
    typed_export(month.tables, typed / "landing" / MONTH)
    for tmp in (plain, typed):
        assert dg.materialize(MONTHLY, partition_key=MONTH, resources=res(tmp, tmp / "landing")).success
    rules = "SELECT source_table, rule, count(*) FROM staging.quarantine GROUP BY ALL ORDER BY ALL"
    assert q(typed / "wh.duckdb", rules) == q(plain / "wh.duckdb", rules)  # no timestamp rejected wholesale
    assert not [r for r in q(typed / "wh.duckdb", rules) if r[1] == "malformed_timestamp" and r[2] > 500]
    for tmp in (plain, typed):
        with duckdb.connect(str(tmp / "wh.duckdb")) as conn:
            for segment in SEGMENT_KEYS:
                P.label_segment(conn, MONTH, segment, P.LabelSettings(min_samples=5))
    labels = ("SELECT segment, shop_id, template_id, product_id, voucher_id, n_logs, mean_score, performance_label "
              "FROM core.quartile_labels ORDER BY ALL")
    assert len(q(typed / "wh.duckdb", labels)) > 100
    assert q(typed / "wh.duckdb", labels) == q(plain / "wh.duckdb", labels)
    # A zoned timestamp is converted to the platform's zone; a date expiry means the end of that day.
    first = month.tables["delivery_logs"].filter(pl.col("sent_at").str.len_chars() == 19).row(0, named=True)
    got = q(typed / "wh.duckdb", "SELECT sent_at FROM raw.delivery_logs WHERE log_id = $l LIMIT 1", {"l": first["log_id"]})
    assert got == [(first["sent_at"],)]
    assert q(typed / "wh.duckdb", "SELECT count(*) FROM raw.vouchers WHERE expires_at NOT LIKE '% 23:59:59'") == [(0,)]
    # Every part file is read and listed with its rows.
    manifest = q(typed / "wh.duckdb", "SELECT source_table, file, rows FROM raw.landing_manifest ORDER BY 1, 2")
    logs = [(Path(f).name, n) for t, f, n in manifest if t == "delivery_logs"]
    assert [f for f, _ in logs] == ["delivery_logs (1).parquet", "delivery_logs.parquet", "delivery_logs_part2.parquet"]
    assert sum(n for _, n in logs) == month.tables["delivery_logs"].height
    assert {Path(f).name for t, f, _ in manifest if t == "engagement_events"} == {"part-00000.parquet", "part-00001.parquet"}
    assert {Path(f).name for t, f, _ in manifest if t in ("shops", "plans")} == {"shops.csv.gz", "plans-0001.csv.zst"}
    reliability.record("real_exports")


def test_an_empty_month_folder_fails_naming_what_is_missing_and_is_never_synthetic(tmp_path, reliability):
    (tmp_path / "landing" / MONTH).mkdir(parents=True)
    result = dg.materialize(MONTHLY, partition_key=MONTH, raise_on_error=False,
                            resources=res(tmp_path, tmp_path / "landing", synthetic_when_no_landing=True))
    assert not result.success
    error = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error
    assert "no file for raw table(s) shops, plans, templates" in (error.cause or error).message
    assert "(the folder is empty)" in (error.cause or error).message
    assert q(tmp_path / "wh.duckdb", "SELECT count(*) FROM information_schema.tables WHERE table_name = "
                                     "'delivery_logs' AND table_schema = 'raw'")[0][0] in (0, 1)
    tables = q(tmp_path / "wh.duckdb", "SELECT count(*) FROM raw.delivery_logs")
    assert tables == [(0,)]  # nothing generated in its place
    reliability.record("real_exports")


def test_cli_fails_loudly_on_a_header_only_export_and_keeps_the_last_good_month(tmp_path, month, reliability):
    landing = tmp_path / "landing"
    write_landing_month(month.tables, landing, MONTH)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "CRMAGENT_LANDING_DIR": str(landing)}
    env.pop("CRMAGENT_SYNTHETIC", None)
    db = tmp_path / "wh.duckdb"
    refresh = [BIN / "crmagent", "refresh", "--month", MONTH, "--segment", "new_buyers", "--db", str(db)]
    assert subprocess.run(refresh, capture_output=True, text=True, env=env, timeout=300).returncode == 0
    before = q(db, "SELECT count(*) FROM raw.delivery_logs")[0][0]
    (landing / MONTH / "delivery_logs.parquet").unlink()
    (landing / MONTH / "delivery_logs.csv").write_text(",".join(month.tables["delivery_logs"].columns) + "\n")
    done = subprocess.run(refresh, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert "FAILED: the month 2025-04 did not load" in done.stderr and "delivery_logs have 0 rows" in done.stderr
    assert "The previous version of what failed is kept" in done.stderr
    assert q(db, "SELECT count(*) FROM raw.delivery_logs")[0][0] == before
    reliability.record("real_exports", rows_lost=before - q(db, "SELECT count(*) FROM raw.delivery_logs")[0][0])


def test_cli_exits_non_zero_naming_a_failed_error_check(tmp_path, month, reliability):
    tables = dict(month.tables)
    tables["delivery_logs"] = tables["delivery_logs"].with_columns(  # a quarter of the times unreadable
        pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("n/a")).otherwise(pl.col("sent_at")).alias("sent_at"))
    write_landing_month(tables, tmp_path / "landing", MONTH)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "CRMAGENT_LANDING_DIR": str(tmp_path / "landing")}
    done = subprocess.run([BIN / "crmagent", "refresh", "--month", MONTH, "--segment", "new_buyers", "--db",
                           str(tmp_path / "wh.duckdb")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert "check staging/delivery_logs:quarantine_share failed: At most 2% of raw.delivery_logs is quarantined" \
        in done.stderr and "above the error share 20%" in done.stderr
    reliability.record("real_exports")


def test_bytes_that_are_not_utf8_quarantine_their_rows_and_a_declared_encoding_loads_them(tmp_path, month,
                                                                                         reliability):
    folder = write_landing_month(month.tables, tmp_path / "landing", MONTH)
    shops = month.tables["shops"]
    sid = shops["shop_id"][0]
    csv = shops.slice(1).write_csv().encode() + f"{sid},Caf\xe9 Glow Store,MY\n".encode("latin-1")
    (folder / "shops.parquet").unlink()
    (folder / "shops.csv").write_bytes(csv)
    templates = month.tables["templates"].to_arrow()
    raw_titles = [t.encode() for t in templates.column("title").to_pylist()]
    raw_titles[3] = b"Promo Caf\xe9 \xff"
    titles = pa.Array.from_buffers(pa.string(), len(raw_titles), pa.array(raw_titles, pa.binary()).buffers())
    pq.write_table(templates.set_column(templates.schema.get_field_index("title"), "title", titles),
                   folder / "templates.parquet")  # a Parquet text column holding Latin-1 bytes
    result = dg.materialize(MONTHLY[:2], partition_key=MONTH, resources=res(tmp_path, tmp_path / "landing"))
    assert result.success  # no ComputeError for the whole month
    db = tmp_path / "wh.duckdb"
    bad = dict(q(db, "SELECT source_table, detail FROM staging.quarantine WHERE rule = 'invalid_encoding'"))
    assert "shop_name holds bytes that are not UTF-8 ('Café Glow Store' if read as Latin-1)" in bad["raw.shops"]
    assert "shops.csv" in bad["raw.shops"] and "shops.csv.encoding" in bad["raw.shops"]
    assert "title holds bytes that are not UTF-8" in bad["raw.templates"] and "templates.parquet" in bad["raw.templates"]
    assert q(db, "SELECT count(*) FROM staging.shops WHERE contains(shop_name, chr(65533))") == [(0,)]  # no mojibake
    staged = q(db, "SELECT count(*) FROM staging.templates")[0][0]
    assert staged == month.tables["templates"].height - 1 - q(db, "SELECT count(*) FROM staging.quarantine WHERE "
                                                                  "source_table = 'raw.templates' AND rule <> "
                                                                  "'invalid_encoding'")[0][0]
    (folder / "shops.csv.encoding").write_text("cp1252\n")  # declared: the row loads as written
    assert dg.materialize(MONTHLY[:2], partition_key=MONTH, resources=res(tmp_path, tmp_path / "landing")).success
    assert q(db, "SELECT shop_name FROM staging.shops WHERE shop_id = $s", {"s": sid}) == [("Café Glow Store",)]
    reliability.record("real_exports")


KILL_SCRIPT = """
import os, signal, sys
import duckdb
from crmagent_dagster.resources import LogSource

class Dying:
    '''The real connection, which kills its process after the first raw table of the month is written.'''
    def __init__(self, conn):
        self._conn, self._inserts = conn, 0
    def execute(self, sql, *args):
        out = self._conn.execute(sql, *args)
        if sql.startswith("INSERT INTO raw."):
            self._inserts += 1
            if self._inserts == 2:  # the first table's rows are in; the second table's are not
                os.kill(os.getpid(), signal.SIGKILL)
        return out
    def __getattr__(self, name):
        return getattr(self._conn, name)

conn = duckdb.connect(sys.argv[1])
LogSource(landing_dir=sys.argv[2]).load_month(Dying(conn), "2025-04")
"""


def test_a_kill_between_two_raw_tables_leaves_the_whole_previous_month(tmp_path, month, reliability):
    landing = tmp_path / "landing"
    write_landing_month(month.tables, landing, MONTH)
    db = tmp_path / "wh.duckdb"
    with duckdb.connect(str(db)) as conn:
        load_landing_month(conn, landing, MONTH)
    counts = "SELECT (SELECT count(*) FROM raw.shops), (SELECT count(*) FROM raw.templates), " \
             "(SELECT count(*) FROM raw.delivery_logs), (SELECT sum(rows) FROM raw.landing_manifest)"
    before = q(db, counts)
    smaller = {t: f.head(f.height // 2) for t, f in month.tables.items()}  # the re-export that gets killed
    write_landing_month(smaller, landing, MONTH)
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(db), str(landing)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert q(db, counts) == before  # every table and the manifest are the previous version
    reliability.record("crash", rows_lost=before[0][2] - q(db, counts)[0][2])


def test_rewrite_with_a_real_key_sends_it_and_shows_it_nowhere(tmp_path, reliability):
    key = "sk-test-Secret-123456789"
    line = {"segment": "abandoned_cart_buyers", "title": "Did you forget something?",
            "body": "Your cart is waiting. Get RM3 off with code SAVE3.", "voucher_type": "fixed_amount_off",
            "discount_value": 3, "currency": "RM", "voucher_code": "SAVE3"}
    src, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "wh.duckdb"
    src.write_text(json.dumps(line) + "\n")

    def answer(body, n):
        schema = body["response_format"]["json_schema"]["name"]
        replies = {"Audit": {"error_type": "weak_call_to_action", "feedback": "No urgency."},
                   "Rewrite": {"title": "Did you forget something?",
                               "body": "Your cart is waiting. Get RM3 off with code SAVE3. Check out now!"},
                   "Preference": {"preferred": "B", "reason": "clearer"}}
        if schema == "Scores":
            return Reply(content=json.dumps({k: (3 if "score" in k else "ok") for k in (
                "audience_match_score_a", "audience_match_reason_a", "marketing_score_a", "marketing_reason_a",
                "audience_match_score_b", "audience_match_reason_b", "marketing_score_b", "marketing_reason_b")}))
        return Reply(content=json.dumps(replies[schema]))

    with FakeOpenAI(answer) as server:
        env = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": key,
               "OPENAI_BASE_URL": server.base_url}
        done = subprocess.run([BIN / "crmagent", "rewrite", "--in", str(src), "--out", str(out), "--db", str(db)],
                              capture_output=True, text=True, env=env, timeout=300)
        headers = list(server.auth_headers)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["backend"]["writer"] == "llm"
    assert headers and set(headers) == {f"Bearer {key}"}  # the key reached the server
    assert key not in done.stdout + done.stderr + out.read_text()
    with duckdb.connect(str(db), read_only=True) as c:
        for schema, table in c.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall():
            dump = str(c.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall())
            assert key not in dump, f"{schema}.{table}"
    reliability.record("real_exports")


def test_json_lines_are_split_on_newlines_only_and_values_are_validated(tmp_path, reliability):
    lines = [
        {"segment": "new_buyers", "title": "Hi\u2028there", "body": "Enjoy RM5 off.\u0085 Shop now!",
         "voucher_type": "fixed_amount_off", "discount_value": 5, "currency": "RM"},
        {"segment": "new_buyers", "title": "Big sale", "body": "Get 150% off today",
         "voucher_type": "percentage_off", "discount_value": 150},
        {"segment": "new_buyers", "title": "Form\u000cfeed", "body": "Para\u2029graph. Shop now!"},
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n").encode())
    done = subprocess.run([BIN / "crmagent", "rewrite", "--in", str(src), "--out", str(out)], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert "\u2028" not in out.read_text()  # written escaped, so naive line readers do not split it
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]  # U+2028, NEL, U+2029 and a form feed are data
    assert records[0]["original"]["title"] == "Hi\u2028there" and records[2]["original"]["title"] == "Form\u000cfeed"
    assert records[1]["status"] == "error" and "discount_value must be in (0, 100] for percentage_off, got 150" \
        in records[1]["error"]
    assert done.returncode == 1  # a line failed, so the command did
    assert "1 bad line(s)" in done.stdout and "bad line: line" in done.stdout
    reliability.record("bad_input")


def test_exit_code_is_non_zero_when_every_line_failed(tmp_path, reliability):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"segment": "nobody", "title": "x", "body": "y"}\n{broken\n')
    done = subprocess.run([BIN / "crmagent", "rewrite", "--in", str(src), "--out", str(out)], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 1 and "0 line(s) rewritten" in done.stdout and "2 bad line(s)" in done.stdout
    assert "bad line: segment" in done.stdout
    reliability.record("bad_input")


def test_landing_error_names_a_file_that_is_not_parquet(tmp_path, month):
    folder = write_landing_month(month.tables, tmp_path, MONTH)
    (folder / "plans_extra.parquet").write_text("this is not parquet")
    with pytest.raises(LandingError, match=r"plans_extra\.parquet: cannot be read as parquet"):
        with duckdb.connect(str(tmp_path / "x.duckdb")) as conn:
            load_landing_month(conn, tmp_path, MONTH)
