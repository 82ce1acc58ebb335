"""The SQL stages on Spark give DuckDB's answers: one messy synthetic month through both engines, row for row.

Needs Java 17+ (Spark 4); without it the tests fail saying what to install, they never skip.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmagent_dagster import pipeline
from crmagent_dagster.engines import spark as engine
from crmagent_dagster.engines.transpile import spark_model, to_spark
from crmagent_dagster.landing import load_landing_month, write_landing_month
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.segments import SEGMENT_KEYS
from crmagent_dagster.synthetic.month import MessRates, generate_month

MONTH = "2025-04"
MODELS = [f"staging.{t}" for t in pipeline.STAGED_TABLES] + [
    "core.log_engagement", "core.engagement_aggregates", "core.quartile_labels"]
SETTINGS = pipeline.LabelSettings(min_samples=5)
# Every rule each staging model can quarantine a row for (the models' header comments).
RULES = {
    "shops": {"invalid_encoding", "null_key", "duplicate_key"},
    "plans": {"null_key", "unknown_segment", "duplicate_key"},
    "templates": {"invalid_encoding", "null_key", "empty_text", "duplicate_key"},
    "products": {"null_key", "invalid_number", "negative_value", "duplicate_key"},
    "vouchers": {"null_key", "unknown_voucher_type", "invalid_number", "impossible_value", "invalid_currency",
                 "malformed_timestamp", "duplicate_key"},
    "delivery_logs": {"null_key", "unknown_segment", "malformed_timestamp", "outside_partition_month",
                      "duplicate_log_id"},
    "engagement_events": {"null_key", "unknown_event_type", "malformed_timestamp", "unknown_log_id",
                          "event_before_send", "duplicate_event"},
}
# The generator's own mess, at rates a 4,000-log month still shows (its defaults are tuned for millions).
MESS = dataclasses.replace(MessRates(), bad_event_type=0.003, bad_event_time=0.003, null_key_log=0.0005,
                           unknown_segment_log=0.0005, bad_sent_at=0.0005, duplicate_log=0.0005,
                           bad_product_price=0.1, bad_voucher_value=0.1)


@pytest.fixture(scope="module")
def spark():
    if not shutil.which("java"):
        pytest.fail("the Spark engine tests need Java 17+ on PATH (Debian/Ubuntu: apt-get install "
                    "openjdk-17-jre-headless)", pytrace=False)
    return _settings(None).session()


def _settings(lake: Path | None) -> engine.SparkEngine:
    return engine.SparkEngine(master="local[2]", lake_dir=str(lake) if lake else None,
                              conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
                                    "spark.default.parallelism": "2"})


def _plant(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Rows for the rules the generator never plants, each a changed copy of a real row."""
    def add(table: str, *changes: dict) -> None:
        frame = tables[table]
        rows = [{**frame.row(i, named=True), **c} for i, c in enumerate(changes)]
        tables[table] = pl.concat([frame, pl.DataFrame(rows, schema=frame.schema)])

    add("shops", {}, {"shop_id": " "})  # a repeated shop, an empty key
    add("plans", {}, {"plan_id": "p_x1", "segment": "vip"}, {"plan_id": None})
    add("templates", {}, {"template_id": "t_x1", "title": " ", "body": ""},
        {"template_id": "t_x2", "body": "Caf\ufffd sale"}, {"shop_id": ""})
    add("products", {}, {"product_id": "pr_x1", "price": "-3"}, {"product_id": "pr_x2", "price": "12d"},
        {"product_id": None})
    add("vouchers", {}, {"voucher_id": "v_x1", "voucher_type": "bogo"},
        {"voucher_id": "v_x2", "voucher_type": "free_shipping", "discount_value": "0", "min_spend": None,
         "max_discount": None, "currency": "M-Y-R"}, {"voucher_id": "v_x3", "expires_at": "soon"},
        {"voucher_id": "v_x4", "min_spend": "1_0x"}, {"voucher_id": "v_x5", "max_discount": "1_000"},
        {"voucher_id": "v_x6", "currency": "rm"}, {"voucher_id": None})
    add("delivery_logs", {"log_id": "l_x1", "sent_at": "2025-05-02 10:00:00"})
    first = tables["delivery_logs"].row(0, named=True)
    add("engagement_events", {"log_id": first["log_id"], "event_type": "read", "event_at": "2025-03-01 00:00:00"},
        {"event_type": " "})
    return tables


def _write_not_utf8(folder: Path, table: str, column: str) -> None:
    """Replace one value of a landing file's text column with Latin-1 bytes (written as a string, unchecked)."""
    path = folder / f"{table}.parquet"
    data = pq.read_table(path)
    values = data.column(column).to_pylist()
    raw = [v.encode() if v is not None else None for v in values]
    raw[1] = b"Caf\xe9 " + raw[1]
    broken = pa.array(raw, pa.binary()).view(pa.string())
    pq.write_table(data.set_column(data.schema.get_field_index(column), column, broken), path)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spark_landing")
    month = generate_month(MONTH, 4_000, seed=11, mess=MESS)
    folder = write_landing_month(_plant(dict(month.tables)), root, MONTH)
    _write_not_utf8(folder, "shops", "shop_name")
    _write_not_utf8(folder, "templates", "body")
    return root


def _duckdb_month(db: Path, landing: Path) -> None:
    conn = duckdb.connect(str(db))
    load_landing_month(conn, landing, MONTH)
    pipeline.stage_month(conn, MONTH)
    pipeline.score_logs(conn)
    pipeline.aggregate_engagement(conn, MONTH)
    for segment in SEGMENT_KEYS:
        pipeline.label_segment(conn, MONTH, segment, SETTINGS)
    conn.close()


def _spark_month(spark, settings: engine.SparkEngine, db: Path, landing: Path) -> None:
    lake = settings.lake(str(db))
    engine.load_raw_month(spark, lake, landing, MONTH)
    for table in pipeline.STAGED_TABLES:
        engine.stage_table(spark, lake, table, MONTH)
    engine.write_event_weights(spark, lake)
    engine.write_model(spark, lake, "core.log_engagement", {"month": MONTH})
    engine.write_model(spark, lake, "core.engagement_aggregates", {"month": MONTH})
    for segment in SEGMENT_KEYS:
        engine.write_model(spark, lake, "core.quartile_labels", {"month": MONTH, "segment": segment},
                           {"min_samples": SETTINGS.min_samples, "strong_share": SETTINGS.strong_share,
                            "weak_share": SETTINGS.weak_share})
    conn = duckdb.connect(str(db))
    engine.copy_to_duckdb(conn, spark, lake, [t for t in engine.DUCKDB_TABLES if t != "core.quartile_labels"],
                          {"month": MONTH})
    for segment in SEGMENT_KEYS:
        engine.copy_to_duckdb(conn, spark, lake, ["core.quartile_labels"], {"month": MONTH, "segment": segment})
    conn.close()


def _comparable(table: str) -> str:
    """Every column; of an invalid_encoding row's detail (and `_issue` in its raw record), all but how the bytes
    read as Latin-1, which DuckDB's loader shows as a Python repr and Spark's as the plain text."""
    if table != "staging.quarantine":
        return "*"
    latin1 = "regexp_replace({0}, ' \\(.* if read as Latin-1\\)', '')"
    return (f"* REPLACE (CASE WHEN rule = 'invalid_encoding' THEN {latin1.format('detail')} ELSE detail END AS detail, "
            f"CASE WHEN rule = 'invalid_encoding' THEN {latin1.format('raw_record::VARCHAR')} "
            "ELSE raw_record::VARCHAR END AS raw_record)")


def test_every_model_transpiles_and_spark_parses_it(spark):
    parser = spark._jsparkSession.sessionState().sqlParser()
    for table in MODELS:
        model = spark_model(table)
        parser.parsePlan(model.sql)  # raises ParseException with the position
        assert not re.search(r"\$[a-z_]", model.sql), table  # every $name bound
        # A model binds its month, or (log_engagement, a view in DuckDB) reads every month and is cut to one
        assert ("month" in model.params) != (table == "core.log_engagement"), table
        assert not {"try_strptime", "list_extract", "list_position", "regexp_full_match", "is_inf", "chr("} & set(
            model.sql.lower().replace("(", "( ").split()), table


def test_tricky_text_parses_alike(spark, tmp_path):
    """Numbers and timestamps as merchants' exports write them: the transpiled parse agrees with DuckDB's."""
    values = ["12.5", "12d", "1.5f", "0x1p3", "1_000", "1e3", ".5", "+5", "inf", "NaN", "-0", "abc", "",
              "2025-04-01 10:00:00", "2025-4-1 1:2:3", "2025-04-31 10:00:00", "2025-04-01T10:00:00", "25-04-01 10:00:00"]
    sql = ("SELECT v, TRY_CAST(NULLIF(TRIM(v), '') AS DOUBLE) AS d, TRY_STRPTIME(TRIM(v), '%Y-%m-%d %H:%M:%S') AS t, "
           "regexp_full_match(v, '[A-Z]{3}') AS iso FROM x.vals")
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA x; CREATE TABLE x.vals AS SELECT unnest($v) AS v", {"v": values})
    expected = sorted(conn.execute(sql).fetchall(), key=str)
    spark.createDataFrame([(v,) for v in values], "v string").createOrReplaceTempView("x__vals")
    text, _, _ = to_spark(sql)
    got = sorted((tuple(r) for r in spark.sql(text).collect()), key=str)
    assert [tuple(str(c) for c in r) for r in got] == [tuple(str(c) for c in r) for r in expected]


def test_same_answers_on_both_engines(spark, landing, tmp_path):
    _duckdb_month(tmp_path / "duck.duckdb", landing)
    _spark_month(spark, _settings(None), tmp_path / "spark.duckdb", landing)
    conn = duckdb.connect(str(tmp_path / "spark.duckdb"))
    conn.execute(f"ATTACH '{tmp_path / 'duck.duckdb'}' AS d (READ_ONLY)")
    by_rule = {}
    for table, rule, n in conn.execute("SELECT source_table, rule, count(*) FROM d.staging.quarantine "
                                       "GROUP BY ALL ORDER BY ALL").fetchall():
        by_rule[(table.removeprefix("raw."), rule)] = n
    missing = {(t, r) for t, rules in RULES.items() for r in rules} - set(by_rule)
    assert not missing, f"the month lacks planted mess for {sorted(missing)}"
    spark_by_rule = dict(((t.removeprefix("raw."), r), n) for t, r, n in conn.execute(
        "SELECT source_table, rule, count(*) FROM staging.quarantine GROUP BY ALL").fetchall())
    assert spark_by_rule == by_rule
    for table in engine.DUCKDB_TABLES:
        assert conn.execute(f"DESCRIBE {table}").fetchall() == conn.execute(f"DESCRIBE d.{table}").fetchall(), table
        rows = conn.execute(f"SELECT {_comparable(table)} FROM {table} ORDER BY ALL").fetchall()
        assert rows, table
        assert rows == conn.execute(f"SELECT {_comparable(table)} FROM d.{table} ORDER BY ALL").fetchall(), table
    conn.close()


def test_monthly_assets_on_spark(spark, tmp_path):
    landing = tmp_path / "landing"
    write_landing_month(generate_month(MONTH, 3_000, seed=5).tables, landing, MONTH)
    db = tmp_path / "crm.duckdb"
    warehouse = CRMWarehouse(database=str(db), publish_snapshot=False, engine="spark", spark=_settings(None))
    res = {"duckdb": warehouse, "log_source": LogSource(landing_dir=str(landing))}
    from assets import engagement, raw, segments, staging

    monthly = dg.materialize([raw.raw_month, staging.staged_month, engagement.log_engagement,
                              engagement.engagement_aggregates], partition_key=MONTH, resources=res)
    segment = "new_buyers"
    labels = dg.materialize([segments.quartile_labels], resources=res,
                            partition_key=dg.MultiPartitionKey({"month": MONTH, "segment": segment}),
                            run_config={"ops": {"core__quartile_labels": {"config": {"min_samples": 5}}}})
    for result in (monthly, labels):
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks if not c.passed]
        engines = {m.materialization.metadata["engine"].value for m in result.get_asset_materialization_events()}
        assert engines == {"spark"}
    assert (db.parent / "lake" / "staging" / "delivery_logs" / f"month={MONTH}").is_dir()
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*) FROM core.quartile_labels WHERE month = $m AND segment = $s",
                        {"m": MONTH, "s": segment}).fetchall()[0][0] > 0
    assert conn.execute("SELECT count(*) FROM core.log_engagement WHERE month = $m", {"m": MONTH}).fetchall()[0][0] > 0
    tables = {r[0] for r in conn.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    assert "staging.delivery_logs" not in tables and "staging.engagement_events" not in tables
    assert conn.execute("SELECT count(*) FROM raw.delivery_logs").fetchall()[0][0] == 0  # raw stays in the lake
    assert conn.execute("SELECT count(*) FROM raw.landing_manifest WHERE month = $m", {"m": MONTH}).fetchall()[0][0] == 7
    conn.close()
