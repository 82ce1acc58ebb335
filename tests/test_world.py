"""The synthetic world's reading of any text (synthetic/world.py): it recovers what the generator wrote, judges
identical text identically, credits a real fix, charges a lost product name, value, deadline or brevity, and
its expected score is what the generator's event process yields on average."""

from __future__ import annotations

import ast
import random
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crmagent_dagster.segments import EVENT_TYPES, EVENT_WEIGHTS, SEGMENT_KEYS
from crmagent_dagster.synthetic import world
from crmagent_dagster.synthetic.catalog import DEFECTS
from crmagent_dagster.synthetic.compose import compose_template
from crmagent_dagster.synthetic.engagement import event_probabilities
from crmagent_dagster.synthetic.month import NO_MESS, generate_month
from crmagent_dagster.vocabulary import VoucherFacts, format_expiry, incentive_phrases

ROOT = Path(__file__).resolve().parents[1]


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


def _voucher(row: dict) -> VoucherFacts | None:
    """VoucherFacts parsed from the raw (all-text) voucher columns."""
    if row["voucher_type"] is None:
        return None
    expires = datetime.strptime(row["expires_at"], "%Y-%m-%d %H:%M:%S").date()
    return VoucherFacts(row["voucher_type"], float(row["discount_value"]), _number(row["min_spend"]),
                        _number(row["max_discount"]), row["currency"], expires)


@pytest.fixture(scope="module")
def month_rows() -> list[dict]:
    """One row per template, joined to the plan that had it written (plan and template share their index)."""
    m = generate_month("2025-04", 600_000, seed=11, mess=NO_MESS)
    t = m.tables
    rows = (t["plans"].join(t["templates"].drop("shop_id"), on="template_id")
            .join(m.template_truth, on="template_id")
            .join(t["products"].select("product_id", "product_name"), on="product_id", how="left")
            .join(t["vouchers"].drop("shop_id"), on="voucher_id", how="left")
            .filter(pl.col("plan_id").str.slice(6) == pl.col("template_id").str.slice(6))
            .sort("plan_id"))
    out = rows.to_dicts()
    for r in out:
        r["voucher"] = _voucher(r)
        r["reading"] = _read(r)
    return out


def _read(r: dict, title: str | None = None, body: str | None = None) -> world.WorldReading:
    return world.read_message(r["title"] if title is None else title, r["body"] if body is None else body,
                              segment=r["segment"], language=r["language"], voucher=r["voucher"],
                              product=r["product_name"])


def _probabilities(rows: list[dict], readings: list[world.WorldReading]) -> np.ndarray:
    return world.response_probabilities(readings, [r["segment"] for r in rows],
                                        [r["product_name"] is not None for r in rows],
                                        [r["voucher"] is not None for r in rows])


# --- recovering the generator's truth --------------------------------------------------------------
def _agrees(r: dict) -> dict[str, bool]:
    reading: world.WorldReading = r["reading"]
    wanted = frozenset() if r["defect"] == "none" else frozenset({r["defect"]})
    return {"defect": reading.defects == wanted, "incentive_stated": reading.incentive_stated == r["incentive_stated"],
            "has_cta": reading.has_cta == r["has_cta"], "has_urgency": reading.has_urgency == r["has_urgency"],
            "has_emoji": reading.has_emoji == r["has_emoji"]}


def test_reading_recovers_the_generators_truth_per_feature_and_language(month_rows):
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in month_rows:
        for feature, ok in _agrees(r).items():
            for key in ((feature, r["language"]), (feature, "all")):
                counts[key][0] += ok
                counts[key][1] += 1
    table = {k: (hit / n, n) for k, (hit, n) in sorted(counts.items())}
    print("\n".join(f"{f:<17} {lang:<3} {share:.4f} of {n}" for (f, lang), (share, n) in table.items()))
    assert {lang for _, lang in table} == {"en", "ms", "id", "all"}  # every language is in the sample
    low = {k: v for k, v in table.items() if v[0] < 0.97}
    assert not low, low


def test_every_defect_is_read_where_written_and_only_there(month_rows):
    """Per defect: present in the reading exactly where the generator put it (>= 97% both ways)."""
    for defect in DEFECTS:
        written = [defect in r["reading"].defects for r in month_rows if r["defect"] == defect]
        elsewhere = [defect in r["reading"].defects for r in month_rows if r["defect"] != defect]
        assert len(written) >= 20, defect
        assert np.mean(written) >= 0.97 and np.mean(elsewhere) <= 0.03, (defect, np.mean(written), np.mean(elsewhere))


def test_every_bound_product_is_named_and_text_length_is_counted(month_rows):
    for r in month_rows:
        assert r["reading"].product_named == (r["product_name"] is not None)
        assert r["reading"].length == len(r["title"]) + len(r["body"])


def test_an_original_read_as_written_gets_the_generators_probabilities_exactly(month_rows):
    ours = _probabilities(month_rows, [r["reading"] for r in month_rows])
    generators = event_probabilities(
        segment=np.array([r["segment"] for r in month_rows]), defect=np.array([r["defect"] for r in month_rows]),
        incentive_stated=np.array([r["incentive_stated"] for r in month_rows]),
        has_urgency=np.array([r["has_urgency"] for r in month_rows]),
        has_emoji=np.array([r["has_emoji"] for r in month_rows]),
        has_product=np.array([r["product_name"] is not None for r in month_rows]),
        has_voucher=np.array([r["voucher"] is not None for r in month_rows]))
    assert np.array_equal(ours, generators)


# --- identical text, identical response -------------------------------------------------------------
def test_identical_text_gets_identical_probabilities_and_zero_score_difference(month_rows):
    again = [_read(r, "".join(list(r["title"])), "".join(list(r["body"]))) for r in month_rows]  # fresh strings
    assert again == [r["reading"] for r in month_rows]
    p_original = _probabilities(month_rows, [r["reading"] for r in month_rows])
    p_rewrite = _probabilities(month_rows, again)
    assert np.array_equal(p_original, p_rewrite)
    assert np.all(world.expected_score(p_rewrite) - world.expected_score(p_original) == 0.0)


# --- what a rewrite gains or loses --------------------------------------------------------------------
VOUCHERS = {
    "en": VoucherFacts("fixed_amount_off", 5.0, 30.0, None, "MYR", date(2025, 4, 24)),
    "ms": VoucherFacts("percentage_off", 15.0, None, 10.0, "MYR", date(2025, 5, 3)),
    "id": VoucherFacts("fixed_amount_off", 10000.0, 50000.0, None, "IDR", date(2025, 4, 19)),
}
PRODUCT = "Hydrating Serum"


def _compose(seed: int, segment: str, language: str, defect: str, voucher: VoucherFacts | None,
             urgency: bool = True, product: str | None = PRODUCT):
    return compose_template(random.Random(seed), segment=segment, language=language, defect=defect, voucher=voucher,
                            product=product, emoji=False, urgency=urgency)


def _judge(segment: str, language: str, voucher: VoucherFacts | None, *texts: tuple[str, str],
           product: str | None = PRODUCT) -> tuple[list[world.WorldReading], np.ndarray]:
    readings = [world.read_message(t, b, segment=segment, language=language, voucher=voucher, product=product)
                for t, b in texts]
    n = len(texts)
    return readings, world.response_probabilities(readings, [segment] * n, [product is not None] * n,
                                                  [voucher is not None] * n)


@pytest.mark.parametrize("language", ["en", "ms", "id"])
@pytest.mark.parametrize("defect", DEFECTS)
def test_a_fix_composed_from_the_same_facts_reads_fixed_and_scores_higher(defect, language):
    """The same facts and seed with defect "none": the defect's phrase is gone and what it lacked is supplied."""
    for k, segment in enumerate(SEGMENT_KEYS):
        for voucher in (VOUCHERS[language], None):
            seed = 1000 * k + DEFECTS.index(defect)
            broken, fixed = (_compose(seed, segment, language, d, voucher) for d in (defect, "none"))
            readings, p = _judge(segment, language, voucher, (broken.title, broken.body), (fixed.title, fixed.body))
            case = (segment, voucher is not None, broken.body, fixed.body)
            assert readings[0].defects == {defect}, (case, readings[0])
            assert readings[1].defects == frozenset(), (case, readings[1])
            score = world.expected_score(p)
            assert score[1] > score[0], (case, score)


def _good(language: str = "en", segment: str = "abandoned_cart_buyers", urgency: bool = True):
    return _compose(5, segment, language, "none", VOUCHERS[language], urgency=urgency)


@pytest.mark.parametrize("language", ["en", "ms", "id"])
def test_dropping_the_product_name_costs_product_clicks_only(language):
    t = _good(language)
    assert PRODUCT in t.body
    body = t.body.replace(PRODUCT, "it")
    (named, unnamed), p = _judge("abandoned_cart_buyers", language, VOUCHERS[language], (t.title, t.body),
                                 (t.title, body))
    assert named.product_named and not unnamed.product_named
    assert p[1, 2] == pytest.approx(p[0, 2] * world.PRODUCT_NOT_NAMED) and p[1, 2] < p[0, 2]
    assert np.array_equal(p[0, [0, 1, 3, 4]], p[1, [0, 1, 3, 4]])
    # the product's last word is enough: "Serum"
    (last_word,), _ = _judge("abandoned_cart_buyers", language, VOUCHERS[language],
                             (t.title, t.body.replace(PRODUCT, "Serum")))
    assert last_word.product_named


@pytest.mark.parametrize("language", ["en", "ms", "id"])
def test_removing_the_voucher_value_costs_store_clicks(language):
    t = _good(language)
    long, short = incentive_phrases(VOUCHERS[language], language)
    assert long in t.body
    title, body = t.title.replace(f"{short}: ", ""), t.body.replace(long, "a voucher")
    (stated, unstated), p = _judge("abandoned_cart_buyers", language, VOUCHERS[language], (t.title, t.body),
                                   (title, body))
    assert stated.incentive_stated and not unstated.incentive_stated
    assert "vague_incentive" in unstated.defects  # a bound voucher left unstated is the vague-incentive fault
    assert p[1, 1] < p[0, 1]
    assert world.expected_score(p)[1] < world.expected_score(p)[0]


@pytest.mark.parametrize("language", ["en", "ms", "id"])
def test_a_body_400_characters_longer_costs_reads_only(language):
    t = _good(language)
    filler = " Our team packs every parcel with great care." * 10
    (short, long), p = _judge("abandoned_cart_buyers", language, VOUCHERS[language], (t.title, t.body),
                              (t.title, t.body + filler[:400]))
    assert long.length == short.length + 400 and long.defects == short.defects == frozenset()
    assert p[1, 0] < p[0, 0]
    assert p[1, 0] == pytest.approx(p[0, 0] * world.length_factor(long.length))
    assert np.array_equal(p[0, 1:], p[1, 1:])


@pytest.mark.parametrize("language", ["en", "ms", "id"])
def test_removing_the_urgency_line_removes_the_urgency_lift(language):
    t = _good(language)
    expiry = format_expiry(VOUCHERS[language].expires_on, language)
    line = next(s for s in re.split(r"(?<=[.!])\s", t.body) if expiry in s)
    (urgent, calm), p = _judge("abandoned_cart_buyers", language, VOUCHERS[language], (t.title, t.body),
                               (t.title, t.body.replace(line + " ", "")))
    assert urgent.has_urgency and not calm.has_urgency and calm.defects == frozenset()
    assert np.allclose(p[0, 1:4], p[1, 1:4] * 1.15) and p[0, 0] == p[1, 0]


def test_a_deadline_the_voucher_does_not_back_is_no_urgency():
    t = _good("en")
    expiry = format_expiry(VOUCHERS["en"].expires_on, "en")
    (wrong,), _ = _judge("abandoned_cart_buyers", "en", VOUCHERS["en"], (t.title, t.body.replace(expiry, "9 Jun")))
    assert not wrong.has_urgency
    (no_voucher,), _ = _judge("abandoned_cart_buyers", "en", None, ("Hurry!", "Ends 24 Apr. Shop now!"))
    assert not no_voucher.has_urgency


def test_several_defects_cost_more_than_the_worst_alone():
    v = VOUCHERS["en"]
    casual = ("Your cart is waiting",
              "OMG bestie!!! you NEED this rn Enjoy RM5 off when you spend RM30. Check out now!")
    both = (casual[0], casual[1].replace("Check out now!", "Hope you like it."))
    weak = (casual[0], "You left something in your cart. Enjoy RM5 off when you spend RM30. Hope you like it.")
    readings, p = _judge("abandoned_cart_buyers", "en", v, casual, both, weak)
    assert [r.defects for r in readings] == [{"misaligned_tone"}, {"misaligned_tone", "weak_call_to_action"},
                                             {"weak_call_to_action"}]
    score = world.expected_score(p)
    assert score[1] < min(score[0], score[2])


# --- rewrites that do not reuse the bank's phrases ----------------------------------------------------
RM5 = VOUCHERS["en"]
RP10K = VOUCHERS["id"]
SHIP = VoucherFacts("free_shipping", 0.0, 150000.0, None, "IDR", date(2025, 5, 7))
PCT = VoucherFacts("percentage_off", 10.0, None, 20.0, "MYR", date(2025, 4, 12))
REWRITES = [
    # (language, segment, voucher, title, body, defects, incentive_stated, has_cta, has_urgency)
    ("en", "abandoned_cart_buyers", RM5, "🛒 RM5 off your Serum",
     "Your Hydrating Serum is still in your cart. Check out by 24 Apr and save RM 5 on orders over RM30!",
     set(), True, True, True),
    ("en", "abandoned_cart_buyers", RM5, "Your cart is waiting",
     "Check out the Hydrating Serum. Enjoy RM5 off when you spend RM30. Hope you like it.",
     {"weak_call_to_action"}, True, False, False),
    ("en", "abandoned_cart_buyers", RM5, "Your cart is waiting",
     "Your serum is waiting. Get RM50 off today, ends 15 May. Tap to check out.",
     {"vague_incentive"}, False, True, False),
    ("en", "lapsing_buyers", RM5, "We saved something for you",
     "New arrivals since your last visit. We have a little something for you.",
     {"vague_incentive", "weak_call_to_action"}, False, False, False),
    ("en", "potential_new_customers", PCT, "Hi there!",
     "We missed you! Take 10 % off (max RM20) on our Hydrating Serum. Shop now, offer ends 12 April.",
     {"audience_assumption_error"}, True, True, True),
    ("en", "frequent_buyers", PCT, "A treat for you", "Dear valued customer, enjoy 10% off. Shop now!",
     {"misaligned_tone"}, True, True, False),
    ("en", "price_drop", None, "Price drop", "The Hydrating Serum is cheaper now. Grab the Hydrating Serum now.",
     set(), False, True, False),
    ("ms", "abandoned_cart_buyers", RM5, "Troli anda menunggu",
     "Serum anda masih dalam troli. Jom checkout sebelum 24 Apr dan jimat RM 5!", set(), True, True, True),
    ("ms", "new_buyers", RM5, "Pilih kegemaran baharu anda",
     "Tawaran istimewa untuk pesanan pertama anda. Beli sekarang!", {"irrelevant_offer"}, False, True, False),
    ("id", "unpaid_order_buyers", RP10K, "Pesananmu menunggu 💳",
     "Serum kamu belum dibayar. Yuk bayar sekarang dan hemat Rp 10rb, berlaku sampai 19 Apr!",
     set(), True, True, True),
    ("id", "price_drop", SHIP, "Harga turun!",
     "Hydrating Serum sekarang lebih murah, plus gratis ongkir min. belanja Rp150.000. Buruan checkout!",
     set(), True, True, True),
    ("id", "new_followers", SHIP, "Halo!",
     "Selamat datang kembali, teman lama! Cek koleksi kami. Ada promo spesial buat kamu. Klik sekarang wkwk",
     {"audience_assumption_error", "misaligned_tone", "vague_incentive"}, False, True, False),
]


@pytest.mark.parametrize("case", REWRITES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(REWRITES)])
def test_free_written_rewrites_are_read_by_cues_not_only_bank_phrases(case):
    language, segment, voucher, title, body, defects, stated, cta, urgency = case
    r = world.read_message(title, body, segment=segment, language=language, voucher=voucher, product=PRODUCT)
    assert (set(r.defects), r.incentive_stated, r.has_cta, r.has_urgency) == (defects, stated, cta, urgency)


def test_a_slot_sentence_closing_the_message_is_its_call_to_action():
    """Mid-text, "Grab the X now." is the generator's product line; closing the message, the reader acts on it."""
    opener, line, close = "Your cart is still saved.", f"Grab the {PRODUCT} now.", "Hope you like it."
    for body, has_cta in ((f"{opener} {line} {close}", False), (f"{opener} {line}", True),
                          (f"{line} {opener}", False)):
        (r,), _ = _judge("abandoned_cart_buyers", "en", None, ("Your cart is waiting", body))
        assert r.has_cta == has_cta, body


# --- the expected score ------------------------------------------------------------------------------
def test_expected_score_is_the_mean_of_the_generators_event_process():
    rng = np.random.default_rng(3)
    p = np.array([[0.30, 0.33, 0.26, 0.10, 0.005], [0.10, 0.05, 0.0, 0.03, 0.03], [0.9, 0.9, 0.8, 0.7, 0.2]])
    weights = np.array([EVENT_WEIGHTS[e] for e in EVENT_TYPES], dtype=float)
    keep, n = 0.97, 1_000_000
    for row, expected in zip(p, world.expected_score(p, keep)):
        u = rng.random((n, 5))
        read = u[:, 0] < row[0]
        fired = np.column_stack([read, *(read & (u[:, j] < row[j]) for j in (1, 2, 3)), u[:, 4] < row[4]])
        kept = fired & (rng.random((n, 5)) < keep)
        score = kept @ weights
        assert abs(score.mean() - expected) < 4 * score.std() / np.sqrt(n) + 1e-12, (row, score.mean(), expected)
    assert np.allclose(world.expected_score(p, 0.5), world.expected_score(p) * 0.5)


# --- the world is not the auditor -------------------------------------------------------------------
def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names += [module] + [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_the_world_does_not_import_the_agents_directly_or_through_what_it_imports():
    seen, todo, offenders = set(), ["crmagent_dagster.synthetic.world"], []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        for name in _imports(path):
            if name == "crmagent_dagster.agents" or name.startswith("crmagent_dagster.agents."):
                offenders.append(f"{module}: {name}")
            elif name.startswith("crmagent_dagster."):
                todo.append(name)
    assert "crmagent_dagster.synthetic.world" in seen and "crmagent_dagster.vocabulary" in seen
    assert not offenders, offenders
