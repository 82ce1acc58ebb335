"""What a message is for, read before anything audits, rewrites or judges it.

Six kinds: a promotional offer, a product or feature announcement, a reminder or bill, a transactional
confirmation, a service advisory (outage, maintenance, weather, public health) and a security or fraud warning.
Only the first two are marketing: they get the Appendix D audit and, where it is missing, a call to act on the
offer. The others keep their purpose (an advisory stays a clear notice, a warning stays a warning) and are only
checked for personal data, passed dates and clarity.

The cues are data, one list per kind in each language file (`[kinds]` in `crmagent_dagster/lexicons/`); English's
lists always apply too, since Asian copy mixes English in. An offer is also what the campaign's voucher says and
what the text states as a benefit (a discount, cashback, free shipping), read by the offer-term reader. Every
verdict carries its evidence: the cues it found, so a person can see why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from crmagent_dagster.lexicon import lexicon

KINDS = ("promotional_offer", "announcement", "reminder_bill", "transactional", "service_advisory", "security_warning")
MARKETING = frozenset({"promotional_offer", "announcement"})
KIND_LABELS = {"promotional_offer": "promotional offer", "announcement": "product or feature announcement",
               "reminder_bill": "reminder or bill", "transactional": "transactional confirmation",
               "service_advisory": "service advisory", "security_warning": "security or fraud warning"}
_CUES = ("security", "advisory", "transactional", "reminder", "announcement", "offer")


@dataclass(frozen=True)
class MessageKind:
    kind: str  # one of KINDS
    evidence: tuple[str, ...]  # "security: 'never share', 'scam'" ... the cues behind the verdict

    @property
    def marketing(self) -> bool:
        return self.kind in MARKETING

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def describe(self) -> str:
        return f"{self.label} ({'; '.join(self.evidence)})" if self.evidence else self.label


@lru_cache(maxsize=16)
def _patterns(language: str | None) -> dict[str, re.Pattern]:
    words: dict[str, set[str]] = {}
    for code in dict.fromkeys([language or "en", "en"]):
        for name, listed in lexicon(code).kinds.items():
            words.setdefault(name, set()).update(w.lower() for w in listed)
    unspaced = lexicon(language).unspaced
    out = {}
    for name, listed in words.items():
        body = "|".join(re.escape(w) for w in sorted(listed, key=len, reverse=True))
        out[name] = re.compile(f"({body})" if unspaced else rf"(?<![^\W\d_])({body})(?![^\W\d_])", re.I)
    return out


def cues(text: str, language: str | None) -> dict[str, list[str]]:
    """Distinct cue words of each kind found in a text, longest match first where they overlap."""
    found: dict[str, list[str]] = {}
    for name, pattern in _patterns(language).items():
        hits = list(dict.fromkeys(m.group(1).lower() for m in pattern.finditer(text)))
        if hits:
            found[name] = hits
    return found


def classify(title: str, body: str, language: str | None, *, has_voucher: bool = False, benefits: int = 0,
             action_to_buy: bool = False) -> MessageKind:
    """The message's kind. `benefits`: how many benefits the text states (discounts, cashback, free shipping);
    `action_to_buy`: it asks the reader to buy, register or dial for something."""
    found = cues(f"{title}\n{body}", language)
    n = {name: len(found.get(name, ())) for name in _CUES}
    offer = n["offer"] + 2 * has_voucher + 2 * min(benefits, 2) + action_to_buy

    def evidence(*names: str) -> tuple[str, ...]:
        out = [f"{name}: " + ", ".join(f"'{w}'" for w in found[name][:4]) for name in names if found.get(name)]
        if has_voucher and "offer" in names:
            out.append("the campaign has a voucher")
        if benefits and "offer" in names:
            out.append(f"states {benefits} benefit(s)")
        return tuple(out)

    if n["security"] >= 2 or (n["security"] and offer < 3):
        return MessageKind("security_warning", evidence("security"))
    if (n["advisory"] >= 2 and offer < 4) or (n["advisory"] and offer < 2):
        return MessageKind("service_advisory", evidence("advisory"))
    plain = offer == 0 and not n["announcement"]  # one cue decides only where nothing is being promoted
    if (n["transactional"] >= 2 and offer < 3) or (n["transactional"] and plain):
        return MessageKind("transactional", evidence("transactional"))
    if (n["reminder"] >= 2 and offer < 2) or (n["reminder"] and plain):
        return MessageKind("reminder_bill", evidence("reminder"))
    if offer:
        return MessageKind("promotional_offer", evidence("offer"))
    if n["announcement"]:
        return MessageKind("announcement", evidence("announcement"))
    return MessageKind("promotional_offer", ("no cue of any other kind: read as marketing copy",))
