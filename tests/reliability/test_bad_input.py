"""Bad input end to end: each case gives a clear message naming the offending thing, loses no good row,
and leaves the partition re-runnable."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets import retrieval
from crmagent_dagster.agents.io import index_path
from crmagent_dagster.landing import LandingError, load_landing_month, write_landing_month
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.synthetic.month import generate_month
from dagster_helpers import MONTHLY, SEGMENT_ASSETS
from fake_openai import FakeOpenAI, Reply


def resources(tmp, landing, llm=None):
    return {"duckdb": CRMWarehouse(database=str(tmp / "wh.duckdb")), "llm": llm or LLMResource(),
            "log_source": LogSource(landing_dir=str(landing), synthetic_when_no_landing=False)}


def run_month(res, month: str, segment: str | None = None):
    result = dg.materialize(MONTHLY, partition_key=month, resources=res)
    if segment is None:
        return result, None
    return result, dg.materialize(MONTHLY + SEGMENT_ASSETS, selection=SEGMENT_ASSETS, partition_key=f"{month}|{segment}",
                                  resources=res, raise_on_error=False)


def count(db, sql):
    with duckdb.connect(str(db), read_only=True) as c:
        return c.execute(sql).fetchall()[0][0]


@pytest.fixture(scope="module")
def month():
    return generate_month("2025-04", 30_000, seed=9)


def test_month_with_no_logs_fails_and_keeps_the_previous_version(tmp_path, month, reliability):
    write_landing_month(month.tables, tmp_path / "landing", "2025-04")
    res = resources(tmp_path, tmp_path / "landing")
    assert run_month(res, "2025-04")[0].success
    tables = dict(month.tables)
    tables["delivery_logs"] = tables["delivery_logs"].head(0)  # a re-export whose logs did not arrive
    tables["engagement_events"] = tables["engagement_events"].head(0)
    write_landing_month(tables, tmp_path / "landing", "2025-04")
    failed = dg.materialize(MONTHLY, partition_key="2025-04", resources=res, raise_on_error=False)
    assert not failed.success
    error = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error
    assert "delivery_logs have 0 rows" in (error.cause or error).message  # said clearly, naming the table
    kept = count(tmp_path / "wh.duckdb", "SELECT count(*) FROM raw.delivery_logs")
    assert kept == month.tables["delivery_logs"].height  # the previous version stands
    reliability.record("bad_input", rows_lost=month.tables["delivery_logs"].height - kept)


def test_empty_segment_runs_clean(tmp_path, month, reliability):
    tables = dict(month.tables)
    tables["plans"] = tables["plans"].filter(pl.col("segment") != "repeat_buyers")
    tables["delivery_logs"] = tables["delivery_logs"].filter(pl.col("segment") != "repeat_buyers")
    write_landing_month(tables, tmp_path / "landing", "2025-04")
    _, seg = run_month(resources(tmp_path, tmp_path / "landing"), "2025-04", "repeat_buyers")
    assert seg.success
    assert all(e.passed for e in seg.get_asset_check_evaluations())
    assert count(tmp_path / "wh.duckdb", "SELECT count(*) FROM core.quartile_labels WHERE segment = 'repeat_buyers'") == 0
    reliability.record("bad_input")


def test_odd_template_texts_and_currencies(tmp_path, month, reliability):
    folder = tmp_path / "landing" / "2025-04"
    write_landing_month(month.tables, tmp_path / "landing", "2025-04")
    templates = month.tables["templates"]
    ids = templates["template_id"].to_list()
    edited = templates.with_columns(
        pl.when(pl.col("template_id") == ids[0]).then(pl.lit("")).otherwise(pl.col("title")).alias("title"),
        pl.when(pl.col("template_id") == ids[0]).then(pl.lit(" ")).when(pl.col("template_id") == ids[1])
        .then(pl.lit("Shop now! " * 1000)).when(pl.col("template_id") == ids[2]).then(pl.lit("🛒🔥🎁"))
        .otherwise(pl.col("body")).alias("body"))
    (folder / "templates.parquet").unlink()
    csv = edited.write_csv().encode()  # then one row with Latin-1 bytes, which are not UTF-8
    csv += f"t_latin1,{templates['shop_id'][3]},en,Caf\xe9 deal,Visit our caf\xe9 now\n".encode("latin-1")
    (folder / "templates.csv").write_bytes(csv)
    vouchers = month.tables["vouchers"]
    vids = vouchers["voucher_id"].to_list()
    vouchers.with_columns(pl.when(pl.col("voucher_id") == vids[0]).then(pl.lit("XYZ"))
                          .when(pl.col("voucher_id") == vids[1]).then(pl.lit("ringgit!!"))
                          .when(pl.col("voucher_id") == vids[2]).then(pl.lit(" rm "))  # as merchants type it
                          .when(pl.col("voucher_id") == vids[3]).then(pl.lit("₱"))
                          .otherwise(pl.col("currency")).alias("currency")).write_parquet(folder / "vouchers.parquet")
    monthly, _ = run_month(resources(tmp_path, tmp_path / "landing"), "2025-04")
    assert monthly.success
    db = tmp_path / "wh.duckdb"
    with duckdb.connect(str(db), read_only=True) as c:
        rules = dict(c.execute("SELECT rule, detail FROM staging.quarantine WHERE source_table IN "
                               "('raw.templates', 'raw.vouchers')").fetchall())
        staged = {t for (t,) in c.execute("SELECT template_id FROM staging.templates").fetchall()}
        long_body = c.execute("SELECT length(body) FROM staging.templates WHERE template_id = $t", {"t": ids[1]}).fetchall()[0][0]
        xyz = c.execute("SELECT currency FROM staging.vouchers WHERE voucher_id = $v", {"v": vids[0]}).fetchall()[0]
        aliases = c.execute("SELECT list(currency ORDER BY voucher_id = $b) FROM staging.vouchers "
                            "WHERE voucher_id IN ($a, $b)", {"a": vids[2], "b": vids[3]}).fetchall()[0][0]
    assert aliases == ["MYR", "PHP"]  # the agents' own normalization, in SQL
    assert rules["empty_text"] == f"template_id={ids[0]} has no title and no body"
    assert rules["invalid_encoding"].startswith("invalid_encoding: title holds bytes that are not UTF-8 ('Café deal' "
                                                "if read as Latin-1) in ") and "templates.csv, data row" in rules["invalid_encoding"]
    assert rules["invalid_currency"] == "currency=RINGGIT!!"
    assert ids[1] in staged and long_body == 10_000 and ids[2] in staged and xyz == ("XYZ",)
    lost = (templates.height + 1) - len(staged) - sum(1 for r in rules if r in ("empty_text", "invalid_encoding"))
    reliability.record("bad_input", rows_lost=lost)
    assert lost == 0
    # The 10 kB and emoji-only texts go through the agents: rewrites of them stay within push limits.
    from crmagent_dagster.agents.facts import OfferFacts
    from crmagent_dagster.agents.guardrails import check_rewrite
    from crmagent_dagster.agents.rewriter import EditGoal, rewrite

    for body in ("Shop now! " * 1000, "🛒🔥🎁"):
        facts = OfferFacts(segment="new_buyers", title="", body=body, language="en")
        rw = rewrite(facts, None, EditGoal(error_type="weak_call_to_action"))
        assert all(c.passed for c in check_rewrite(rw.title, rw.body, facts)), rw


@pytest.mark.parametrize("damage,message", [
    ("drop_column", r"vouchers\.parquet: missing column\(s\) currency"),
    ("truncate", r"engagement_events\.parquet: cannot be read"),
    ("wrong_types", None),
])
def test_landing_file_problems(tmp_path, month, damage, message, reliability):
    folder = write_landing_month(month.tables, tmp_path, "2025-04")
    if damage == "drop_column":
        month.tables["vouchers"].drop("currency").write_parquet(folder / "vouchers.parquet")
    elif damage == "truncate":
        p = folder / "engagement_events.parquet"
        p.write_bytes(p.read_bytes()[:200])
    else:  # numbers and times as native Parquet types instead of text: cast, not rejected
        month.tables["products"].with_columns(pl.col("price").cast(pl.Float64, strict=False)).write_parquet(folder / "products.parquet")
    conn = duckdb.connect(str(tmp_path / "wh.duckdb"))
    if message:
        with pytest.raises(LandingError, match=message):
            load_landing_month(conn, tmp_path, "2025-04")
    else:
        manifest = load_landing_month(conn, tmp_path, "2025-04")
        assert sum(m.rows for m in manifest if m.table == "products") == month.tables["products"].height
        assert conn.execute("SELECT count(*) FROM raw.products WHERE price IS NULL").fetchall()[0][0] == \
            month.tables["products"]["price"].cast(pl.Float64, strict=False).null_count()
    reliability.record("bad_input")


def test_llm_returning_garbage_fails_items_not_partitions(tmp_path, month, reliability):
    write_landing_month(month.tables, tmp_path / "landing", "2025-04")
    with FakeOpenAI(lambda body, n: Reply(content="lol I am not JSON")) as server:
        llm = LLMResource(configured=True, base_url=server.base_url, api_key="k", max_validation_retries=1,
                          backoff_base_s=0.01)
        _, seg = run_month(resources(tmp_path, tmp_path / "landing", llm), "2025-04", "new_buyers")
        first = server.requests
        assert seg.success
        db = tmp_path / "wh.duckdb"
        statuses = count(db, "SELECT count(DISTINCT status) FROM agents.template_rewrites"), \
            count(db, "SELECT min(status) FROM agents.template_rewrites")
        assert statuses == (1, "failed")
        assert count(db, "SELECT count(*) FROM agents.rewrite_scores") == 0  # nothing judged that was never written
        _, again = run_month(resources(tmp_path, tmp_path / "landing", llm), "2025-04", "new_buyers")
        assert again.success and server.requests > first  # failed items are retried, not cached
    reliability.record("bad_input", llm_items_failed=count(db, "SELECT count(*) FROM llm.calls WHERE status = 'failed'"))


def test_missing_or_corrupt_faiss_index(tmp_path, month, reliability):
    write_landing_month(month.tables, tmp_path / "landing", "2025-04")
    res = resources(tmp_path, tmp_path / "landing")
    _, seg = run_month(res, "2025-04", "new_buyers")
    assert seg.success
    path = index_path(res["duckdb"].database, "2025-04", "new_buyers")
    path.write_bytes(b"garbage")
    matches = dg.materialize(MONTHLY + SEGMENT_ASSETS, selection=[retrieval.exemplar_matches],
                             partition_key="2025-04|new_buyers", resources=res, raise_on_error=False)
    assert not matches.success
    failure = next(e for e in matches.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"{path} is unreadable" in failure.event_specific_data.error.to_string()
    # Re-runnable: rebuilding the index (and what follows) recovers the partition.
    again = dg.materialize(MONTHLY + SEGMENT_ASSETS, selection=[retrieval.strong_template_index, retrieval.exemplar_matches],
                           partition_key="2025-04|new_buyers", resources=res)
    assert again.success
    reliability.record("bad_input")
