"""Each kind of bad row is quarantined with its rule and a detail naming the field; good rows all arrive."""

from __future__ import annotations

import json

from sql_fixtures import MONTH, after, event, load_raw, log, ts
from crmagent_dagster import pipeline as P
from crmagent_dagster.raw_schema import RAW_TABLES

GOOD_VOUCHER = {"voucher_id": "v_ok", "shop_id": "s1", "voucher_type": "fixed_amount_off", "discount_value": "5",
                "min_spend": "30", "currency": "MYR", "voucher_code": "SAVE5", "expires_at": "2025-04-30 23:59:59"}

# table -> (rows, {row id value: expected rule}); ids not in the dict must be staged.
CASES: dict[str, tuple[list[dict], dict[str, str], str]] = {
    "shops": ([{"shop_id": "s1", "shop_name": "A", "market": "MY"},
               {"shop_id": "s1", "shop_name": "A again", "market": "MY"},
               {"shop_id": None, "shop_name": "nameless", "market": "ID"}],
              {"A again": "duplicate_key", "nameless": "null_key"}, "shop_name"),
    "plans": ([{"plan_id": "p1", "shop_id": "s1", "segment": "new_buyers", "template_id": "t1", "channel": "push"},
               {"plan_id": "p2", "shop_id": "s1", "segment": "martians", "template_id": "t1"},
               {"plan_id": "p3", "shop_id": "s1", "segment": "new_buyers", "template_id": None},
               {"plan_id": "p1", "shop_id": "s1", "segment": "new_buyers", "template_id": "t9"}],
              {"p2": "unknown_segment", "p3": "null_key", "p1": "duplicate_key"}, "plan_id"),
    "templates": ([{"template_id": "t1", "shop_id": "s1", "language": "en", "title": "Hi", "body": "Shop now!"},
                   {"template_id": "t2", "shop_id": "s1", "language": "en", "title": "  ", "body": ""},
                   {"template_id": "t3", "shop_id": "s1", "language": "ms", "title": "🛒", "body": None}],
                  {"t2": "empty_text"}, "template_id"),
    "products": ([{"product_id": "pr1", "shop_id": "s1", "product_name": "Serum", "price": "12.50"},
                  {"product_id": "pr2", "shop_id": "s1", "product_name": "Cable", "price": "n/a"},
                  {"product_id": "pr3", "shop_id": "s1", "product_name": "Mat", "price": "-3"},
                  {"product_id": "pr4", "shop_id": "s1", "product_name": "Freebie", "price": None}],
                 {"pr2": "invalid_number", "pr3": "negative_value"}, "product_id"),
    "vouchers": ([GOOD_VOUCHER,
                  {**GOOD_VOUCHER, "voucher_id": "v_type", "voucher_type": "buy_one_get_one"},
                  {**GOOD_VOUCHER, "voucher_id": "v_pct", "voucher_type": "percentage_off", "discount_value": "150"},
                  {**GOOD_VOUCHER, "voucher_id": "v_neg", "discount_value": "-5"},
                  {**GOOD_VOUCHER, "voucher_id": "v_nan", "min_spend": "thirty"},
                  {**GOOD_VOUCHER, "voucher_id": "v_min", "min_spend": "-10"},
                  {**GOOD_VOUCHER, "voucher_id": "v_cap", "voucher_type": "percentage_off", "discount_value": "10",
                   "max_discount": "0"},
                  {**GOOD_VOUCHER, "voucher_id": "v_exp", "expires_at": "31/04/2025"},
                  {**GOOD_VOUCHER, "voucher_id": "v_ship", "voucher_type": "free_shipping", "discount_value": None}],
                 {"v_type": "unknown_voucher_type", "v_pct": "impossible_value", "v_neg": "impossible_value",
                  "v_nan": "invalid_number", "v_exp": "malformed_timestamp", "v_min": "impossible_value",
                  "v_cap": "impossible_value"}, "voucher_id"),
}


def test_every_bad_row_is_quarantined_with_its_rule_and_nothing_is_lost(conn):
    logs = [log("ok1"), log("ok2", segment="new_buyers"),
            {**log("nokey"), "shop_id": None},
            {**log("badseg"), "segment": "crm_unknown"},
            {**log("badts"), "sent_at": "2025-04-31 25:00:00"},
            log("may", after(days=25)),  # sent 2025-05-05: not this month's partition
            {**log("ok1"), "user_id": "replay"}]  # duplicate log id
    events = [event("ok1", "read", after(hours=1)), event("ok1", "wink", after(hours=1)),
              {"log_id": "ok2", "event_type": "read", "event_at": "yesterday"},
              {"log_id": None, "event_type": "read", "event_at": ts(after(hours=1))}]
    load_raw(conn, delivery_logs=logs, engagement_events=events, **{t: rows for t, (rows, _, _) in CASES.items()})
    results = P.stage_month(conn, MONTH)

    # Counts add up for every table: raw = staged + quarantined.
    for table in RAW_TABLES:
        raw = conn.execute(f"SELECT count(*) FROM raw.{table}").fetchall()[0][0]
        assert sum(results[table]) == raw, table

    q = conn.execute("SELECT source_table, rule, detail, raw_record FROM staging.quarantine").fetchall()
    by_source = {}
    for source, rule, detail, record in q:
        by_source.setdefault(source, []).append((rule, detail, json.loads(record)))

    for table, (_, expected, id_col) in CASES.items():
        got = {rec[id_col]: rule for rule, _, rec in by_source.get(f"raw.{table}", [])}
        assert got == expected, table

    log_rules = sorted((rec["log_id"], rule) for rule, _, rec in by_source["raw.delivery_logs"])
    assert log_rules == [("badseg", "unknown_segment"), ("badts", "malformed_timestamp"), ("may", "outside_partition_month"),
                         ("nokey", "null_key"), ("ok1", "duplicate_log_id")]
    event_rules = sorted(rule for rule, _, _ in by_source["raw.engagement_events"])
    assert event_rules == ["malformed_timestamp", "null_key", "unknown_event_type"]

    # Details name the offending field and value.
    details = {rule: detail for rule, detail, _ in by_source["raw.delivery_logs"]}
    assert details["null_key"] == "empty: shop_id"
    assert details["malformed_timestamp"] == "sent_at=2025-04-31 25:00:00"
    assert "martians" in next(d for r, d, _ in by_source["raw.plans"] if r == "unknown_segment")
    # The first copy of a duplicated log survives, the replay is the one quarantined.
    kept_user = conn.execute("SELECT user_id FROM staging.delivery_logs WHERE log_id = 'ok1'").fetchall()[0][0]
    assert kept_user == "u1"
    # Good rows arrive typed.
    price = conn.execute("SELECT price FROM staging.products WHERE product_id = 'pr1'").fetchall()[0][0]
    assert price == 12.5
    ship = conn.execute("SELECT discount_value FROM staging.vouchers WHERE voucher_id = 'v_ship'").fetchall()[0][0]
    assert ship == 0


def test_restaging_replaces_quarantine_rows_instead_of_adding(conn):
    load_raw(conn, delivery_logs=[log("a"), {**log("b"), "segment": "??"}])
    for _ in range(3):
        P.stage_table(conn, "delivery_logs", MONTH)
    assert conn.execute("SELECT count(*) FROM staging.quarantine").fetchall()[0][0] == 1
    assert conn.execute("SELECT count(*) FROM staging.delivery_logs").fetchall()[0][0] == 1
