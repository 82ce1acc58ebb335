"""One normalization of currencies as merchants write them: "RM", "₱", "P", "Php", "Rp", "S$", "฿", "đ" -> ISO 4217.

It serves the text side (amounts read from a message), the facts side (a voucher's `currency` field, in
landing files and in `crmagent rewrite` input) and every guardrail, so "RM 5" in a text and a voucher typed
with currency "RM" are the same money. Symbols come from the CLDR data that babel ships; the aliases CLDR
lacks (the bare "P" of Philippine copy, "S$", "VNĐ", currency words) are listed here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from babel.numbers import get_currency_symbol

# The markets the platform serves, with the locales whose CLDR symbols merchants there use.
MARKET_LOCALES: dict[str, tuple[str, ...]] = {
    "MYR": ("ms_MY", "en_MY"), "PHP": ("fil_PH", "en_PH"), "IDR": ("id_ID",), "SGD": ("en_SG",),
    "THB": ("th_TH",), "VND": ("vi_VN",), "USD": ("en_US", "en_SG"),
}
# What CLDR does not list: merchant shorthands and the currency words used after a number.
EXTRA_ALIASES: dict[str, str] = {
    "ringgit": "MYR", "p": "PHP", "php": "PHP", "peso": "PHP", "pesos": "PHP", "piso": "PHP", "rp": "IDR",
    "rp.": "IDR", "rupiah": "IDR", "s$": "SGD", "sg$": "SGD", "baht": "THB", "บาท": "THB", "đ": "VND", "vnđ": "VND",
    "đồng": "VND", "dong": "VND", "us$": "USD",
}
# Where a bare "$" is written, the market's own dollar is meant.
DOLLARS = frozenset({"SGD", "USD"})
_ISO = re.compile(r"^[A-Z]{3}$")


class UnknownCurrency(ValueError):
    """A currency that is neither an alias we know nor a well-formed ISO 4217 code."""


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Lower-cased alias -> ISO code, from CLDR symbols of each market plus EXTRA_ALIASES."""
    table: dict[str, str] = {}
    for code, locales in MARKET_LOCALES.items():
        table[code.lower()] = code
        for locale in locales:
            symbol = get_currency_symbol(code, locale=locale)
            if symbol != "$":  # ambiguous: resolved by the market (see `code_of`)
                table.setdefault(symbol.lower(), code)
    table.update(EXTRA_ALIASES)
    return table


def code_of(written: str | None, market: str | None = None) -> str | None:
    """ISO code of a currency as written ("RM" -> "MYR", "$" -> the market's dollar), or None if unknown."""
    if written is None:
        return None
    text = written.strip()
    if not text:
        return None
    if text == "$":
        return market if market in DOLLARS else "USD"
    found = aliases().get(text.lower())
    if found:
        return found
    return text.upper() if _ISO.match(text.upper()) and text.isalpha() else None


def normalize_field(written: str | None) -> str | None:
    """A voucher's `currency` field: alias or ISO code -> ISO code; anything else is an error naming the value."""
    if written is None or not str(written).strip():
        return None
    code = code_of(str(written))
    if code is None:
        raise UnknownCurrency(f"unknown currency {written!r}: use an ISO 4217 code (MYR, PHP, IDR, ...) or a "
                              f"known symbol ({', '.join(sorted(k for k in aliases() if not k.isalpha()))})")
    return code


def alias_lists() -> tuple[list[str], list[str]]:
    """(upper-cased aliases, their codes) for SQL, which binds them as two lists."""
    items = sorted(aliases().items())
    return [a.upper() for a, _ in items], [c for _, c in items]
