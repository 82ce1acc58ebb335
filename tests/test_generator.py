"""The synthetic month: deterministic, shaped like the paper's data, and meaningful for later stages."""

from __future__ import annotations

import re

import polars as pl
import pytest

from sql_fixtures import MONTH, run_month
from crmagent_dagster import pipeline as P
from crmagent_dagster.segments import SEGMENT_SHARES
from crmagent_dagster.synthetic.catalog import DEFECT_TARGETS, MARKETS
from crmagent_dagster.vocabulary import format_amount
from crmagent_dagster.synthetic.month import generate_month


@pytest.fixture(scope="module")
def month():
    return generate_month(MONTH, 400_000, seed=3)


def test_same_seed_same_month_other_seed_other_month(small_month):
    again = generate_month(MONTH, 40_000, seed=11)
    for table, frame in small_month.tables.items():
        assert frame.equals(again.tables[table]), table
    other = generate_month(MONTH, 40_000, seed=12)
    assert not other.tables["templates"].equals(small_month.tables["templates"])


def test_log_count_and_month(small_month):
    logs = small_month.tables["delivery_logs"]
    # 40,000 generated plus a few replayed duplicates (mess).
    assert 40_000 <= logs.height <= 40_100
    assert logs["sent_at"].str.starts_with("2025-04").mean() > 0.99


def test_segment_shares_follow_table_1(month):
    shares = month.tables["plans"]["segment"].value_counts(normalize=True)
    got = dict(zip(shares["segment"], shares["proportion"]))
    for segment, target in SEGMENT_SHARES.items():
        assert abs(got.get(segment, 0) - target) < 0.025, (segment, got.get(segment), target)


def test_defect_frequencies_follow_fig_16(month):
    shares = month.template_truth["defect"].value_counts(normalize=True)
    got = dict(zip(shares["defect"], shares["proportion"]))
    for defect, target in DEFECT_TARGETS.items():
        assert abs(got.get(defect, 0) - target) < 0.03, (defect, got.get(defect), target)
    # Fig. 16's order of frequency holds among the defects.
    order = sorted((d for d in DEFECT_TARGETS if d != "none"), key=lambda d: -got[d])
    assert order[:3] == ["weak_call_to_action", "vague_incentive", "misaligned_tone"]


def test_templates_are_varied_and_multilingual(month):
    t = month.tables["templates"]
    texts = t.select(pl.concat_str(["title", "body"], separator="\n")).to_series()
    assert texts.n_unique() / t.height > 0.9
    assert texts.n_unique() > 1500
    langs = dict(t["language"].value_counts(normalize=True).iter_rows())
    assert langs["en"] > 0.6 and langs["ms"] > 0.03 and langs["id"] > 0.03
    assert t["title"].str.contains(r"[\U0001F300-\U0001FAFF]").mean() > 0.2  # some titles carry emoji


def test_voucher_currency_fits_the_shop_market(month):
    v = month.tables["vouchers"].join(month.tables["shops"], on="shop_id")
    expected = {m: c for m, (c, _, _) in MARKETS.items()}
    assert (v["currency"] == v["market"].replace_strict(expected)).all()


def test_stated_offers_are_the_plans_own_voucher(month):
    """Every template that states its incentive states its plan's voucher amount: no invented offers."""
    plans = month.tables["plans"].filter(pl.col("voucher_id").is_not_null()).select("template_id", "voucher_id")
    vouchers = month.tables["vouchers"].filter(pl.col("voucher_type") == "fixed_amount_off",
                                               pl.col("discount_value") != "-5")  # skip mess rows
    joined = (plans.join(vouchers, on="voucher_id")
              .join(month.tables["templates"].drop("shop_id"), on="template_id")
              .join(month.template_truth.filter(pl.col("incentive_stated")), on="template_id"))
    assert joined.height > 100
    for row in joined.iter_rows(named=True):
        amount = format_amount(float(row["discount_value"]), row["currency"])
        assert amount in row["body"], (row["template_id"], amount, row["body"])


def test_weak_quartile_is_defect_rich_and_strong_is_not(conn, month):
    for table, frame in month.tables.items():
        P.load_raw_table(conn, table, MONTH, P.with_lineage(frame, "test"))
    run_month(conn)
    labels = conn.sql("SELECT template_id, performance_label FROM core.quartile_labels "
                      "WHERE performance_label IN ('strong', 'weak')").pl()
    joined = labels.join(month.template_truth, on="template_id")
    share = dict(joined.group_by("performance_label").agg((pl.col("defect") != "none").mean()).iter_rows())
    assert share["weak"] > 0.65
    assert share["strong"] < 0.45
    assert share["weak"] - share["strong"] > 0.3


def test_engagement_scores_are_heavy_tailed(conn, small_month):
    for table, frame in small_month.tables.items():
        P.load_raw_table(conn, table, MONTH, P.with_lineage(frame, "test"))
    run_month(conn)
    mean, median, p99 = conn.execute(
        "SELECT avg(mean_score), median(mean_score), quantile_cont(mean_score, 0.99) FROM core.engagement_aggregates"
    ).fetchall()[0]
    assert mean > median  # right-skewed, as in Fig. 8
    assert p99 > 4 * median


def test_a_month_written_in_chunks_is_the_same_month_whatever_the_run_and_stages_cleanly(tmp_path):
    """A month too big for memory is written part by part: same arguments, same bytes; parts never share a log_id;
    the planted mess is in every part and staging quarantines it by its rule."""
    import duckdb

    from crmagent_dagster.landing import load_landing_month
    from crmagent_dagster.synthetic.month import write_month_in_chunks

    first = write_month_in_chunks(MONTH, 30_000, tmp_path / "a", seed=3, chunk_logs=10_000)
    again = write_month_in_chunks(MONTH, 30_000, tmp_path / "b", seed=3, chunk_logs=10_000)
    assert first.parts == 3 and first.rows == again.rows
    for part in sorted((first.folder / "delivery_logs").iterdir()):
        assert part.read_bytes() == (again.folder / "delivery_logs" / part.name).read_bytes()
    logs = pl.read_parquet(first.folder / "delivery_logs")
    assert logs.height == first.rows["delivery_logs"] and 30_000 <= logs.height <= 30_100
    assert logs.filter(pl.col("user_id") != "u_replayed")["log_id"].n_unique() == 30_000  # ids run on across parts

    with duckdb.connect(str(tmp_path / "wh.duckdb")) as conn:
        load_landing_month(conn, tmp_path / "a", MONTH)
        P.stage_month(conn, MONTH)
        rules = dict(conn.execute("SELECT rule, count(*) FROM staging.quarantine WHERE source_table = "
                                  "'raw.delivery_logs' GROUP BY 1").fetchall())
        parts_with_dups = conn.execute(
            "SELECT count(DISTINCT _source) FROM staging.quarantine WHERE rule = 'duplicate_log_id'").fetchall()[0][0]
        staged = conn.execute("SELECT count(*) FROM staging.delivery_logs").fetchall()[0][0]
    assert {"null_key", "unknown_segment", "malformed_timestamp", "duplicate_log_id"} <= set(rules)
    assert parts_with_dups == 3
    assert staged + sum(rules.values()) == logs.height
