"""Helpers for hand-made raw months (imported by tests; fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from crmagent_dagster import pipeline as P
from crmagent_dagster.raw_schema import RAW_TABLES

MONTH = "2025-04"
T0 = datetime(2025, 4, 10, 12, 0, 0)


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def raw_frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """A raw table from dicts; missing columns are NULL, everything is text."""
    cols = [c for c, _, _ in RAW_TABLES[table]]
    data = {c: [None if r.get(c) is None else str(r[c]) for r in rows] for c in cols}
    return pl.DataFrame(data, schema={c: pl.Utf8 for c in cols})


def load_raw(conn, month: str = MONTH, **tables: list[dict]) -> None:
    """Load hand-made raw tables for a month (tables not given are loaded empty)."""
    for table in RAW_TABLES:
        P.load_raw_table(conn, table, month, P.with_lineage(raw_frame(table, tables.get(table, [])), "fixture"))


def run_month(conn, month: str = MONTH, settings: P.LabelSettings | None = None, segments=None) -> None:
    """Stage, score, aggregate and label a loaded month."""
    P.stage_month(conn, month)
    P.score_logs(conn)
    P.aggregate_engagement(conn, month)
    for segment in segments or P.SEGMENT_KEYS:
        P.label_segment(conn, month, segment, settings or P.LabelSettings())


def log(log_id: str, sent: datetime = T0, *, shop="s1", plan="p1", template="t1", product=None, voucher=None,
        segment="abandoned_cart_buyers", user="u1") -> dict:
    return {"log_id": log_id, "sent_at": ts(sent), "shop_id": shop, "plan_id": plan, "template_id": template,
            "product_id": product, "voucher_id": voucher, "user_id": user, "segment": segment}


def event(log_id: str, event_type: str, at: datetime) -> dict:
    return {"log_id": log_id, "event_type": event_type, "event_at": ts(at)}


def after(**kw) -> datetime:
    return T0 + timedelta(**kw)
