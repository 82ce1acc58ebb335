"""The rule-based auditor: at most one Appendix D error type per message, or "none".

The sheet is for marketing copy, so only messages of a marketing kind (an offer, an announcement: `kinds`) are
audited against it; a reminder, a confirmation, an advisory or a warning gets "none" with a note that its
purpose is kept. "none" is a normal answer: a message with no error stands out as none, and is not rewritten.

Rules are checked from the most to the least harmful, and the first that fires is the label,
with feedback that says what was found:
  audience_assumption_error > irrelevant_offer > misaligned_tone > vague_incentive > weak_call_to_action.
A message that already asks for an action (a call to action, a keyword to text, a code to dial, a link) has a
call to action, even when the phrase lists do not know its wording.

Beside the label, two flags the paper's sheet lacks, for what a template sent to a whole segment must not
carry: personal data (a person's name, an account or order number, a personal code or phone) and a stale
offer (a deadline before the send date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from crmagent_dagster.agents.text_features import (
    BOUGHT_OFTEN,
    HAVE_BOUGHT,
    KNOW_THE_SHOP,
    PURCHASE_PENDING,
    UNFAMILIAR,
    TextFeatures,
    exhorts,
    features,
    last_sentence,
)
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.agents.terms import Reading
from crmagent_dagster.lexicon import lexicon
from crmagent_dagster.segments import SEGMENT_BY_KEY

PERSONAL_LABELS = {"person_name": "a person's name", "account_number": "an account or card number",
                   "order_number": "an order or booking number", "personal_code": "a personal code",
                   "personal_phone": "a personal phone number"}


@dataclass(frozen=True)
class AuditResult:
    error_type: str  # one of the five, or "none"
    feedback: str
    flags: tuple[str, ...] = ()  # "personal_data", "stale_offer"
    flag_details: tuple[str, ...] = ()  # one sentence per flag


def audit(segment: str, title: str, body: str, language: str | None, has_voucher: bool,
          reading: Reading | None = None, acts: bool = False) -> AuditResult:
    """The wording audit of one text, whatever its kind (`audit_message` gates it by kind)."""
    result = audit_features(segment, features(title, body, language), has_voucher, acts)
    if reading is None:
        return result
    flags, details = flag(reading)
    return AuditResult(result.error_type, result.feedback, flags, details)


def audit_message(facts: OfferFacts, title: str | None = None, body: str | None = None) -> AuditResult:
    """The audit of a message (its original, or a rewrite of it when `title`/`body` are given), by its kind: only
    marketing copy is held to the Appendix D sheet."""
    title = facts.title if title is None else title
    body = facts.body if body is None else body
    reading = facts.reading if (title, body) == (facts.title, facts.body) else facts.read(title, body)
    flags, details = flag(reading)
    if not facts.kind.marketing:
        return AuditResult("none", f"A {facts.kind.label}, not marketing copy: no Appendix D label, and no sales call "
                                   "to action. Its purpose is kept; it is checked for personal data, passed dates and "
                                   f"clarity only. Read as such from {'; '.join(facts.kind.evidence)}.", flags, details)
    acts = has_action(reading) or exhorts(last_sentence(body), facts.lang)
    stated = facts.stated_offer if (title, body) == (facts.title, facts.body) else facts.benefits(reading)
    # "plus an extra surprise at checkout" beside a price: the voucher's value is what the promise hides
    vague = facts.voucher is not None and not stated and promises_vaguely(f"{title}\n{body}", facts.lang)
    result = audit_features(facts.segment, features(title, body, facts.lang), facts.voucher is not None, acts, vague)
    return AuditResult(result.error_type, result.feedback, flags, details)


def has_action(reading: Reading) -> bool:
    """The text asks for an action a reader can take: a keyword to text, a code to dial, a link to open."""
    return any(t.kind in ("keyword", "url") or (t.kind == "phone" and t.text.startswith(("*", "#")))
               for t in reading.kept_terms)


def flag(reading: Reading) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Personal data and stale deadlines in a template meant for a whole segment."""
    flags, details = [], []
    if reading.personal:
        flags.append("personal_data")
        found = ", ".join(f"{PERSONAL_LABELS[p.kind]} ('{p.text}')" for p in reading.personal)
        details.append(f"Holds personal data meant for one person: {found}. A template for a whole segment must "
                       "not; use your CRM tool's placeholder instead.")
    if reading.stale:
        flags.append("stale_offer")
        when = reading.as_of.isoformat() if isinstance(reading.as_of, date) else "the send date"
        found = ", ".join(f"'{t.text}'" for t in dict.fromkeys(reading.stale))
        details.append(f"States a deadline that has passed by {when}: {found}. Set a new one before sending.")
    return tuple(flags), tuple(details)


def promises_vaguely(text: str, lang: str) -> bool:
    """A vague promise ("a little something", "pasabog", "ưu đãi đặc biệt") from the language's table."""
    words = (*lexicon(lang).rewrite.get("vague", ()), *lexicon(lang).rewrite.get("vague_hint", ()))
    if lexicon(lang).unspaced:
        return any(w.lower() in text.lower() for w in words)
    return any(re.search(rf"(?<![\w-]){re.escape(w)}(?:-\w+)?(?![\w-])", text, re.I) for w in words)


def audit_features(segment: str, f: TextFeatures, has_voucher: bool, acts: bool = False,
                   vague_promise: bool = False) -> AuditResult:
    """`acts`: the text asks for an action the phrase lists may not know ("Dial *143#", "Ketik YA ke 919").
    `vague_promise`: a vague promise where the voucher's value is not stated, though a price may be."""
    label = SEGMENT_BY_KEY[segment].label
    if segment in UNFAMILIAR and f.prior_relationship:
        return AuditResult("audience_assumption_error",
                           f"Implies a past relationship ('missed you', 'welcome back') that {label} do not have; "
                           "welcome them and lead with the value instead.")
    if segment == "potential_new_customers" and f.following:
        return AuditResult("audience_assumption_error",
                           f"Thanks {label} for following, but they do not follow the shop; welcome them instead.")
    if segment in KNOW_THE_SHOP and f.treats_as_new:
        return AuditResult("audience_assumption_error",
                           f"Treats {label} as strangers although they already know the shop; acknowledge them.")
    if segment in PURCHASE_PENDING and f.purchase_done:
        return AuditResult("audience_assumption_error",
                           f"Thanks {label} for a purchase they have not completed; remind them what is waiting.")
    if (segment in HAVE_BOUGHT and f.first_order) or (segment in BOUGHT_OFTEN and f.first_mention):
        return AuditResult("irrelevant_offer",
                           f"Offers a first-order deal to {label}, who have ordered before; frame it for their next order.")
    if (segment in UNFAMILIAR or segment in PURCHASE_PENDING) and f.loyalty:
        return AuditResult("irrelevant_offer",
                           f"Offers a loyalty perk to {label}, who are not regulars; offer what gets them to buy now.")
    if f.casual or f.formal or f.shouting:
        style = "overly casual" if (f.casual or f.shouting) else "stiff and formal"
        return AuditResult("misaligned_tone",
                           f"The tone is {style} for {label}; write friendly, direct copy that matches their familiarity.")
    if ((f.mentions_promo or has_voucher) and not f.concrete_value) or vague_promise:
        what = "mentions a promotion" if f.mentions_promo else "has a voucher"
        return AuditResult("vague_incentive",
                           f"The message {what} but never says what it is; state the discount, minimum spend or "
                           "free shipping exactly.")
    if (not f.has_cta and not acts) or f.weak_close:
        return AuditResult("weak_call_to_action",
                           "No clear, urgent prompt to act; end with an imperative tied to the benefit and, if there "
                           "is one, the real deadline.")
    return AuditResult("none", "No Appendix D error found.")
