"""Guardrails on every rewrite, whatever wrote it: keep the merchant's message, invent nothing, stay in its
language and channel.

Both sides are read by the same offer-term reader (`terms`), so "RM5" in the original and "RM 5.00" in a
rewrite are one term, and a voucher typed with currency "RM" supports "MYR 5". A rewrite must
- keep every term the original states (amounts, percentages with "up to", codes, dates, URLs, phones,
  placeholders, brand and product names), except deadlines that have passed;
- state nothing the original or the structured facts do not (amounts, percentages, codes, dates, links,
  numbers; free shipping or a discount where there is none); not restate a passed deadline; not add personal
  data; claim urgency only with a real deadline; name no product type the plan does not bind;
- be in the original's language (both detected from their text) and within the channel's length limits.
Every check returns a verdict and a reason a person (or an LLM asked again) can act on.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from crmagent_dagster.agents import language as languages
from crmagent_dagster.agents import terms
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.vocabulary import has

# Length limits per channel (title, body), in characters; configurable per deployment. SMS has no title of
# its own (40 leaves room for a sender prefix); its body is three concatenated GSM-7 parts (3 x 153), which is
# where long promotional SMS sit.
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {"push": (65, 240), "sms": (40, 459), "im": (90, 500), "email": (120, 2000)}
CHANNELS = tuple(DEFAULT_LIMITS)
# Which check a stated-but-unsupported term breaks, by kind.
_INVENTED_CHECK = {"amount": "amounts_supported", "percent": "percentages_supported", "code": "codes_supported",
                   "date": "dates_supported", "offer": "incentive_supported"}
_KIND_WORDS = {"amount": "amount", "percent": "percentage", "code": "code", "date": "date", "url": "link",
               "phone": "phone number", "number": "number", "time": "time", "offer": "offer", "name": "name",
               "placeholder": "placeholder", "duration": "duration", "quantity": "quantity"}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


def _list(items: list[terms.Term]) -> str:
    return ", ".join(f"{_KIND_WORDS[t.kind]} '{t.text}'" for t in dict.fromkeys(items))


def check_rewrite(title: str, body: str, facts: OfferFacts, vocabulary: frozenset[str] = frozenset(),
                  channel: str = "push", limits: dict[str, tuple[int, int]] | None = None) -> list[Check]:
    """Every guardrail verdict for one rewrite of `facts`' template."""
    text = f"{title}\n{body}"
    original = facts.reading
    rewrite = facts.read(title, body)
    checks: list[Check] = []

    lost = terms.missing(original, rewrite, text)
    checks.append(Check("terms_kept", not lost, f"drops what the original states: {_list(lost)}" if lost
                        else f"keeps all {len(original.kept_terms)} stated term(s)"))

    invented = terms.invented(rewrite, facts.allowed)
    by_check: dict[str, list[terms.Term]] = {}
    for t in invented:
        by_check.setdefault(_INVENTED_CHECK.get(t.kind, "other_terms_supported"), []).append(t)
    for name, what in (("amounts_supported", "amount"), ("percentages_supported", "percentage"),
                       ("codes_supported", "promo code"), ("dates_supported", "date"),
                       ("other_terms_supported", "link, phone, number or time")):
        bad = by_check.get(name, [])
        checks.append(Check(name, not bad, f"states {_list(bad)}, which neither the original nor the facts have"
                            if bad else f"no invented {what}"))

    stale_keys = {t.key for t in original.stale}
    restated = [t for t in rewrite.terms if t.key in stale_keys]
    checks.append(Check("no_stale_deadline", not restated,
                        f"restates a deadline that has passed: {_list(restated)}; a new date is needed" if restated
                        else "no passed deadline"))

    invented_offers = by_check.get("incentive_supported", [])
    had_value = bool(original.of_kind("amount", "percent")) or facts.voucher is not None
    discount = [t for t in rewrite.terms if t.kind in ("amount", "percent")] and not had_value
    problems = [f"offers {t.text}" for t in invented_offers] + (["offers a discount"] if discount else [])
    checks.append(Check("incentive_supported", not problems,
                        f"{'; '.join(problems)} that neither the voucher nor the original has" if problems
                        else "no incentive beyond the voucher and the original"))

    lang = facts.lang
    urgent = has(lang, "urgency", text) and not has(lang, "urgency", f"{facts.title}\n{facts.body}")
    backed = facts.expiry is not None or facts.deadline is not None
    checks.append(Check("urgency_supported", not urgent or backed,
                        "urgency wording without a real deadline" if urgent and not backed
                        else "urgency backed by a deadline or absent"))

    bound = {c.lower() for c in (facts.product_name, *facts.categories) if c}
    lowered, original_lower = text.lower(), f"{facts.title}\n{facts.body}".lower()
    foreign = sorted(t for t in vocabulary if t not in bound and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", lowered)
                     and t not in original_lower and not any(t in b for b in bound))
    checks.append(Check("products_bound", not foreign,
                        f"mentions product(s) not bound to the plan: {', '.join(foreign)}" if foreign
                        else "mentions only the bound product"))

    had = {p.text for p in original.personal}
    added = [p for p in rewrite.personal if p.text not in had]
    checks.append(Check("no_personal_data_added", not added,
                        "adds personal data: " + ", ".join(f"'{p.text}'" for p in added) if added
                        else "adds no personal data"))

    before = languages.detect(f"{facts.title}\n{facts.body}")
    after = languages.detect(text)
    same = languages.same(before, after)
    checks.append(Check("language_kept", same, f"written in {after}, the original is in {before}" if not same
                        else f"in {after}"))
    checks.append(length_check(title, body, channel, limits, title_required=bool(facts.title.strip())))
    return checks


def limits_for(channel: str, limits: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    table = limits or DEFAULT_LIMITS
    if channel not in table:
        raise ValueError(f"channel {channel!r} has no length limits; configured: {sorted(table)}")
    return table[channel]


def length_check(title: str, body: str, channel: str, limits: dict[str, tuple[int, int]] | None = None,
                 title_required: bool = True) -> Check:
    max_title, max_body = limits_for(channel, limits)
    problems = [f"title {len(title)} > {max_title}"] * (len(title) > max_title)
    problems += [f"body {len(body)} > {max_body}"] * (len(body) > max_body)
    problems += ["empty title"] * (title_required and not title.strip())
    problems += ["empty body"] * (not body.strip())
    return Check("length_ok", not problems, ", ".join(problems) or f"within {channel} limits ({max_title}/{max_body})")


def passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def feedback(checks: list[Check]) -> str:
    """What to tell a writer whose rewrite broke the rules."""
    return "; ".join(f"{c.name}: {c.reason}" for c in checks if not c.passed)


def as_records(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
