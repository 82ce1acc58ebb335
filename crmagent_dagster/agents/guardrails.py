"""Guardrails on every rewrite, whatever wrote it: keep the merchant's message, invent nothing, stay in its
language and channel.

Both sides are read by the same offer-term reader (`terms`), so "RM5" in the original and "RM 5.00" in a
rewrite are one term, and a voucher typed with currency "RM" supports "MYR 5". A rewrite must
- keep every term the original states (amounts, percentages with "up to", codes, dates, URLs, phones,
  placeholders, brand and product names), except deadlines that have passed;
- state nothing the original or the structured facts do not (amounts, percentages, codes, dates, links,
  numbers; free shipping or a discount where there is none); not restate a passed deadline; not add personal
  data; claim urgency only with a real deadline; name no product type the plan does not bind;
- give no number or date a new meaning: a credit limit's 80% is not a discount, a price is not a saving, a
  travel day is not a deadline (`roles_kept`);
- be in the original's language (both detected from their text; Indonesian keeps Indonesian words, Malay Malay
  ones) and within the channel's length limits; an SMS stays within as many parts as the original had and has
  no title.
Every check returns a verdict and a reason a person (or an LLM asked again) can act on.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from crmagent_dagster.agents import language as languages
from crmagent_dagster.agents import terms
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.lexicon import lexicon
from crmagent_dagster.vocabulary import has, hits

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

    moved = new_meanings(original, rewrite)
    checks.append(Check("roles_kept", not moved, "gives " + "; ".join(moved) if moved
                        else "every number and date keeps its meaning"))

    lang = facts.lang
    urgent = has(lang, "urgency", text) and not has(lang, "urgency", f"{facts.title}\n{facts.body}")
    backed = facts.expiry is not None or facts.deadline is not None
    said = sorted({m.group() for m in hits(lang, "urgency", text)}
                  - {m.group() for m in hits(lang, "urgency", f"{facts.title}\n{facts.body}")})
    checks.append(Check("urgency_supported", not urgent or backed,
                        "urgency wording without a real deadline: " + ", ".join(f"'{w}'" for w in said)
                        if urgent and not backed else "urgency backed by a deadline or absent"))

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

    checks.append(language_check(facts, text))
    checks.append(sentences_check(facts, title, body))
    checks.append(length_check(title, body, channel, limits, title_required=bool(facts.title.strip()),
                               original=(facts.title, facts.body)))
    return checks


def _token(word: str) -> str:
    return word.casefold().strip("\"'“”‘’()[]")


def broken_sentences(original: str, rewrite: str, lang: str) -> list[str]:
    """Where an edit broke a sentence the original had whole: a clause that now ends on a word that cannot end one
    ("...off until."), or an article that lost the words after it ("We have a waiting for you"). Only what the
    edit made: a text the original already had is not counted."""
    lex = lexicon(lang).rewrite
    dangling = {w.casefold() for w in (*lex.get("never_ends", ()), *lexicon("en").rewrite.get("never_ends", ()))}
    articles = {w.casefold() for w in (*lex.get("articles", ()), *lexicon("en").rewrite.get("articles", ()))}
    before, after = original.split(), rewrite.split()
    had = {w.casefold() for w in before}
    found = []
    for i, word in enumerate(after):
        bare = word.rstrip(".!?,;:")
        # an acronym is a name, not a function word ("Glow Lab MY!", "Promo OR.")
        if word[-1:] in ".!?,;:" and _token(bare) in dangling and not (len(bare) > 1 and bare.isupper()) \
                and word.casefold() not in had:
            found.append(f"'{' '.join(after[max(0, i - 3):i + 1])}' ends on '{bare}'")
    ops = difflib.SequenceMatcher(None, [_token(w) for w in before], [_token(w) for w in after],
                                  autojunk=False).get_opcodes()
    for k, (op, i1, i2, j1, _) in enumerate(ops):
        if op != "delete" or i2 - i1 < 2 or not 0 < k < len(ops) - 1:
            continue
        # the word now after the article is one no article takes ("a waiting", "the for"): "the brand new shoes" ->
        # "the shoes" lost words too, and is whole
        right = _token(after[j1].rstrip(".!?,;:")) if j1 < len(after) else ""
        if ops[k - 1][0] == "equal" and ops[k + 1][0] == "equal" and _token(after[j1 - 1]) in articles \
                and after[j1 - 1][-1:].isalpha() and (right in dangling or right.endswith("ing")):
            found.append(f"'{' '.join(after[max(0, j1 - 3):j1 + 2])}': '{after[j1 - 1]}' lost "
                         f"'{' '.join(before[i1:i2])}'")
    return found


def sentences_check(facts: OfferFacts, title: str, body: str) -> Check:
    broken = [b for old, new in ((facts.title, title), (facts.body, body))
              for b in broken_sentences(old or "", new or "", facts.lang)]
    return Check("sentences_whole", not broken, "leaves a broken sentence: " + "; ".join(broken) if broken
                 else "no sentence left broken")


def language_check(facts: OfferFacts, text: str) -> Check:
    """Same language as the original; for Malay and Indonesian (one group to the detector), none of the other's
    own words that the original does not use ("percuma" in an Indonesian message, "gratis ongkir" in a Malay one)."""
    before = languages.detect(f"{facts.title}\n{facts.body}")
    after = languages.detect(text)
    if not languages.same(before, after):
        return Check("language_kept", False, f"written in {after}, the original is in {before}")
    if facts.lang in languages.SIMILAR:
        other = "ms" if facts.lang == "id" else "id"
        slipped = sorted(languages.distinctive_words(other, text) - languages.distinctive_words(other, f"{facts.title}\n{facts.body}"))
        if slipped:
            return Check("language_kept", False, f"uses {languages.LANGUAGE_NAMES[other]} words in a "
                                                 f"{languages.LANGUAGE_NAMES[facts.lang]} message: {', '.join(slipped)}")
    return Check("language_kept", True, f"in {after}")


_BENEFIT_FAMILY = {"benefit"}
_OTHER_NUMBER_ROLES = {"threshold", "price", "cap", "account"}


def new_meanings(original: terms.Reading, rewrite: terms.Reading) -> list[str]:
    """Numbers and dates the rewrite states with another role than the original's: a limit or a price turned into a
    discount, a discount into a threshold, a travel or event day into a deadline."""
    roles: dict[str, set[str]] = {}
    for t in original.terms:
        if t.role:
            roles.setdefault(t.key, set()).add(t.role)
    out = []
    for t in rewrite.terms:
        was = roles.get(t.key)
        if not was or not t.role or t.role in was:
            continue
        if t.kind in ("amount", "percent") and (
                (t.role in _BENEFIT_FAMILY and was <= _OTHER_NUMBER_ROLES)
                or (t.role in _OTHER_NUMBER_ROLES - {"cap"} and was <= _BENEFIT_FAMILY)):
            out.append(f"'{t.text}' a new meaning: it is {'/'.join(sorted(was))} in the original, {t.role} here")
        elif t.kind == "date" and t.deadline and was <= {"travel", "event", "start", "record"}:
            out.append(f"'{t.text}' a new meaning: a {'/'.join(sorted(was))} day in the original, a deadline here")
    return out


def limits_for(channel: str, limits: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    table = limits or DEFAULT_LIMITS
    if channel not in table:
        raise ValueError(f"channel {channel!r} has no length limits; configured: {sorted(table)}")
    return table[channel]


def length_check(title: str, body: str, channel: str, limits: dict[str, tuple[int, int]] | None = None,
                 title_required: bool = True, original: tuple[str, str] | None = None) -> Check:
    """Within the channel's limits. An SMS has no title of its own (it keeps the original's, usually none) and
    stays within as many parts as the original (one part at least: 160 GSM-7 or 70 UCS-2 characters)."""
    max_title, max_body = limits_for(channel, limits)
    if channel == "sms" and original is not None:  # a long SMS may stay as long as it was, in as many parts
        max_body = max(max_body, sms_capacity(original[1]))
    title_required = title_required and channel != "sms"
    problems = [f"title {len(title)} > {max_title}"] * (len(title) > max_title)
    problems += [f"body {len(body)} > {max_body}"] * (len(body) > max_body)
    problems += ["empty title"] * (title_required and not title.strip())
    problems += ["empty body"] * (not body.strip())
    if channel == "sms" and original is not None:
        allowed = max(1, sms_parts(original[1]))
        if sms_parts(body) > allowed:
            problems.append(f"body takes {sms_parts(body)} SMS part(s), the original {allowed}")
        if title.strip() and title.strip() != original[0].strip():
            problems.append("an SMS has no title")
    return Check("length_ok", not problems, ", ".join(problems) or f"within {channel} limits ({max_title}/{max_body})")


# GSM 03.38: the characters one 7-bit SMS unit carries (the extension table's take two); any other character
# sends the whole message as UCS-2.
_GSM7 = frozenset("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def sms_encoding(text: str) -> tuple[int, int, int]:
    """(units, one-part capacity, per-part capacity of a multipart message) of an SMS body."""
    if all(c in _GSM7 or c in _GSM7_EXTENSION for c in text):
        return sum(2 if c in _GSM7_EXTENSION else 1 for c in text), 160, 153
    return len(text.encode("utf-16-le")) // 2, 70, 67


def sms_parts(text: str) -> int:
    units, single, multi = sms_encoding(text)
    return 0 if units == 0 else 1 if units <= single else math.ceil(units / multi)


def sms_capacity(original_body: str) -> int:
    """How many characters a rewrite of this SMS may use: as many parts as the original (at least one), in the
    original's encoding."""
    parts = max(1, sms_parts(original_body))
    _, single, multi = sms_encoding(original_body)
    return single if parts == 1 else multi * parts


def passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def feedback(checks: list[Check]) -> str:
    """What to tell a writer whose rewrite broke the rules."""
    return "; ".join(f"{c.name}: {c.reason}" for c in checks if not c.passed)


def as_records(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
