"""What the rule engine reads in a message: the shared phrase lists per language and segment knowledge.

The phrase lists live in `crmagent_dagster.vocabulary`. Whether a message states a concrete value is read by
the offer-term reader (`terms.states_value`), the same one the guardrails use, so "RM 5", "P25K" and "ส่งฟรี"
count however they are written. The auditor, the statistical ContentAgent and the rubric judge all read these
features, so they agree with each other about what a message says.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from crmagent_dagster.agents import language as languages
from crmagent_dagster.agents.terms import states_value
from crmagent_dagster.lexicon import lexicon
from crmagent_dagster.segments import SEGMENT_BY_KEY
from crmagent_dagster.vocabulary import has, offers_first_order

_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u23F0-\u23FA]")
_WORDS = re.compile(r"[^\W\d_]{4,}")
UNFAMILIAR = frozenset(k for k, s in SEGMENT_BY_KEY.items() if not s.familiar)
PURCHASE_PENDING = frozenset({"abandoned_cart_buyers", "unpaid_order_buyers"})
# Segments for whom a first-order offer is irrelevant: they have bought before.
HAVE_BOUGHT = frozenset({"new_buyers", "lapsing_buyers", "post_purchase", "frequent_buyers", "repeat_buyers",
                         "active_old_followers"})
# Segments who know the shop: being treated as strangers misreads them. New buyers have just made their first
# purchase, so "thanks for buying with us for the first time" fits them.
KNOW_THE_SHOP = frozenset(k for k in SEGMENT_BY_KEY if k not in UNFAMILIAR and k != "new_buyers")
# Segments who have bought many times: even mentioning "your first order" misreads them.
BOUGHT_OFTEN = frozenset({"frequent_buyers", "repeat_buyers", "active_old_followers"})


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
    following: bool = False
    first_mention: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def features(title: str, body: str, language: str | None) -> TextFeatures:
    """Features of one message, in its declared language or the one detected from its text."""
    text = f"{title or ''}\n{body or ''}"
    lang = languages.of_message(title, body, language)
    words = [w for w in _WORDS.findall(text) if w.isascii()]
    return TextFeatures(
        language=lang,
        has_cta=has(lang, "cta", text),
        weak_close=has(lang, "weak_close", text),
        mentions_promo=has(lang, "promo", text),
        concrete_value=states_value(text),
        has_urgency=has(lang, "urgency", text),
        prior_relationship=has(lang, "prior_relationship", text),
        treats_as_new=has(lang, "treats_as_new", text),
        purchase_done=has(lang, "purchase_done", text),
        first_order=offers_first_order(lang, text),
        loyalty=has(lang, "loyalty", text),
        casual=has(lang, "casual", text) or bool(re.search(r"!{3,}|\?{3,}", text)),
        formal=has(lang, "formal", text),
        emoji_count=len(_EMOJI.findall(text)),
        exclamations=text.count("!"),
        shouting=sum(w.isupper() for w in words) >= 2 and sum(w.isupper() for w in words) >= 0.3 * len(words),
        length=len(text),
        following=has(lang, "following", text),
        first_mention=has(lang, "first_mention", text),
    )


_MARKS = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u23E9-\u23FA\u200d\ufe0f"


def exhorts(sentence: str, language: str | None) -> bool:
    """A sentence a reader acts on though no call-to-action phrase names it: it opens with an imperative verb or
    an exhortation ("Shop before 31/5.", "Jom shopping koleksi terbaru sekarang 👉", "Tara, ...") or closes with an
    imperative particle ("Silipin na!", "... ngay!"): the language file's `action_open`, `action_end` and verbs."""
    core = re.sub(rf"^[\s{_MARKS}\W]+|[\s{_MARKS}.!?~]+$", "", sentence).lower()
    if not core:
        return False
    lexes = [lexicon(x) for x in dict.fromkeys((language or "en", "en"))]
    own = lexes[0]
    opens = [w for lx in lexes for w in (*lx.phrases.get("action_open", ()),
                                         *(v.lower() for _, v in lx.rewrite.get("verbs", ())))
             if lx is own or _english_reads_on(core, w)]
    ends = [w for lx in lexes for w in lx.phrases.get("action_end", ())]
    if lexes[0].unspaced:
        return any(core.startswith(w) for w in opens) or any(core.endswith(w) for w in ends)
    return any(re.match(rf"{re.escape(w)}(?![\w-])", core) for w in opens) or \
        (len(core.split()) >= 2 and any(core.endswith(" " + w) for w in ends))


def _english_reads_on(core: str, verb: str) -> bool:
    """An English verb opens a sentence of another language only when English follows it: "Shop now" is an
    imperative, "Shop gửi bạn mã" (the shop sends you a code) is not."""
    nxt = re.match(rf"{re.escape(verb)}\s+(\S+)", core)
    return nxt is None or nxt.group(1).isascii()


def last_sentence(text: str) -> str:
    """The text's closing sentence (a sign-off line included: callers strip it first where it matters)."""
    core = text.rstrip(f" \t\n{_MARKS}")
    ends = [m.end() for m in re.finditer(r"[.!?\n](?=\s)", core)]
    return text[ends[-1]:] if ends else text

