"""The shared vocabulary of CRM copy: what a segment is for, how an offer is stated, the phrases that mark
a call to action, urgency, a wrong assumption about the reader or a tone.

The agents read messages with it and the synthetic generator (`synthetic/`) writes with it; the agents
never import the generator. The per-language lists (phrases, voucher formats, month names) are data, one file
per language under `crmagent_dagster/lexicons/`; this module serves them. Phrase lists are lower-case; `hits`
matches them on word boundaries, except in languages written without spaces (Thai).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from crmagent_dagster.lexicon import lexicons

# segment -> campaign intent: what a message to that audience is for.
INTENT_OF_SEGMENT: dict[str, str] = {
    "potential_new_customers": "acquire",
    "new_followers": "acquire",
    "new_buyers": "second_order",
    "lapsing_buyers": "winback",
    "abandoned_cart_buyers": "cart",
    "unpaid_order_buyers": "unpaid",
    "post_purchase": "after",
    "price_drop": "price",
    "active_old_followers": "loyal",
    "frequent_buyers": "loyal",
    "repeat_buyers": "loyal",
}
EMOJI_BY_INTENT: dict[str, tuple[str, ...]] = {
    "acquire": ("✨", "🎉", "👋", "🛍️"),
    "second_order": ("🛍️", "🎁", "✨"),
    "winback": ("💌", "🎁", "👀"),
    "cart": ("🛒", "⏰", "👀"),
    "unpaid": ("⏰", "💳", "📦"),
    "after": ("📦", "💝", "⭐"),
    "price": ("📉", "🔥", "💸"),
    "loyal": ("💎", "🎁", "🙌"),
}
_LEXICONS = lexicons()
MONTH_ABBR: dict[str, list[str]] = {c: list(x.month_abbr) for c, x in _LEXICONS.items() if x.month_abbr}
# How each language states a voucher: {v} percent, {a} amount, {m} minimum spend, {c} cap.
INCENTIVE_FORMATS: dict[str, dict[str, str]] = {c: x.incentive for c, x in _LEXICONS.items() if x.incentive}
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {c: x.phrases for c, x in _LEXICONS.items() if x.phrases}
UNSPACED = frozenset(c for c, x in _LEXICONS.items() if x.unspaced)  # no spaces between words: match anywhere


def _compile(lang: str, phrases: tuple[str, ...]) -> re.Pattern:
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    if lang in UNSPACED:
        return re.compile(f"({body})", re.I)
    return re.compile(rf"(?<![\w])({body})(?![\w])", re.I)


PATTERNS: dict[str, dict[str, re.Pattern]] = {
    lang: {name: _compile(lang, phrases) for name, phrases in lists.items()} for lang, lists in PHRASES.items()
}


def phrase_language(language: str | None) -> str:
    """The phrase table for a language; languages without one read with the English lists."""
    return language if language in PHRASES else "en"


def hits(language: str | None, name: str, text: str) -> list[re.Match]:
    """Matches of one phrase list in a text; English lists also apply, since Asian copy mixes in English."""
    lang = phrase_language(language)
    found = list(PATTERNS[lang][name].finditer(text)) if name in PATTERNS[lang] else []
    if lang != "en":
        found += [m for m in PATTERNS["en"][name].finditer(text)
                  if not any(m.start() < f.end() and f.start() < m.end() for f in found)]
    return found


THANKS = re.compile(r"(?i)thank|terima kasih|makasih|salamat|cảm ơn|ขอบคุณ")


def offers_first_order(language: str | None, text: str) -> bool:
    """A first-order phrase outside a thank-you: "your first order" in an offer, not "thanks for your first order"."""
    for m in hits(language, "first_order", text):
        left = max(text.rfind(c, 0, m.start()) for c in ".!?\n") + 1
        if not THANKS.search(text[left:m.start()]):
            return True
    return False


def has(language: str | None, name: str, text: str) -> bool:
    lang = phrase_language(language)
    own = PATTERNS[lang].get(name)
    return bool(own and own.search(text)) or (lang != "en" and bool(PATTERNS["en"][name].search(text)))


# --- stating an offer ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VoucherFacts:
    voucher_type: str  # percentage_off | fixed_amount_off | free_shipping
    value: float  # percent for percentage_off, currency amount for fixed_amount_off, 0 for free shipping
    min_spend: float | None
    max_discount: float | None
    currency: str  # ISO 4217
    expires_on: date | None


def format_amount(amount: float, currency: str) -> str:
    """Market-style money: RM5, S$3, ₱150, Rp10.000, ฿99, 50.000đ."""
    whole = amount == int(amount)
    if currency in ("IDR", "VND"):
        digits = f"{int(round(amount)):,}".replace(",", ".")
        return f"Rp{digits}" if currency == "IDR" else f"{digits}đ"
    if currency == "PHP":
        return "₱" + (f"{int(amount):,}" if whole else f"{amount:,.2f}")
    prefix = {"MYR": "RM", "SGD": "S$", "THB": "฿", "USD": "US$"}.get(currency, currency + " ")
    return prefix + (f"{int(amount)}" if whole else f"{amount:.2f}")


def incentive_phrases(v: VoucherFacts, language: str) -> tuple[str, str]:
    """(long phrase, short title phrase) stating exactly what the voucher gives."""
    fmt = INCENTIVE_FORMATS[language if language in INCENTIVE_FORMATS else "en"]
    money = lambda x: format_amount(x, v.currency)  # noqa: E731
    if v.voucher_type == "percentage_off":
        pct = f"{v.value:g}"
        if v.max_discount:
            long = fmt["pct_cap"].format(v=pct, c=money(v.max_discount))
        elif v.min_spend:
            long = fmt["pct_min"].format(v=pct, m=money(v.min_spend))
        else:
            long = fmt["pct"].format(v=pct)
        return long, fmt["short_pct"].format(v=pct)
    if v.voucher_type == "fixed_amount_off":
        a = money(v.value)
        long = fmt["fixed_min"].format(a=a, m=money(v.min_spend)) if v.min_spend else fmt["fixed"].format(a=a)
        return long, fmt["short_fixed"].format(a=a)
    long = fmt["ship_min"].format(m=money(v.min_spend)) if v.min_spend else fmt["ship"]
    return long, fmt["short_ship"]


def format_expiry(d: date, language: str) -> str:
    if language == "vi":
        return f"{d.day}/{d.month}"
    months = MONTH_ABBR.get(language, MONTH_ABBR["en"])
    return f"{d.day} {months[d.month - 1]}"
