"""Offer-fact, language and length guardrails for rewrites, whatever wrote them.

A rewrite may state only what its template's facts support: the voucher (type, value, minimum
spend, cap, currency, code, expiry), the bound product and its categories, and the original text.
Amounts are compared as numbers after normalising ("RM3" = "RM 3.00" = "3 ringgit", "Rp15.000" =
15000), so wording may change but facts may not. Every check returns a verdict and a reason.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from crmagent_dagster.agents.text_features import _hit, supported_language

CURRENCY_WORDS = {
    "rm": "MYR", "ringgit": "MYR", "myr": "MYR", "rp": "IDR", "rupiah": "IDR", "idr": "IDR", "s$": "SGD",
    "sgd": "SGD", "₱": "PHP", "php": "PHP", "peso": "PHP", "pesos": "PHP", "$": "USD", "usd": "USD", "us$": "USD",
}
_NUM = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_AMOUNT_BEFORE = re.compile(r"(?i)(?<![\w$])(us\$|s\$|rm|rp|₱|\$|myr|idr|sgd|php|usd)\s?(" + _NUM + ")")
_AMOUNT_AFTER = re.compile(r"(?i)(" + _NUM + r")\s?(ringgit|rupiah|pesos?|myr|idr|sgd|php|usd)\b")
_PERCENT = re.compile(r"(?i)(" + _NUM + r")\s?(%|percent|persen|peratus)")
_NUMBER = re.compile(_NUM)
_CODE = re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,}\b")
MONTHS = {m: i for i, names in enumerate([
    ("jan", "january", "januari"), ("feb", "february", "februari"), ("mar", "march", "mac", "maret"),
    ("apr", "april"), ("may", "mei"), ("jun", "june", "juni"), ("jul", "july", "julai", "juli"),
    ("aug", "august", "ogo", "ogos", "agu", "agustus"), ("sep", "sept", "september"),
    ("oct", "october", "okt", "oktober"), ("nov", "november"), ("dec", "december", "dis", "disember", "des", "desember"),
], 1) for m in names}
_DAY_MONTH = re.compile(r"(?i)\b(\d{1,2})\s+(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b")
_MONTH_DAY = re.compile(r"(?i)\b(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\s+(\d{1,2})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/\d{2,4})?\b")
# Length limits per channel (title, body), in characters; configurable per deployment.
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {"push": (65, 240), "im": (90, 500), "email": (120, 2000)}
SIMILAR_LANGUAGES = frozenset({"ms", "id"})  # the detector confuses them on short copy


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


def to_number(text: str) -> float:
    """'15.000' (Indonesian thousands) -> 15000; '3.00' -> 3; '1,500' -> 1500; '12,5' -> 12.5."""
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", text):
        return float(text.replace(".", ""))
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def amounts(text: str) -> list[tuple[str, float]]:
    found = [(CURRENCY_WORDS[c.lower()], to_number(n)) for c, n in _AMOUNT_BEFORE.findall(text)]
    found += [(CURRENCY_WORDS[c.lower()], to_number(n)) for n, c in _AMOUNT_AFTER.findall(text)]
    return found


def dates(text: str, year: int) -> list[date]:
    out = []
    for d, m in _DAY_MONTH.findall(text):
        out.append((year, MONTHS[m.lower()], int(d)))
    for m, d in _MONTH_DAY.findall(text):
        out.append((year, MONTHS[m.lower()], int(d)))
    for y, m, d in _ISO_DATE.findall(text):
        out.append((int(y), int(m), int(d)))
    for d, m in _SLASH_DATE.findall(text):
        out.append((year, int(m), int(d)))
    valid = []
    for y, m, d in out:
        try:
            valid.append(date(y, m, d))
        except ValueError:
            valid.append(date(1, 1, 1))  # an impossible date is never supported
    return valid


def _expiry(facts: dict[str, Any]) -> date | None:
    value = facts.get("expires_at")
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def supported_values(facts: dict[str, Any], original_amounts: list[tuple[str, float]],
                     original: str) -> tuple[set[float], set[float]]:
    """(money values, percentages) the facts and the original text support."""
    money = {v for _, v in original_amounts}
    percents = {to_number(n) for n, _ in _PERCENT.findall(original)}
    for key in ("discount_value", "min_spend", "max_discount"):
        if facts.get(key) is not None:
            money.add(float(facts[key]))
    if facts.get("voucher_type") == "percentage_off" and facts.get("discount_value") is not None:
        percents.add(float(facts["discount_value"]))
    return money, percents


def _category_terms(facts: dict[str, Any]) -> set[str]:
    return {str(facts[k]).lower() for k in ("product_name", "category_l1", "category_l2", "category_l3") if facts.get(k)}


@lru_cache(maxsize=1)
def _detector():
    import py3langid

    py3langid.set_languages(["en", "ms", "id"])
    return py3langid


def detect_language(text: str) -> str:
    return _detector().classify(text)[0]


def check_rewrite(title: str, body: str, facts: dict[str, Any], vocabulary: frozenset[str] = frozenset(),
                  channel: str = "push", limits: dict[str, tuple[int, int]] | None = None) -> list[Check]:
    """Every guardrail verdict for one rewrite. `facts` is a core.labelled_templates row (original included)."""
    text = f"{title}\n{body}"
    original = f"{facts.get('title') or ''}\n{facts.get('body') or ''}"
    text_amounts, original_amounts = amounts(text), amounts(original)  # parsed once, used by several checks
    original_currencies = {c for c, _ in original_amounts}
    money, percents = supported_values(facts, original_amounts, original)
    currency = facts.get("currency")
    expiry = _expiry(facts)
    checks: list[Check] = []

    bad_money = [f"{c} {v:g}" for c, v in text_amounts
                 if v not in money or (currency and c not in (currency, "USD") and c not in original_currencies)]
    checks.append(Check("amounts_supported", not bad_money,
                        f"unsupported amount(s): {', '.join(bad_money)}" if bad_money else "every amount is a voucher fact"))
    bad_pct = [f"{to_number(n):g}%" for n, _ in _PERCENT.findall(text) if to_number(n) not in percents]
    checks.append(Check("percentages_supported", not bad_pct,
                        f"unsupported percentage(s): {', '.join(bad_pct)}" if bad_pct else "every percentage is a voucher fact"))
    allowed_codes = set(_CODE.findall(original)) | ({facts["voucher_code"]} if facts.get("voucher_code") else set())
    allowed_codes |= {re.sub(r"\s", "", a) for a in _CODE.findall(str(facts.get("product_name") or ""))}
    bad_codes = [c for c in _CODE.findall(text) if c not in allowed_codes and not _AMOUNT_BEFORE.fullmatch(c)]
    checks.append(Check("codes_supported", not bad_codes,
                        f"unknown promo code(s): {', '.join(bad_codes)}" if bad_codes else "no invented code"))
    year = expiry.year if expiry else datetime.now().year
    allowed_dates = set(dates(original, year)) | ({expiry} if expiry else set())
    bad_dates = [d.isoformat() for d in dates(text, year) if d not in allowed_dates]
    checks.append(Check("dates_supported", not bad_dates,
                        f"date(s) not the voucher's expiry: {', '.join(bad_dates)}" if bad_dates else "no invented date"))

    lang = supported_language(facts.get("language"))
    has_voucher = bool(facts.get("voucher_type"))
    claims_free_shipping = _hit(lang, "free_shipping", text)
    original_free_shipping = _hit(lang, "free_shipping", original)
    invented = []
    if claims_free_shipping and facts.get("voucher_type") != "free_shipping" and not original_free_shipping:
        invented.append("free shipping")
    if (text_amounts or _PERCENT.search(text)) and not has_voucher and not (original_amounts or _PERCENT.search(original)):
        invented.append("a discount")
    checks.append(Check("incentive_supported", not invented,
                        f"offers {', '.join(invented)} that neither the voucher nor the original has" if invented
                        else "no incentive beyond the voucher and the original"))
    urgent = _hit(lang, "urgency", text) and not _hit(lang, "urgency", original)
    checks.append(Check("urgency_supported", not urgent or expiry is not None,
                        "urgency wording without a real expiry" if urgent and expiry is None else "urgency backed by expiry or absent"))
    bound = _category_terms(facts)
    lowered, original_lower = text.lower(), original.lower()
    foreign = sorted(t for t in vocabulary if t not in bound and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", lowered)
                     and t not in original_lower and not any(t in b for b in bound))
    checks.append(Check("products_bound", not foreign,
                        f"mentions product(s) not bound to the plan: {', '.join(foreign)}" if foreign
                        else "mentions only the bound product"))

    expected = supported_language(facts.get("language"))
    got = detect_language(text)
    same = got == expected or {got, expected} <= SIMILAR_LANGUAGES
    checks.append(Check("language_kept", same, f"written in {got}, the original is {expected}" if not same
                        else f"in {expected}"))
    max_title, max_body = (limits or DEFAULT_LIMITS).get(channel, DEFAULT_LIMITS["push"])
    problems = [f"title {len(title)} > {max_title}"] * (len(title) > max_title)
    problems += [f"body {len(body)} > {max_body}"] * (len(body) > max_body)
    problems += ["empty title or body"] * (not title.strip() or not body.strip())
    checks.append(Check("length_ok", not problems, ", ".join(problems) or f"within {channel} limits"))
    return checks


def passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def feedback(checks: list[Check]) -> str:
    """What to tell a writer whose rewrite broke the rules."""
    return "; ".join(f"{c.name}: {c.reason}" for c in checks if not c.passed)


def as_records(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
