"""Compose one CRM template (title + body) from facts, a language and at most one defect.

Every number in the text comes from the voucher facts, so later stages can check
rewrites against the same facts. The returned features are what the engagement
model reads, so a template written later (a rewrite) can be simulated the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from crmagent_dagster.segments import SEGMENT_BY_KEY
from crmagent_dagster.synthetic.copy_bank import BANKS
from crmagent_dagster.vocabulary import (
    EMOJI_BY_INTENT,
    INTENT_OF_SEGMENT,
    VoucherFacts,
    format_expiry,
    incentive_phrases,
)


@dataclass(frozen=True)
class ComposedTemplate:
    title: str
    body: str
    incentive_stated: bool
    has_cta: bool
    has_urgency: bool
    has_emoji: bool


def compose_template(
    rng: random.Random,
    *,
    segment: str,
    language: str,
    defect: str,
    voucher: VoucherFacts | None,
    product: str | None,
    emoji: bool,
    urgency: bool,
) -> ComposedTemplate:
    bank = BANKS[language]
    intent = INTENT_OF_SEGMENT[segment]
    familiar = SEGMENT_BY_KEY[segment].familiar

    hooks = [h for h in bank["hooks"][intent] if product or "{product}" not in h]
    title = rng.choice(hooks).format(product=product or "")
    opener = rng.choice(bank["openers"][intent])
    product_line = rng.choice(bank["product_line"]).format(product=product) if product else None
    incentive_line = None
    short = None
    if voucher is not None:
        long, short = incentive_phrases(voucher, language)
        incentive_line = rng.choice(bank["incentive"][voucher.voucher_type]).format(incentive=long)
    urgency_line = (
        rng.choice(bank["urgency"]).format(expiry=format_expiry(voucher.expires_on, language))
        if voucher is not None and urgency
        else None
    )
    cta = rng.choice(bank["cta_by_intent"].get(intent, bank["cta"]) if rng.random() < 0.6 else bank["cta"])

    # Each defect rewrites exactly the slot it is about.
    if defect == "weak_call_to_action":
        cta, urgency_line = rng.choice(bank["weak_close"]), None
    elif defect == "vague_incentive":
        incentive_line, urgency_line, short = rng.choice(bank["vague_incentive"]), None, None
    elif defect == "misaligned_tone":
        casual = rng.random() < 0.5
        opener = rng.choice(bank["tone_casual"] if casual else bank["tone_formal"])
        if casual:
            opener += " 😱😱😱" if emoji else "!!!"
    elif defect == "audience_assumption_error":
        # Strangers get "we missed you"; mid-purchase audiences get thanked for a purchase they
        # have not made; other known customers get treated as strangers.
        key = "assume_known" if not familiar else "assume_purchased" if intent in ("cart", "unpaid") else "assume_new"
        opener = rng.choice(bank[key])
    elif defect == "irrelevant_offer":
        # A first-order deal to people who have ordered; a regulars' perk to anyone who is not a regular.
        first_order = familiar and intent not in ("cart", "unpaid")
        incentive_line = rng.choice(bank["offer_first_order"] if first_order else bank["offer_loyalty"])
        short = None

    if short and rng.random() < 0.35:
        title = f"{short}: {title}"
    parts = [p for p in (opener, product_line, incentive_line, urgency_line, cta) if p]
    body = " ".join(parts)
    if emoji:
        mark = rng.choice(EMOJI_BY_INTENT[intent])
        title = f"{mark} {title}"
        if rng.random() < 0.5:
            body = f"{body} {rng.choice(EMOJI_BY_INTENT[intent])}"
    return ComposedTemplate(
        title=title,
        body=body,
        incentive_stated=voucher is not None and defect not in ("vague_incentive", "irrelevant_offer"),
        has_cta=defect != "weak_call_to_action",
        has_urgency=urgency_line is not None,
        has_emoji=emoji,
    )
