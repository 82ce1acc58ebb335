"""Generate one synthetic month of raw CRM tables (Appendix A's shape, at any scale).

Per-template work (text composition) is a Python loop over ~N/190 plans; everything per
log or per event is vectorised numpy/polars. The output is deterministic for
(month, n_logs, seed). Shops are drawn from `seed` alone, so the same merchants appear
in every month generated with that seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from crmagent_dagster.landing import SYNTHETIC_MARKER
from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.segments import EVENT_TYPES, SEGMENT_KEYS, SEGMENT_SHARES
from crmagent_dagster.synthetic.catalog import (
    CATEGORIES,
    CURRENCY_AMOUNTS,
    DEFECT_TARGETS,
    MARKETS,
    PRODUCT_BOUND_SHARE,
    VOUCHER_BOUND_SHARE,
    VOUCHER_TYPE_SHARES,
)
from crmagent_dagster.synthetic.compose import compose_template
from crmagent_dagster.synthetic.deployed import Campaign, simulate
from crmagent_dagster.synthetic.engagement import event_probabilities
from crmagent_dagster.vocabulary import VoucherFacts

LOGS_PER_PLAN = 190  # ~3M logs -> ~16k plans, as in the paper's 15,806 aggregated records
PLANS_PER_SHOP = 5
SECONDS_PER_DAY = 86_400
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class MessRates:
    """Shares of deliberately broken rows, so staging has real mess to quarantine."""

    late_event: float = 0.015  # events 7-20 days after sending (valid, but outside the window)
    unknown_log_event: float = 0.002
    duplicate_event: float = 0.006  # exact duplicates of an event row
    repeat_click: float = 0.05  # a second product-card click at a later time
    bad_event_type: float = 0.0002
    bad_event_time: float = 0.0002
    null_key_log: float = 0.0002
    unknown_segment_log: float = 0.0002
    bad_sent_at: float = 0.0002
    duplicate_log: float = 0.0003
    bad_product_price: float = 0.005
    bad_voucher_value: float = 0.005


NO_MESS = MessRates(*(0.0 for _ in range(12)))


@dataclass
class SyntheticMonth:
    month: str
    tables: dict[str, pl.DataFrame]  # raw tables, all-text columns, in RAW_TABLES order
    template_truth: pl.DataFrame  # generator-only ground truth: defect and features per template
    experiment_truth: pl.DataFrame | None = None  # deployed campaigns: expected score per arm, true uplift


def month_bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month + "-01", "%Y-%m-%d")
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _weighted(rng: np.random.Generator, options: dict[str, float], n: int) -> np.ndarray:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _shops(seed: int, n_shops: int) -> pl.DataFrame:
    rng = np.random.default_rng([seed, 0])
    markets = _weighted(rng, {m: v[1] for m, v in MARKETS.items()}, n_shops)
    stems = ["Glow", "Urban", "Happy", "Kedai", "Toko", "Prime", "Daily", "Lucky", "Bloom", "Nest", "Aura", "Zen"]
    tails = ["Store", "Mart", "Official", "House", "Co", "Hub", "Corner", "Outlet"]
    names = [f"{stems[i % len(stems)]} {tails[(i // len(stems)) % len(tails)]} {i}" for i in range(n_shops)]
    return pl.DataFrame(
        {"shop_id": [f"s{i:05d}" for i in range(n_shops)], "shop_name": names, "market": markets.tolist()}
    )


@dataclass
class _Draw:
    """What a month draws before its deliveries: the generator stream, the catalogue and the plans' log sizes."""
    rng: np.random.Generator
    start: datetime
    end: datetime
    catalogue: dict[str, pl.DataFrame]  # shops, plans, templates, products, vouchers
    truth: pl.DataFrame
    plan: _LogPlan

    def mess_catalogue(self, mess: MessRates) -> None:
        """The catalogue's planted mess, drawn from `rng` (after the deliveries, in a month held in memory)."""
        c = self.catalogue
        c["products"], c["vouchers"] = _mess_catalog(self.rng, c["products"], c["vouchers"], mess)


def _draw(month: str, n_logs: int, seed: int) -> _Draw:
    start, end = month_bounds(month)
    yymm = start.strftime("%y%m")
    n_plans = max(40, round(n_logs / LOGS_PER_PLAN))
    shops = _shops(seed, max(8, round(n_plans / PLANS_PER_SHOP)))
    rng = np.random.default_rng([seed, int(start.strftime("%Y%m"))])
    prng = random.Random(int(rng.integers(2**31)))
    plans, templates, products, vouchers, truth = _plans_and_templates(rng, prng, shops, n_plans, yymm, start, end)
    plan = _log_plan(rng, plans, truth, shops, n_logs, yymm, start, end)
    catalogue = {"shops": shops, "plans": plans.drop("plan_index"), "templates": templates, "products": products,
                 "vouchers": vouchers}
    return _Draw(rng, start, end, catalogue, truth, plan)


def generate_month(month: str, n_logs: int, seed: int = 7, mess: MessRates = MessRates(),
                   campaigns: Sequence[Campaign] = ()) -> SyntheticMonth:
    """`campaigns`: last month's deployed experiments, sent this month by their assignment rule on top of the
    month's own plans (synthetic/deployed.py); the month's own plans do not change with them."""
    draw = _draw(month, n_logs, seed)
    logs, events = _logs_and_events(draw.rng, draw.plan, 0, n_logs, mess)
    draw.mess_catalogue(mess)
    tables = {**draw.catalogue, "delivery_logs": logs, "engagement_events": events}
    tables = {t: _as_raw_text(tables[t], t) for t in RAW_TABLES}
    if not campaigns:
        return SyntheticMonth(month=month, tables=tables, template_truth=draw.truth)
    sent = simulate(list(campaigns), draw.start, draw.end, seed=seed, n_users=max(1, n_logs // 3),
                    late_event_share=mess.late_event)
    return SyntheticMonth(month=month, tables=_with_campaigns(tables, sent.tables), template_truth=draw.truth,
                          experiment_truth=sent.truth)


CHUNK_LOGS = 2_000_000  # deliveries per part file when a month is written in chunks


@dataclass(frozen=True)
class WrittenMonth:
    month: str
    folder: Path
    rows: dict[str, int]  # raw table -> rows written
    parts: int  # part files per log table


def write_month_in_chunks(month: str, n_logs: int, landing_dir: str | Path, seed: int = 7, *,
                          chunk_logs: int = CHUNK_LOGS, mess: MessRates = MessRates()) -> WrittenMonth:
    """A month too big to hold in memory, written as landing Parquet: the catalogue once, then the deliveries and
    their events `chunk_logs` at a time into `delivery_logs/part-NNNN.parquet` and `engagement_events/...`.

    Memory follows the chunk, not the month. The catalogue, plan sizes and rates are those `generate_month` draws;
    each chunk's deliveries come from their own random stream (seed, month, chunk), so the same arguments always
    write the same files, though not the rows `generate_month` holds for the same seed (mess is planted per chunk).
    """
    if chunk_logs < 1:
        raise ValueError(f"chunk_logs must be >= 1, got {chunk_logs}")
    draw = _draw(month, n_logs, seed)
    draw.mess_catalogue(mess)
    folder = Path(landing_dir) / month
    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    for table, frame in draw.catalogue.items():
        _as_raw_text(frame, table).write_parquet(folder / f"{table}.parquet")
        rows[table] = frame.height
    draw.truth.write_parquet(folder / SYNTHETIC_MARKER)
    rows |= {"delivery_logs": 0, "engagement_events": 0}
    edges = list(range(0, n_logs, chunk_logs)) + [n_logs]
    for part, (first, last) in enumerate(zip(edges, edges[1:])):
        chunk_rng = np.random.default_rng([seed, int(draw.start.strftime("%Y%m")), 1, part])
        logs, events = _logs_and_events(chunk_rng, draw.plan, first, last, mess)
        for table, frame in (("delivery_logs", logs), ("engagement_events", events)):
            (folder / table).mkdir(exist_ok=True)
            _as_raw_text(frame, table).write_parquet(folder / table / f"part-{part:04d}.parquet")
            rows[table] += frame.height
    return WrittenMonth(month, folder, rows, len(edges) - 1)


_IDS = {"shops": "shop_id", "templates": "template_id", "products": "product_id", "vouchers": "voucher_id"}


def _with_campaigns(tables: dict[str, pl.DataFrame], extra: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The month's tables with the campaigns' rows; catalogue rows the month already has are not repeated."""
    out = {}
    for table, frame in tables.items():
        add = _as_raw_text(extra[table], table)
        if table in _IDS:
            add = add.filter(~pl.col(_IDS[table]).is_in(frame[_IDS[table]].implode()))
        out[table] = pl.concat([frame, add])
    return out


def _plans_and_templates(rng, prng, shops, n_plans, yymm, start, end):
    n_shops = shops.height
    shop_weight = 1.0 / np.arange(1, n_shops + 1) ** 0.8  # a few big merchants run many plans
    shop_idx = rng.choice(n_shops, size=n_plans, p=shop_weight / shop_weight.sum())
    segment = _weighted(rng, SEGMENT_SHARES, n_plans)
    has_product = rng.random(n_plans) < PRODUCT_BOUND_SHARE
    has_voucher = rng.random(n_plans) < VOUCHER_BOUND_SHARE
    defect = _weighted(rng, DEFECT_TARGETS, n_plans)
    emoji = rng.random(n_plans) < 0.4
    urgency = rng.random(n_plans) < 0.5
    markets = shops["market"].to_numpy()[shop_idx]
    shop_ids = shops["shop_id"].to_numpy()[shop_idx]
    l1_names = list(CATEGORIES)
    l1_w = np.array([CATEGORIES[c][0] for c in l1_names])
    l1_pick = rng.choice(len(l1_names), size=n_plans, p=l1_w / l1_w.sum())

    plan_rows, tpl_rows, prod_rows, vch_rows, truth_rows = [], [], [], [], []
    # (shop, segment) -> (template_id, voucher_id) of an earlier plan whose copy may be reused.
    reuse_pool: dict[tuple[str, str], tuple[str, str | None]] = {}
    for i in range(n_plans):
        shop, seg, market = shop_ids[i], segment[i], markets[i]
        currency, _, langs = MARKETS[market]
        product_name = product_id = None
        if has_product[i]:
            l1 = l1_names[l1_pick[i]]
            subcats, adjs = CATEGORIES[l1][1], CATEGORIES[l1][2]
            l2 = prng.choice(list(subcats))
            l3 = prng.choice(subcats[l2])
            product_name = f"{prng.choice(adjs)} {l3}"
            product_id = f"pr{yymm}_{i:06d}"
            base_price = prng.choice(CURRENCY_AMOUNTS[currency][1]) * prng.choice((0.3, 0.5, 0.8, 1.2))
            prod_rows.append((product_id, shop, product_name, l1, l2, l3, f"{base_price:.2f}"))
        key = (shop, seg)
        if key in reuse_pool and product_id is not None and prng.random() < 0.12:
            # Same copy and same (shop-wide) voucher for another product: a separate aggregate group
            # whose text still states only its own voucher's facts.
            template_id, voucher_id = reuse_pool[key]
        else:
            facts = voucher_id = None
            if has_voucher[i]:
                facts, code = _voucher(prng, rng, currency, start, end)
                voucher_id = f"v{yymm}_{i:06d}"
                vch_rows.append((
                    voucher_id, shop, facts.voucher_type, f"{facts.value:g}",
                    None if facts.min_spend is None else f"{facts.min_spend:g}",
                    None if facts.max_discount is None else f"{facts.max_discount:g}",
                    currency, code, f"{facts.expires_on.isoformat()} 23:59:59",
                ))
            language = prng.choices(list(langs), weights=list(langs.values()))[0]
            t = compose_template(
                prng, segment=seg, language=language, defect=defect[i], voucher=facts,
                product=product_name, emoji=bool(emoji[i]), urgency=bool(urgency[i]),
            )
            template_id = f"t{yymm}_{i:06d}"
            if product_name is None:  # only copy that names no product can be reused for another product
                reuse_pool[key] = (template_id, voucher_id)
            tpl_rows.append((template_id, shop, language, t.title, t.body))
            truth_rows.append((template_id, defect[i], t.incentive_stated, t.has_cta, t.has_urgency, t.has_emoji))
        channel = prng.choices(("push", "im", "email"), weights=(0.7, 0.2, 0.1))[0]
        plan_rows.append((i, f"p{yymm}_{i:06d}", shop, seg, template_id, product_id, voucher_id, channel))

    plans = pl.DataFrame(plan_rows, orient="row", schema=["plan_index", "plan_id", "shop_id", "segment",
                                                          "template_id", "product_id", "voucher_id", "channel"])
    templates = pl.DataFrame(tpl_rows, orient="row", schema=["template_id", "shop_id", "language", "title", "body"])
    products = pl.DataFrame(prod_rows, orient="row", schema=[c for c, _, _ in RAW_TABLES["products"]])
    vouchers = pl.DataFrame(vch_rows, orient="row", schema=[c for c, _, _ in RAW_TABLES["vouchers"]])
    truth = pl.DataFrame(truth_rows, orient="row", schema=["template_id", "defect", "incentive_stated", "has_cta",
                                                           "has_urgency", "has_emoji"])
    return plans, templates, products, vouchers, truth


def _voucher(prng: random.Random, rng, currency: str, start: datetime, end: datetime) -> tuple[VoucherFacts, str]:
    vtype = prng.choices(list(VOUCHER_TYPE_SHARES), weights=list(VOUCHER_TYPE_SHARES.values()))[0]
    values, min_steps = CURRENCY_AMOUNTS[currency]
    min_spend = prng.choice(min_steps) if prng.random() < 0.75 else None
    max_discount = None
    if vtype == "percentage_off":
        value = float(prng.choice((5, 10, 12, 15, 20, 25, 30, 40, 50)))
        if prng.random() < 0.4:
            max_discount, min_spend = float(prng.choice(values[2:])), None
    elif vtype == "fixed_amount_off":
        value = float(prng.choice(values))
        if min_spend is not None and min_spend <= value:
            min_spend = None
    else:
        value = 0.0
    days = (end - start).days
    expires = (start + timedelta(days=prng.randint(7, days + 14))).date()
    code = f"{prng.choice(('SAVE', 'DEAL', 'HEMAT', 'JIMAT', 'VIP', 'CART', 'NEW'))}{prng.randint(10, 999)}"
    return VoucherFacts(vtype, value, None if min_spend is None else float(min_spend), max_discount, currency, expires), code


@dataclass(frozen=True)
class _LogPlan:
    """What every chunk of a month's deliveries shares: per-plan event rates and sizes, and the plans' keys."""
    rates: np.ndarray  # plans x 5 event probabilities
    counts: np.ndarray  # deliveries per plan, summing to n_logs
    per_plan: pl.DataFrame
    yymm: str
    start: datetime
    month_seconds: int
    n_users: int


def _log_plan(rng, plans, truth, shops, n_logs, yymm, start, end) -> _LogPlan:
    n_plans = plans.height
    feats = plans.join(truth, on="template_id", how="left").sort("plan_index")
    p = event_probabilities(
        segment=feats["segment"].to_numpy().astype(str),
        defect=feats["defect"].to_numpy().astype(str),
        incentive_stated=feats["incentive_stated"].to_numpy().astype(bool),
        has_urgency=feats["has_urgency"].to_numpy().astype(bool),
        has_emoji=feats["has_emoji"].to_numpy().astype(bool),
        has_product=feats["product_id"].is_not_null().to_numpy(),
        has_voucher=feats["voucher_id"].is_not_null().to_numpy(),
    )
    # Shop popularity and plan-level noise: the heavy right tail of Fig. 8.
    shop_effect = rng.lognormal(0.0, 0.35, size=shops.height)
    shop_pos = {s: k for k, s in enumerate(shops["shop_id"].to_list())}
    s_eff = shop_effect[[shop_pos[s] for s in feats["shop_id"].to_list()]]
    plan_eff = rng.lognormal(0.0, 0.2, size=n_plans)
    p[:, :4] *= (s_eff * plan_eff)[:, None]
    p[:, 4] /= np.sqrt(s_eff)
    p = np.clip(p, 0.0, 0.95)

    # Heavy-tailed plan sizes, summing exactly to n_logs.
    w = rng.lognormal(0.0, 1.0, size=n_plans)
    counts = rng.multinomial(n_logs, w / w.sum())
    per_plan = plans.sort("plan_index").select("shop_id", "plan_id", "template_id", "product_id", "voucher_id", "segment")
    return _LogPlan(p, counts, per_plan, yymm, start, int((end - start).total_seconds()), max(1, n_logs // 3))


def _logs_and_events(rng, plan: _LogPlan, first: int, last: int, mess: MessRates):
    """Deliveries number `first` .. `last - 1` of the month (in plan order) and their events, with the mess.
    The whole month is one call; `write_month_in_chunks` makes several, each with its own generator."""
    bounds = np.concatenate([[0], np.cumsum(plan.counts)])
    lo, hi = np.searchsorted(bounds, first, side="right") - 1, np.searchsorted(bounds, last, side="left")
    counts = np.clip(np.minimum(bounds[lo + 1:hi + 1], last) - np.maximum(bounds[lo:hi], first), 0, None)
    plan_of_log = np.repeat(np.arange(lo, hi), counts)
    n_logs = last - first
    sent = rng.integers(0, plan.month_seconds, size=n_logs)
    log_ids = np.char.add(f"l{plan.yymm}_", np.char.zfill(np.arange(first, last).astype(str), 7))

    # Clicks only follow a read; unsubscribes can come without one.
    pl_ = plan.rates[plan_of_log]
    u = rng.random((n_logs, 5))
    read = u[:, 0] < pl_[:, 0]
    fired = np.column_stack([read, read & (u[:, 1] < pl_[:, 1]), read & (u[:, 2] < pl_[:, 2]),
                             read & (u[:, 3] < pl_[:, 3]), u[:, 4] < pl_[:, 4]])
    read_lag = rng.exponential(6 * 3600, size=n_logs)
    ev_log, ev_type = np.nonzero(fired)
    lag = read_lag[ev_log] + np.where(ev_type == 0, 0, rng.exponential(1800, size=ev_log.size))
    late = rng.random(ev_log.size) < mess.late_event
    lag = np.where(late, rng.uniform(7.05, 20, size=ev_log.size) * SECONDS_PER_DAY, np.minimum(lag, 6.9 * SECONDS_PER_DAY))
    ev_time = sent[ev_log] + lag.astype(np.int64)
    # Repeated product-card clicks at a later time (count once in scoring).
    rep = np.nonzero((ev_type == 2) & (rng.random(ev_log.size) < mess.repeat_click))[0]
    ev_log = np.concatenate([ev_log, ev_log[rep]])
    ev_type = np.concatenate([ev_type, ev_type[rep]])
    ev_time = np.concatenate([ev_time, ev_time[rep] + rng.integers(60, 7200, size=rep.size)])

    logs = pl.concat([
        pl.DataFrame({"log_id": log_ids, "sent_at": _epoch_text(plan.start, sent)}),
        plan.per_plan[plan_of_log],
        pl.DataFrame({"user_id": np.char.add("u", rng.integers(0, plan.n_users, size=n_logs).astype(str))}),
    ], how="horizontal")
    events = pl.DataFrame({
        "log_id": log_ids[ev_log],
        "event_type": np.array(EVENT_TYPES)[ev_type],
        "event_at": _epoch_text(plan.start, ev_time),
    })
    return _mess_logs(rng, logs, mess), _mess_events(rng, events, mess, plan.yymm)


def _epoch_text(start: datetime, seconds: np.ndarray) -> pl.Series:
    base = np.datetime64(start, "ms")
    return pl.Series(base + (seconds * 1000).astype("timedelta64[ms]")).dt.strftime(TS_FORMAT)


def _pick(rng, n: int, share: float) -> np.ndarray:
    return rng.choice(n, size=int(round(n * share)), replace=False) if n and share > 0 else np.array([], dtype=int)


def _mess_logs(rng, logs: pl.DataFrame, mess: MessRates) -> pl.DataFrame:
    n = logs.height
    rows = pl.Series("r", np.arange(n))
    null_key, bad_seg, bad_ts = (_pick(rng, n, s) for s in (mess.null_key_log, mess.unknown_segment_log, mess.bad_sent_at))
    logs = logs.with_columns(
        pl.when(rows.is_in(null_key)).then(None).otherwise(pl.col("shop_id")).alias("shop_id"),
        pl.when(rows.is_in(bad_seg)).then(pl.lit("crm_unknown_segment")).otherwise(pl.col("segment")).alias("segment"),
        pl.when(rows.is_in(bad_ts)).then(pl.lit("2025-02-30 25:61:00")).otherwise(pl.col("sent_at")).alias("sent_at"),
    )
    dups = logs[_pick(rng, n, mess.duplicate_log)]
    return pl.concat([logs, dups.with_columns(pl.lit("u_replayed").alias("user_id"))])


def _mess_events(rng, events: pl.DataFrame, mess: MessRates, yymm: str) -> pl.DataFrame:
    n = events.height
    rows = pl.Series("r", np.arange(n))
    bad_type, bad_ts = _pick(rng, n, mess.bad_event_type), _pick(rng, n, mess.bad_event_time)
    events = events.with_columns(
        pl.when(rows.is_in(bad_type)).then(pl.lit("click")).otherwise(pl.col("event_type")).alias("event_type"),
        pl.when(rows.is_in(bad_ts)).then(pl.lit("yesterday")).otherwise(pl.col("event_at")).alias("event_at"),
    )
    dups = events[_pick(rng, n, mess.duplicate_event)]
    orphans = events[_pick(rng, n, mess.unknown_log_event)].with_columns(
        pl.concat_str(pl.lit(f"l{yymm}_ghost_"), pl.col("log_id")).alias("log_id")
    )
    return pl.concat([events, dups, orphans]).sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))


def _mess_catalog(rng, products: pl.DataFrame, vouchers: pl.DataFrame, mess: MessRates):
    """A few unparseable prices and impossible voucher values (a negative discount)."""
    bad_price = pl.Series(np.arange(products.height)).is_in(_pick(rng, products.height, mess.bad_product_price))
    bad_value = pl.Series(np.arange(vouchers.height)).is_in(_pick(rng, vouchers.height, mess.bad_voucher_value))
    products = products.with_columns(pl.when(bad_price).then(pl.lit("n/a")).otherwise(pl.col("price")).alias("price"))
    vouchers = vouchers.with_columns(
        pl.when(bad_value).then(pl.lit("-5")).otherwise(pl.col("discount_value")).alias("discount_value"))
    return products, vouchers


def _as_raw_text(df: pl.DataFrame, table: str) -> pl.DataFrame:
    cols = [c for c, _, _ in RAW_TABLES[table]]
    return df.select([pl.col(c).cast(pl.Utf8) for c in cols])


def parse_month(month: str) -> date:
    """Validate a 'YYYY-MM' month string; raises ValueError naming the bad value."""
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"month must look like 2025-04, got {month!r}") from None
