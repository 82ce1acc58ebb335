"""What the rule engine reads in a message: phrase lists per language and segment knowledge.

Each list is lower-case and matched on word boundaries against title + body. The auditor, the
statistical ContentAgent and the rubric judge all read these features, so they agree with
each other about what a message says.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from crmagent_dagster.segments import SEGMENT_BY_KEY

LANGUAGES = ("en", "ms", "id")

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "cta": ("shop now", "buy now", "order now", "check out", "checkout", "tap to", "grab", "claim", "pay now",
                "complete your", "complete payment", "get yours", "add to cart", "redeem", "use code", "book now",
                "order today",
                "shop today", "buy today", "grab yours", "start shopping", "see the deal", "confirm your order"),
        "weak_close": ("whenever you like", "just letting you know", "hope you like it", "take a look sometime",
                       "let us know what you think", "if you want", "no rush"),
        "promo": ("offer", "deal", "deals", "promotion", "promo", "discount", "sale", "savings", "reward", "gift",
                  "voucher", "something special", "special"),
        "urgency": ("ends", "until", "today only", "last chance", "hurry", "limited time", "expires", "before it's gone",
                    "before they're gone", "tonight", "while stocks last", "don't miss"),
        "prior_relationship": ("missed you", "miss you", "welcome back", "been a while", "since your last",
                               "last saw you", "old friend", "all these years", "again"),
        "treats_as_new": ("new here", "never shopped", "first time", "introduce ourselves", "get to know us"),
        "purchase_done": ("thanks for your purchase", "thank you for your purchase", "thanks for your order",
                          "thank you for your order"),
        "first_order": ("for your first order", "on your first order", "first-order", "first purchase?", "new-user",
                        "new user", "starter deal", "welcome gift"),
        "loyalty": ("loyalty", "regulars", "vip", "long-time", "reorder", "usual favourites", "usual favorites",
                    "members-only"),
        "casual": ("omg", "bestie", "lol", "bruh", "yo!!", "rn", "heyyy", "cutie", "insane!!!", "ghost us"),
        "formal": ("hereby", "kindly be advised", "pursuant", "dear valued customer", "we wish to inform"),
        "free_shipping": ("free shipping", "free delivery"),
    },
    "ms": {
        "cta": ("beli sekarang", "tekan untuk", "dapatkan", "checkout sekarang", "bayar sekarang", "tebus",
                "guna kod", "pesan sekarang", "lengkapkan"),
        "weak_close": ("bila-bila masa", "sekadar makluman", "harap anda suka", "kalau mahu"),
        "promo": ("tawaran", "promosi", "diskaun", "potongan", "jualan", "hadiah", "ganjaran", "baucar", "istimewa"),
        "urgency": ("tamat", "sehingga", "cepat", "hari ini sahaja", "peluang terakhir", "jangan terlepas"),
        "prior_relationship": ("rindu anda", "selamat kembali", "sudah lama", "kawan lama", "lawatan terakhir"),
        "treats_as_new": ("baru di sini", "belum pernah", "perkenalkan diri", "kali pertama"),
        "purchase_done": ("terima kasih atas pembelian", "terima kasih atas pesanan"),
        "first_order": ("untuk pesanan pertama", "pengguna baharu", "pembelian pertama"),
        "loyalty": ("kesetiaan", "pelanggan tetap", "vip", "ahli"),
        "casual": ("omg", "geng", "korang", "weh", "lol"),
        "formal": ("dengan segala hormatnya", "sukacita dimaklumkan", "pelanggan yang dihormati"),
        "free_shipping": ("penghantaran percuma",),
    },
    "id": {
        "cta": ("belanja sekarang", "klik untuk", "ambil sekarang", "checkout sekarang", "bayar sekarang", "klaim",
                "pakai kode", "pesan sekarang", "selesaikan"),
        "weak_close": ("lihat-lihat saja", "sekadar info", "semoga suka", "kalau mau"),
        "promo": ("penawaran", "promo", "diskon", "potongan", "hadiah", "voucher", "keuntungan", "spesial"),
        "urgency": ("berakhir", "sampai", "buruan", "hari ini saja", "kesempatan terakhir", "jangan sampai"),
        "prior_relationship": ("kangen kamu", "selamat datang kembali", "sudah lama", "teman lama",
                               "kunjungan terakhir"),
        "treats_as_new": ("baru di sini", "belum pernah", "kenalan dulu", "pertama kali"),
        "purchase_done": ("terima kasih atas pembelian", "terima kasih atas pesanan"),
        "first_order": ("untuk pesanan pertama", "untuk pesanan pertamamu", "pengguna baru", "pembelian pertama",
                        "pembelian pertamamu"),
        "loyalty": ("loyalitas", "pelanggan tetap", "vip", "member"),
        "casual": ("omg", "sis", "woy", "wkwk", "lol"),
        "formal": ("yang terhormat", "dengan ini kami sampaikan", "bersama ini kami beritahukan"),
        "free_shipping": ("gratis ongkir",),
    },
}

# A concrete value: a percentage, a currency amount, or free shipping (checked separately).
_VALUE = re.compile(r"(\d+(?:[.,]\d+)?\s?%|(?:rm|rp|s\$|₱|\$|php|myr|idr|sgd)\s?\d|\d+\s?(?:ringgit|rupiah|peso))", re.I)
_ISO_AMOUNT = re.compile(r"\b[A-Z]{3}\s?\d")  # any ISO 4217 code before a number, e.g. "XYZ 5"
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u23F0-\u23FA]")
_PATTERNS: dict[str, dict[str, re.Pattern]] = {
    lang: {name: re.compile(r"(?<![\w])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w])", re.I)
           for name, phrases in lists.items()}
    for lang, lists in PHRASES.items()
}
UNFAMILIAR = frozenset(k for k, s in SEGMENT_BY_KEY.items() if not s.familiar)
PURCHASE_PENDING = frozenset({"abandoned_cart_buyers", "unpaid_order_buyers"})
# Segments for whom a first-order offer is irrelevant: they have bought before.
HAVE_BOUGHT = frozenset({"new_buyers", "lapsing_buyers", "post_purchase", "frequent_buyers", "repeat_buyers",
                         "active_old_followers"})


@dataclass(frozen=True)
class TextFeatures:
    language: str
    has_cta: bool
    weak_close: bool
    mentions_promo: bool
    concrete_value: bool
    has_urgency: bool
    prior_relationship: bool
    treats_as_new: bool
    purchase_done: bool
    first_order: bool
    loyalty: bool
    casual: bool
    formal: bool
    emoji_count: int
    exclamations: int
    shouting: bool
    length: int

    def as_dict(self) -> dict:
        return asdict(self)


def supported_language(language: str | None) -> str:
    return language if language in LANGUAGES else "en"


def _hit(lang: str, name: str, text: str) -> bool:
    return bool(_PATTERNS[lang][name].search(text)) or (lang != "en" and bool(_PATTERNS["en"][name].search(text)))


def features(title: str, body: str, language: str | None) -> TextFeatures:
    """Features of one message; English lists also apply to ms/id copy, which often mixes in English."""
    lang = supported_language(language)
    text = f"{title or ''}\n{body or ''}"
    words = re.findall(r"[A-Za-z]{4,}", text)
    return TextFeatures(
        language=lang,
        has_cta=_hit(lang, "cta", text),
        weak_close=_hit(lang, "weak_close", text),
        mentions_promo=_hit(lang, "promo", text),
        concrete_value=bool(_VALUE.search(text) or _ISO_AMOUNT.search(text)) or _hit(lang, "free_shipping", text),
        has_urgency=_hit(lang, "urgency", text),
        prior_relationship=_hit(lang, "prior_relationship", text),
        treats_as_new=_hit(lang, "treats_as_new", text),
        purchase_done=_hit(lang, "purchase_done", text),
        first_order=_hit(lang, "first_order", text),
        loyalty=_hit(lang, "loyalty", text),
        casual=_hit(lang, "casual", text) or "!!!" in text,
        formal=_hit(lang, "formal", text),
        emoji_count=len(_EMOJI.findall(text)),
        exclamations=text.count("!"),
        shouting=sum(w.isupper() for w in words) >= 2,
        length=len(text),
    )
