"""The SQL's arithmetic on hand-made fixtures: weights, the 7-day window, duplicates, quartiles and ties."""

from __future__ import annotations

import pytest

from sql_fixtures import MONTH, after, event, load_raw, log, run_month
from crmagent_dagster import pipeline as P
from crmagent_dagster.segments import EVENT_WEIGHTS


def scores(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT log_id, engagement_score FROM core.log_engagement WHERE month = $m",
                             {"m": MONTH}).fetchall())


# Appendix A's weights, written out: the test must not borrow the constant it is checking.
APPENDIX_A = [("read", 1), ("store_voucher_click", 3), ("product_card_click", 4), ("crm_button_click", 2),
              ("unsubscribe", -5)]


def test_weights_constant_matches_appendix_a():
    assert EVENT_WEIGHTS == dict(APPENDIX_A)


@pytest.mark.parametrize("event_type,weight", APPENDIX_A)
def test_each_event_type_scores_its_appendix_a_weight(conn, event_type, weight):
    load_raw(conn, delivery_logs=[log("a"), log("b")], engagement_events=[event("a", event_type, after(hours=1))])
    run_month(conn)
    assert scores(conn) == {"a": weight, "b": 0}


def test_all_behaviours_add_up(conn):
    load_raw(conn, delivery_logs=[log("a")],
             engagement_events=[event("a", t, after(minutes=i + 1)) for i, t in enumerate(EVENT_WEIGHTS)])
    run_month(conn)
    assert scores(conn) == {"a": 1 + 3 + 4 + 2 - 5}


def test_seven_day_boundary_is_inclusive(conn):
    load_raw(conn, delivery_logs=[log("on_edge"), log("past_edge")],
             engagement_events=[event("on_edge", "product_card_click", after(days=7)),
                                event("past_edge", "product_card_click", after(days=7, seconds=1))])
    run_month(conn)
    assert scores(conn) == {"on_edge": 4, "past_edge": 0}
    late = dict(conn.execute("SELECT log_id, n_late_events FROM core.log_engagement").fetchall())
    assert late == {"on_edge": 0, "past_edge": 1}


def test_repeated_behaviour_counts_once_and_exact_duplicates_are_quarantined(conn):
    load_raw(conn, delivery_logs=[log("a")], engagement_events=[
        event("a", "product_card_click", after(hours=1)),
        event("a", "product_card_click", after(hours=2)),  # a second click: kept, counts once
        event("a", "product_card_click", after(hours=1)),  # exact duplicate: quarantined
    ])
    run_month(conn)
    assert scores(conn) == {"a": 4}
    assert conn.execute("SELECT count(*) FROM staging.engagement_events").fetchall()[0][0] == 2
    assert conn.execute("SELECT rule FROM staging.quarantine").fetchall() == [("duplicate_event",)]


def test_unknown_and_early_events_do_not_score(conn):
    load_raw(conn, delivery_logs=[log("a")], engagement_events=[
        event("ghost", "read", after(hours=1)),
        event("a", "store_voucher_click", after(hours=-1)),
    ])
    run_month(conn)
    assert scores(conn) == {"a": 0}
    rules = sorted(r for (r,) in conn.execute("SELECT rule FROM staging.quarantine").fetchall())
    assert rules == ["event_before_send", "unknown_log_id"]


def test_aggregates_group_by_all_five_keys_with_missing_product_and_voucher(conn):
    logs = [log("a1", template="t1"), log("a2", template="t1"),
            log("b1", template="t1", product="pr1"), log("c1", template="t1", voucher="v1"),
            log("d1", template="t2")]
    load_raw(conn, delivery_logs=logs, engagement_events=[event("a1", "store_voucher_click", after(hours=1))])
    run_month(conn)
    rows = conn.execute("SELECT template_id, product_id, voucher_id, n_logs, mean_score FROM core.engagement_aggregates "
                        "ORDER BY ALL NULLS FIRST").fetchall()
    assert rows == [("t1", None, None, 2, 1.5), ("t1", None, "v1", 1, 0.0), ("t1", "pr1", None, 1, 0.0),
                    ("t2", None, None, 1, 0.0)]


def _groups(conn, spec: list[tuple[str, int, int]], segment="abandoned_cart_buyers"):
    """Groups (shop, n_logs, n_reads): mean score = n_reads / n_logs, all in one segment."""
    logs, events = [], []
    for shop, n, reads in spec:
        for i in range(n):
            lid = f"{shop}-{i}"
            logs.append(log(lid, shop=shop, plan=f"p{shop}", template=f"t{shop}", segment=segment))
            if i < reads:
                events.append(event(lid, "read", after(hours=1)))
    load_raw(conn, delivery_logs=logs, engagement_events=events)


def labels(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT shop_id, performance_label FROM core.quartile_labels").fetchall())


def test_quartile_boundaries_take_exactly_a_quarter(conn):
    _groups(conn, [(f"s{i}", 10, i) for i in range(8)])  # scores 0.0 .. 0.7
    run_month(conn, settings=P.LabelSettings(min_samples=1))
    assert labels(conn) == {"s7": "strong", "s6": "strong", "s5": "middle", "s4": "middle", "s3": "middle",
                            "s2": "middle", "s1": "weak", "s0": "weak"}


def test_ties_rank_more_evidence_first_then_shop_id(conn):
    # Five groups, one strong and one weak slot. s_big and s_small tie at 0.5: more deliveries ranks higher.
    # s_a and s_b tie at 0.0 with equal size: shop_id ascending ranks s_a above s_b, so s_b is weak.
    _groups(conn, [("s_small", 2, 1), ("s_big", 4, 2), ("s_mid", 4, 1), ("s_b", 4, 0), ("s_a", 4, 0)])
    run_month(conn, settings=P.LabelSettings(min_samples=1))
    assert labels(conn) == {"s_big": "strong", "s_small": "middle", "s_mid": "middle", "s_a": "middle", "s_b": "weak"}
    # Deterministic: re-running gives the same labels.
    run_month(conn, settings=P.LabelSettings(min_samples=1))
    assert labels(conn)["s_big"] == "strong" and labels(conn)["s_b"] == "weak"


def test_minimum_sample_count_excludes_small_groups_from_ranking(conn):
    _groups(conn, [("tiny", 2, 2)] + [(f"s{i}", 5, i) for i in range(4)])
    run_month(conn, settings=P.LabelSettings(min_samples=5))
    got = labels(conn)
    assert got["tiny"] == "insufficient_samples"  # best score, but too few deliveries
    assert got["s3"] == "strong" and got["s0"] == "weak"
    n_ranked = conn.execute("SELECT max(n_ranked) FROM core.quartile_labels").fetchall()[0][0]
    assert n_ranked == 4


def test_fewer_than_four_groups_get_no_strong_or_weak(conn):
    _groups(conn, [("s1", 3, 1), ("s2", 3, 2), ("s3", 3, 3)])
    run_month(conn, settings=P.LabelSettings(min_samples=1))
    assert set(labels(conn).values()) == {"middle"}


def test_label_settings_reject_nonsense():
    with pytest.raises(ValueError, match="min_samples"):
        P.LabelSettings(min_samples=0)
    with pytest.raises(ValueError, match="strong_share"):
        P.LabelSettings(strong_share=0.9)


def test_an_upgrade_that_adds_columns_migrates_itself_but_a_removed_column_stops_the_write(tmp_path):
    import duckdb
    import polars as pl

    from crmagent_dagster.sql import ModelError, write_frame

    conn = duckdb.connect(str(tmp_path / "wh.duckdb"))
    conn.execute("CREATE SCHEMA IF NOT EXISTS agents")
    old = pl.DataFrame({"month": ["2025-03"], "segment": ["s"], "status": ["ok"]})
    assert write_frame(conn, "agents.t", old, {"month": "2025-03", "segment": "s"}) == 1
    new = pl.DataFrame({"month": ["2025-04"], "segment": ["s"], "status": ["ok"], "channel": ["sms"]})
    assert write_frame(conn, "agents.t", new, {"month": "2025-04", "segment": "s"}) == 1
    assert conn.execute("SELECT month, channel FROM agents.t ORDER BY month").fetchall() == [("2025-03", None),
                                                                                           ("2025-04", "sms")]
    retyped = pl.DataFrame({"month": ["2025-05"], "segment": ["s"], "status": [1], "channel": ["sms"]})
    with pytest.raises(ModelError, match="agents.t"):
        write_frame(conn, "agents.t", retyped.with_columns(pl.lit([1]).alias("extra")), {"month": "2025-05",
                                                                                        "segment": "s"})


def test_schemas_taken_back_by_a_rollback_are_made_again(tmp_path):
    """ensure_schemas runs once per connection, but not when a rollback may have taken its work back."""
    import duckdb

    from crmagent_dagster.sql import ensure_schemas, transaction

    with duckdb.connect(str(tmp_path / "wh.duckdb")) as conn:
        with pytest.raises(RuntimeError), transaction(conn):
            ensure_schemas(conn)
            raise RuntimeError("a stage failed")
        assert conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'core'").fetchall() == [(0,)]
        ensure_schemas(conn)
        assert conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'core'").fetchall() == [(1,)]
        conn.execute("DROP SCHEMA core")  # made outside a transaction, so later calls skip the statements
        ensure_schemas(conn)
        assert conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'core'").fetchall() == [(0,)]
        assert conn.execute("SELECT assignment_bucket('x') < 1").fetchall() == [(True,)]


def test_schemas_made_inside_a_transaction_are_made_once_and_count_after_its_commit(tmp_path):
    """A month's staging runs its seven stages in one transaction: the first makes the schemas, the others find them."""
    import duckdb

    from crmagent_dagster.sql import ensure_schemas, transaction

    def has_core(conn) -> bool:
        return conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'core'").fetchall() == [(1,)]

    with duckdb.connect(str(tmp_path / "wh.duckdb")) as conn:
        with transaction(conn):
            ensure_schemas(conn)
            assert has_core(conn)
            conn.execute("DROP SCHEMA core")
            ensure_schemas(conn)  # made in this transaction already: not made again
            assert not has_core(conn)
            conn.execute("CREATE SCHEMA core")
        conn.execute("DROP SCHEMA core")
        ensure_schemas(conn)  # the commit recorded them for the connection
        assert not has_core(conn)
