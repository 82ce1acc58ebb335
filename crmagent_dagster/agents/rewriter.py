"""The rule-based TemplateAgent: rewrite a weak template from its own facts only.

Nothing is invented: every number, amount, code and date in a rewrite comes from the template's
voucher (value, minimum spend, cap, code, expiry) or product, or from the original text. Paths 1-2
borrow the *structure* of an exemplar (incentive in the title, emoji, urgency, brevity), never its
facts; path 3 uses segment-appropriate framing. The original's language is kept (en, ms, id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from crmagent_dagster.agents.text_features import _EMOJI, features, supported_language
from crmagent_dagster.synthetic.compose import VoucherFacts, format_expiry, incentive_phrases
from crmagent_dagster.synthetic.copy_bank import INTENT_OF_SEGMENT

FRAMES: dict[str, dict[str, object]] = {
    "en": {
        "title": {"acquire": "Welcome! Discover our bestsellers", "second_order": "Your next favourite is here",
                  "winback": "New picks are waiting for you", "cart": "Your cart is waiting",
                  "unpaid": "Complete your order", "after": "Goes perfectly with your order",
                  "price": "Price drop on your pick", "loyal": "Thank you for shopping with us"},
        "opener": {"acquire": "Discover the picks shoppers love.", "second_order": "Find your next favourite.",
                   "winback": "See what's new since your last visit.", "cart": "The items you picked are still in your cart.",
                   "unpaid": "Your order is reserved but not paid yet.", "after": "Make the most of your purchase.",
                   "price": "An item you viewed now costs less.", "loyal": "Thank you for shopping with us."},
        "product": "{product} is ready for you.",
        "incentive": "Get {incentive}.",
        "code": "Use code {code}.",
        "urgency": "Ends {expiry}.",
        "cta": {"cart": "Check out now!", "unpaid": "Pay now to confirm your order!", "default": "Shop now!"},
        "joiner": ": ",
    },
    "ms": {
        "title": {"acquire": "Selamat datang! Terokai produk terlaris", "second_order": "Kegemaran seterusnya di sini",
                  "winback": "Pilihan baharu menanti anda", "cart": "Troli anda sedang menunggu",
                  "unpaid": "Lengkapkan pesanan anda", "after": "Padan dengan pesanan anda",
                  "price": "Harga turun untuk pilihan anda", "loyal": "Terima kasih kerana membeli-belah"},
        "opener": {"acquire": "Terokai pilihan kegemaran pembeli.", "second_order": "Cari kegemaran seterusnya.",
                   "winback": "Lihat yang baharu sejak lawatan terakhir.", "cart": "Barang pilihan anda masih dalam troli.",
                   "unpaid": "Pesanan anda ditempah tetapi belum dibayar.", "after": "Manfaatkan pembelian anda.",
                   "price": "Barang yang anda lihat kini lebih murah.", "loyal": "Terima kasih kerana membeli-belah dengan kami."},
        "product": "{product} sedia untuk anda.",
        "incentive": "Dapatkan {incentive}.",
        "code": "Guna kod {code}.",
        "urgency": "Tamat {expiry}.",
        "cta": {"cart": "Checkout sekarang!", "unpaid": "Bayar sekarang untuk sahkan pesanan!", "default": "Beli sekarang!"},
        "joiner": ": ",
    },
    "id": {
        "title": {"acquire": "Selamat datang! Temukan produk terlaris", "second_order": "Favorit berikutnya di sini",
                  "winback": "Pilihan baru menunggumu", "cart": "Keranjangmu menunggu",
                  "unpaid": "Selesaikan pesananmu", "after": "Cocok dengan pesananmu",
                  "price": "Harga turun untuk pilihanmu", "loyal": "Terima kasih sudah belanja"},
        "opener": {"acquire": "Temukan pilihan favorit pembeli.", "second_order": "Temukan favorit berikutnya.",
                   "winback": "Lihat yang baru sejak kunjungan terakhirmu.", "cart": "Barang pilihanmu masih di keranjang.",
                   "unpaid": "Pesananmu sudah dibuat tapi belum dibayar.", "after": "Maksimalkan pembelianmu.",
                   "price": "Barang yang kamu lihat sekarang lebih murah.", "loyal": "Terima kasih sudah belanja di toko kami."},
        "product": "{product} siap untukmu.",
        "incentive": "Dapatkan {incentive}.",
        "code": "Pakai kode {code}.",
        "urgency": "Berakhir {expiry}.",
        "cta": {"cart": "Checkout sekarang!", "unpaid": "Bayar sekarang untuk konfirmasi pesanan!", "default": "Belanja sekarang!"},
        "joiner": ": ",
    },
}
EMOJI = {"acquire": "✨", "second_order": "🛍️", "winback": "🎁", "cart": "🛒", "unpaid": "⏰", "after": "📦",
         "price": "📉", "loyal": "💎"}


@dataclass(frozen=True)
class Facts:
    """What a template may talk about."""

    segment: str
    language: str | None
    title: str
    body: str
    product_name: str | None = None
    voucher: VoucherFacts | None = None
    voucher_code: str | None = None


@dataclass(frozen=True)
class Style:
    """Structure borrowed from an exemplar (paths 1-2); defaults are path 3's framing."""

    incentive_in_title: bool = True
    emoji: bool = False
    urgency: bool = True
    brief: bool = False

    @classmethod
    def of(cls, title: str, body: str, language: str | None) -> "Style":
        f = features(title, body, language)
        title_f = features(title, "", language)
        return cls(incentive_in_title=title_f.concrete_value, emoji=f.emoji_count > 0, urgency=f.has_urgency,
                   brief=len(body) < 90)


@dataclass
class RuleRewrite:
    title: str
    body: str
    language: str
    changes: list[str] = field(default_factory=list)


def rewrite(facts: Facts, style: Style | None = None, fixes: str | None = None) -> RuleRewrite:
    """Compose a rewrite from the facts, in the original's language, with the exemplar's structure."""
    lang = supported_language(facts.language)
    frame = FRAMES[lang]
    intent = INTENT_OF_SEGMENT[facts.segment]
    style = style or Style(emoji=bool(_EMOJI.search(facts.title + facts.body)))
    changes = [f"framed for {facts.segment.replace('_', ' ')}"]
    if lang != (facts.language or "en"):
        changes.append(f"language {facts.language!r} unsupported: wrote {lang}")

    title = frame["title"][intent]
    parts: list[str] = []
    if not style.brief:
        parts.append(frame["opener"][intent])
    if facts.product_name:
        parts.append(frame["product"].format(product=facts.product_name))
    if facts.voucher is not None:
        long, short = incentive_phrases(facts.voucher, lang)
        parts.append(frame["incentive"].format(incentive=long))
        changes.append("states the voucher's exact value")
        if style.incentive_in_title:
            title = f"{short}{frame['joiner']}{title}"
        if facts.voucher_code:
            parts.append(frame["code"].format(code=facts.voucher_code))
        if style.urgency and facts.voucher.expires_on is not None:
            parts.append(frame["urgency"].format(expiry=format_expiry(facts.voucher.expires_on, lang)))
            changes.append("urgency from the real expiry")
    parts.append(frame["cta"].get(intent, frame["cta"]["default"]))
    changes.append("imperative call to action")
    if style.emoji:
        title = f"{EMOJI[intent]} {title}"
    if fixes and fixes != "none":
        changes.append(f"fixes {fixes}")
    return RuleRewrite(title=title, body=" ".join(parts), language=lang, changes=changes)


def voucher_facts(voucher_type: str | None, discount_value, min_spend, max_discount, currency: str | None,
                  expires_at) -> VoucherFacts | None:
    """VoucherFacts from staged columns (None when the template has no voucher)."""
    if not voucher_type:
        return None
    expires = expires_at.date() if isinstance(expires_at, datetime) else expires_at
    return VoucherFacts(voucher_type, float(discount_value or 0), None if min_spend is None else float(min_spend),
                        None if max_discount is None else float(max_discount), currency or "", expires)
