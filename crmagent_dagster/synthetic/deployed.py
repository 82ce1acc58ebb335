"""The synthetic world's CRM sender: next month's sends of last month's deployed experiments.

Each campaign keeps running for its template group (merchant, segment, product, voucher) with about as many sends as
last month. Every recipient is assigned by the deployment's own rule (holdout: no send; treatment: the rewrite;
control: the original), and responds to the text it received as this world judges it (synthetic/world.py, the
simulation's assumption). Both versions of a campaign share its merchant and campaign noise, so the true uplift of an
experiment is the difference of the two versions' expected scores, written beside the month as ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import polars as pl

from crmagent_dagster.experiments.assignment import AssignmentRule
from crmagent_dagster.segments import EVENT_TYPES
from crmagent_dagster.sql import run
from crmagent_dagster.synthetic import world
from crmagent_dagster.vocabulary import VoucherFacts

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Campaign:
    """One deployed experiment as the sender sees it, with the catalogue rows it needs to keep sending."""

    experiment_id: str
    segment: str
    shop_id: str
    shop_name: str | None
    market: str | None
    template_id: str
    variant_template_id: str
    product_id: str | None
    voucher_id: str | None
    language: str
    channel: str
    original_title: str
    original_body: str
    variant_title: str
    variant_body: str
    product: tuple[str | None, ...] | None  # (product_name, category_l1, category_l2, category_l3, price)
    voucher: VoucherFacts | None
    voucher_code: str | None
    sends: int
    rule: AssignmentRule


def load_campaigns(conn: duckdb.DuckDBPyConnection, deploy_month: str, sends_scale: float = 1.0) -> list[Campaign]:
    """The experiments deployed in `deploy_month` (agents.deployments) with their catalogue rows from that month."""
    exists = run(conn, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'agents' "
                       "AND table_name = 'deployments'")[0][0]
    if not exists:
        return []
    rows = conn.execute("""
        SELECT d.experiment_id, d.segment, d.shop_id, s.shop_name, s.market, d.template_id, d.variant_template_id,
               d.product_id, d.voucher_id, coalesce(d.language, t.language, 'en'), coalesce(d.channel, 'push'),
               coalesce(d.original_title, ''), coalesce(d.original_body, ''), d.variant_title, d.variant_body,
               p.product_name, p.category_l1, p.category_l2, p.category_l3, p.price,
               v.voucher_type, v.discount_value, v.min_spend, v.max_discount, v.currency, v.expires_at, v.voucher_code,
               coalesce(d.n_logs_before, 100), d.treatment_share, d.holdout_share, d.holdout_salt
        FROM agents.deployments d
        LEFT JOIN staging.shops s ON s.month = d.month AND s.shop_id = d.shop_id
        LEFT JOIN staging.templates t ON t.month = d.month AND t.template_id = d.template_id
        LEFT JOIN staging.products p ON p.month = d.month AND p.product_id = d.product_id
        LEFT JOIN staging.vouchers v ON v.month = d.month AND v.voucher_id = d.voucher_id
        WHERE d.month = $month ORDER BY d.segment, d.experiment_id""", {"month": deploy_month}).fetchall()
    out = []
    for r in rows:
        voucher = None
        if r[20]:
            expires = r[25].date() if isinstance(r[25], datetime) else r[25]
            voucher = VoucherFacts(r[20], float(r[21] or 0), None if r[22] is None else float(r[22]),
                                   None if r[23] is None else float(r[23]), r[24] or "", expires)
        out.append(Campaign(
            experiment_id=r[0], segment=r[1], shop_id=r[2], shop_name=r[3], market=r[4], template_id=r[5],
            variant_template_id=r[6], product_id=r[7], voucher_id=r[8], language=r[9], channel=r[10],
            original_title=r[11], original_body=r[12], variant_title=r[13], variant_body=r[14],
            product=tuple(r[15:20]) if r[7] else None, voucher=voucher, voucher_code=r[26],
            sends=max(1, round(r[27] * sends_scale)), rule=AssignmentRule(r[28], r[29], r[30])))
    return out


def _probabilities(c: Campaign) -> np.ndarray:
    """(2, 5): the control's and the treatment's response probabilities, as this world reads each text."""
    product = c.product[0] if c.product else None
    readings = [world.read_message(title, body, segment=c.segment, language=c.language, voucher=c.voucher,
                                   product=product)
                for title, body in ((c.original_title, c.original_body), (c.variant_title, c.variant_body))]
    return world.response_probabilities(readings, [c.segment] * 2, [c.product_id is not None] * 2,
                                        [c.voucher_id is not None] * 2)


@dataclass
class SimulatedSends:
    tables: dict[str, pl.DataFrame]  # rows to add to the month's raw tables (text columns)
    truth: pl.DataFrame  # experiment_id, expected score per arm, true uplift


def simulate(campaigns: list[Campaign], month_start: datetime, month_end: datetime, *, seed: int, n_users: int,
             late_event_share: float) -> SimulatedSends:
    """Sends, events and catalogue rows for every campaign; deterministic for (campaigns, month, seed)."""
    rng = np.random.default_rng([seed, int(month_start.strftime("%Y%m")), 1])
    yymm = month_start.strftime("%y%m")
    month_seconds = int((month_end - month_start).total_seconds())
    keep = 1.0 - late_event_share  # an event after the 7-day window is not scored
    logs, events, plans, truth = [], [], [], []
    templates, products, vouchers, shops = {}, {}, {}, {}
    for k, c in enumerate(campaigns):
        p = _probabilities(c)
        campaign_effect = rng.lognormal(0.0, 0.35) * rng.lognormal(0.0, 0.2)  # merchant and campaign noise
        p[:, :4] *= campaign_effect
        p[:, 4] /= np.sqrt(campaign_effect)
        p = np.clip(p, 0.0, 0.95)
        expected = world.expected_score(p, keep)
        truth.append((c.experiment_id, c.segment, float(expected[0]), float(expected[1]),
                      float(expected[1] - expected[0])))
        users = np.char.add("u", rng.integers(0, max(1, n_users), size=c.sends).astype(str))
        arms = np.array([c.rule.arm(c.experiment_id, u) for u in users])
        sent = arms != "holdout"
        users, arms = users[sent], arms[sent]
        treated = arms == "treatment"
        plan_ids = {True: f"p{yymm}_{c.experiment_id}_t", False: f"p{yymm}_{c.experiment_id}_c"}
        for is_t, template in ((False, c.template_id), (True, c.variant_template_id)):
            plans.append((plan_ids[is_t], c.shop_id, c.segment, template, c.product_id, c.voucher_id, c.channel))
        templates.setdefault(c.template_id, (c.template_id, c.shop_id, c.language, c.original_title, c.original_body))
        templates[c.variant_template_id] = (c.variant_template_id, c.shop_id, c.language, c.variant_title, c.variant_body)
        if c.product_id and c.product:
            name, l1, l2, l3, price = c.product
            products.setdefault(c.product_id, (c.product_id, c.shop_id, name, l1, l2, l3,
                                               None if price is None else f"{price:.2f}"))
        if c.voucher_id and c.voucher:
            v = c.voucher
            vouchers.setdefault(c.voucher_id, (
                c.voucher_id, c.shop_id, v.voucher_type, f"{v.value:g}",
                None if v.min_spend is None else f"{v.min_spend:g}",
                None if v.max_discount is None else f"{v.max_discount:g}", v.currency, c.voucher_code,
                None if v.expires_on is None else f"{v.expires_on.isoformat()} 23:59:59"))
        shops.setdefault(c.shop_id, (c.shop_id, c.shop_name or c.shop_id, c.market or ""))
        n = users.size
        log_ids = np.char.add(f"l{yymm}_{c.experiment_id}_", np.arange(n).astype(str))
        sent_at = rng.integers(0, month_seconds, size=n)
        logs.append(pl.DataFrame({
            "log_id": log_ids, "sent_at": _text_time(month_start, sent_at), "shop_id": [c.shop_id] * n,
            "plan_id": np.where(treated, plan_ids[True], plan_ids[False]), "template_id": np.where(
                treated, c.variant_template_id, c.template_id), "product_id": pl.Series([c.product_id] * n, dtype=pl.Utf8),
            "voucher_id": pl.Series([c.voucher_id] * n, dtype=pl.Utf8), "segment": [c.segment] * n, "user_id": users}))
        events.append(_events(rng, p[treated.astype(int)], log_ids, sent_at, month_start, late_event_share))
    if not campaigns:
        return SimulatedSends({}, pl.DataFrame(schema=TRUTH_SCHEMA))
    return SimulatedSends(
        tables={
            "shops": pl.DataFrame(list(shops.values()), schema=["shop_id", "shop_name", "market"], orient="row"),
            "plans": pl.DataFrame(plans, schema=["plan_id", "shop_id", "segment", "template_id", "product_id",
                                                 "voucher_id", "channel"], orient="row"),
            "templates": pl.DataFrame(list(templates.values()), schema=["template_id", "shop_id", "language", "title",
                                                                        "body"], orient="row"),
            "products": pl.DataFrame(list(products.values()), schema=["product_id", "shop_id", "product_name",
                                                                      "category_l1", "category_l2", "category_l3",
                                                                      "price"], orient="row"),
            "vouchers": pl.DataFrame(list(vouchers.values()), schema=["voucher_id", "shop_id", "voucher_type",
                                                                      "discount_value", "min_spend", "max_discount",
                                                                      "currency", "voucher_code", "expires_at"],
                                     orient="row"),
            "delivery_logs": pl.concat(logs),
            "engagement_events": pl.concat(events),
        },
        truth=pl.DataFrame(truth, schema=TRUTH_SCHEMA, orient="row"))


TRUTH_SCHEMA = {"experiment_id": pl.Utf8, "segment": pl.Utf8, "expected_score_control": pl.Float64,
                "expected_score_treatment": pl.Float64, "true_uplift": pl.Float64}


def _text_time(start: datetime, seconds: np.ndarray) -> pl.Series:
    base = np.datetime64(start, "ms")
    return pl.Series(base + (seconds * 1000).astype("timedelta64[ms]")).dt.strftime("%Y-%m-%d %H:%M:%S")


def _events(rng, p: np.ndarray, log_ids: np.ndarray, sent: np.ndarray, start: datetime, late_share: float) -> pl.DataFrame:
    """The generator's event process: clicks only after a read, unsubscribes without one, some events late."""
    n = log_ids.size
    u = rng.random((n, 5))
    read = u[:, 0] < p[:, 0]
    fired = np.column_stack([read, read & (u[:, 1] < p[:, 1]), read & (u[:, 2] < p[:, 2]),
                             read & (u[:, 3] < p[:, 3]), u[:, 4] < p[:, 4]])
    ev_log, ev_type = np.nonzero(fired)
    lag = rng.exponential(6 * 3600, size=ev_log.size) + np.where(ev_type == 0, 0, rng.exponential(1800, size=ev_log.size))
    late = rng.random(ev_log.size) < late_share
    lag = np.where(late, rng.uniform(7.05, 20, size=ev_log.size) * SECONDS_PER_DAY,
                   np.minimum(lag, 6.9 * SECONDS_PER_DAY))
    return pl.DataFrame({"log_id": log_ids[ev_log], "event_type": np.array(EVENT_TYPES)[ev_type],
                         "event_at": _text_time(start, sent[ev_log] + lag.astype(np.int64))})

