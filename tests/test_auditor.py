"""Each auditor rule on positive and negative examples, in each supported language, plus ground truth."""

from __future__ import annotations

import collections

import pytest

from crmagent_dagster.agents.auditor import audit
from crmagent_dagster.synthetic.month import generate_month

# (segment, language, title, body, has_voucher, expected)
CASES = [
    # audience assumption: a past relationship with strangers, strangers' treatment of known customers
    ("potential_new_customers", "en", "We missed you!", "It's been a while. Shop now for RM5 off.", True, "audience_assumption_error"),
    ("potential_new_customers", "ms", "Kami rindu anda", "Sudah lama tak jumpa. Beli sekarang, potongan RM5.", True, "audience_assumption_error"),
    ("new_followers", "id", "Kangen kamu!", "Selamat datang kembali. Belanja sekarang, diskon 10%.", True, "audience_assumption_error"),
    ("lapsing_buyers", "en", "It's been a while", "We missed you! Enjoy RM5 off. Shop now!", True, "none"),
    ("frequent_buyers", "en", "New here?", "Never shopped with us? Get 10% off. Shop now!", True, "audience_assumption_error"),
    ("abandoned_cart_buyers", "ms", "Terima kasih!", "Terima kasih atas pembelian anda. Potongan RM3. Checkout sekarang!", True, "audience_assumption_error"),
    # irrelevant offer
    ("repeat_buyers", "en", "Just for you", "Here's a special offer for your first order: 10% off. Shop now!", True, "irrelevant_offer"),
    ("repeat_buyers", "id", "Untukmu", "Penawaran spesial untuk pesanan pertamamu: diskon 10%. Belanja sekarang!", True, "irrelevant_offer"),
    ("new_buyers", "en", "Loved your first order?", "Get RM5 off your next one. Shop now!", True, "none"),
    ("potential_new_customers", "en", "VIP perks", "An exclusive loyalty reward for our regulars: RM5 off. Shop now!", True, "irrelevant_offer"),
    ("potential_new_customers", "ms", "Selamat datang", "Nikmati potongan RM5 untuk pesanan pertama. Beli sekarang!", True, "none"),
    # misaligned tone
    ("post_purchase", "en", "OMG bestie!!!", "you NEED this rn. Get RM5 off. Shop now!", True, "misaligned_tone"),
    ("post_purchase", "en", "Notice", "Dear Valued Customer, we hereby inform you of RM5 off. Shop now!", True, "misaligned_tone"),
    ("post_purchase", "ms", "Notis", "Pelanggan Yang Dihormati, sukacita dimaklumkan potongan RM5. Beli sekarang!", True, "misaligned_tone"),
    ("post_purchase", "id", "Info", "Yang Terhormat Pelanggan, diskon 10% untukmu. Belanja sekarang!", True, "misaligned_tone"),
    ("post_purchase", "en", "Thanks for your order!", "Complete the look with RM5 off. Shop now!", True, "none"),
    # vague incentive
    ("price_drop", "en", "Price drop alert!", "We have a special offer for you! Shop now!", True, "vague_incentive"),
    ("price_drop", "ms", "Harga turun", "Ada tawaran istimewa untuk anda! Beli sekarang!", True, "vague_incentive"),
    ("price_drop", "id", "Harga turun", "Promo menarik menunggumu. Belanja sekarang!", True, "vague_incentive"),
    ("price_drop", "en", "Price drop alert!", "Now 15% off with free shipping. Shop now!", True, "none"),
    ("price_drop", "id", "Harga turun", "Dapatkan gratis ongkir. Belanja sekarang!", True, "none"),
    # weak call to action
    ("abandoned_cart_buyers", "en", "Your cart", "You left something in your cart. Just letting you know.", False, "weak_call_to_action"),
    ("abandoned_cart_buyers", "ms", "Troli anda", "Anda tertinggal sesuatu dalam troli. Sekadar makluman.", False, "weak_call_to_action"),
    ("abandoned_cart_buyers", "id", "Keranjangmu", "Ada barang yang tertinggal di keranjangmu.", False, "weak_call_to_action"),
    ("abandoned_cart_buyers", "id", "Keranjangmu", "Ada barang yang tertinggal di keranjangmu. Checkout sekarang!", False, "none"),
    ("unpaid_order_buyers", "en", "Don't lose your order", "Your order is reserved. Complete payment now!", False, "none"),
]


@pytest.mark.parametrize("segment,language,title,body,voucher,expected", CASES)
def test_auditor_rule(segment, language, title, body, voucher, expected):
    assert audit(segment, title, body, language, voucher).error_type == expected


def test_feedback_says_what_was_found():
    result = audit("potential_new_customers", "We missed you!", "Shop now", "en", False)
    assert "past relationship" in result.feedback and "Potential New Customers" in result.feedback


def test_auditor_agrees_with_the_generators_ground_truth():
    month = generate_month("2025-04", 150_000, seed=21)
    plans = month.tables["plans"].unique("template_id", keep="first").select("template_id", "segment", "voucher_id")
    rows = month.tables["templates"].join(plans, on="template_id").join(month.template_truth, on="template_id")
    hits = collections.Counter()
    for r in rows.iter_rows(named=True):
        got = audit(r["segment"], r["title"], r["body"], r["language"], r["voucher_id"] is not None).error_type
        hits[got == r["defect"]] += 1
    assert hits[True] / sum(hits.values()) > 0.95
