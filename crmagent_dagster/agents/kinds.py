"""What a message is for, read before anything audits, rewrites or judges it.

Six kinds: a promotional offer, a product or feature announcement, a reminder or bill, a transactional
confirmation, a service advisory (outage, maintenance, weather, public health) and a security or fraud warning.
Only the first two are marketing: they get the Appendix D audit and, where it is missing, a call to act on the
offer. The others keep their purpose (an advisory stays a clear notice, a warning stays a warning) and are only
checked for personal data, passed dates and clarity.

The cues are data, one list per kind in each language file (`[kinds]` in `crmagent_dagster/lexicons/`); every
language's lists apply (copy mixes English in, and the kind is read before anything trusts the detected
language), matched without accents as bulk SMS often drops them. An offer is also what the campaign's voucher says and
what the text states as a benefit (a discount, cashback, free shipping), read by the offer-term reader. Every
verdict carries its evidence: the cues it found, so a person can see why.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from crmagent_dagster.lexicon import lexicons

KINDS = ("promotional_offer", "announcement", "reminder_bill", "transactional", "service_advisory", "security_warning")
MARKETING = frozenset({"promotional_offer", "announcement"})
KIND_LABELS = {"promotional_offer": "promotional offer", "announcement": "product or feature announcement",
               "reminder_bill": "reminder or bill", "transactional": "transactional confirmation",
               "service_advisory": "service advisory", "security_warning": "security or fraud warning"}
NO_CUE = "no cue of any other kind: read as marketing copy"
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

    @property
    def guessed(self) -> bool:
        """Read as marketing only because nothing marked it as anything else: no edit that only suits marketing
        copy (a call to action, a new tone) is sure on it."""
        return self.evidence == (NO_CUE,)

    def describe(self) -> str:
        return f"{self.label} ({'; '.join(self.evidence)})" if self.evidence else self.label


def fold(text: str) -> str:
    """Latin text without its accents ("Đơn hàng đã giao" -> "Don hang da giao"), as bulk SMS is often typed; other
    scripts as they are (Thai vowels and tones are marks too, and must stay)."""
    out = []
    for ch in unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D")):
        if unicodedata.category(ch) == "Mn" and out and out[-1].isascii():
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, tuple[re.Pattern, re.Pattern, re.Pattern]]:
    """Per kind, the cues of every language file (a message's language is read after its kind, and Asian copy
    mixes English in): accent-folded for scripts with spaces between words, as they are for a one-word cue whose
    accents tell it apart ("quà", a gift, is not "qua", past), and one pattern for scripts without spaces."""
    words: dict[str, dict[str, set[str]]] = {}
    for lex in lexicons().values():
        for name, listed in lex.kinds.items():
            by = words.setdefault(name, {"folded": set(), "exact": set(), "unspaced": set()})
            for w in (w.lower() for w in listed):
                if lex.unspaced:
                    by["unspaced"].add(fold(w))
                elif fold(w) != w and " " not in w:
                    by["exact"].add(w)
                else:
                    by["folded"].add(fold(w))

    def spaced(ws: set[str]) -> re.Pattern:
        body = "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True)) or "(?!)"
        return re.compile(rf"(?<![^\W\d_])({body})(?:(?<=[^\w\s])|(?![^\W\d_]))", re.I)  # "ref:" ends itself

    out = {}
    for name, by in words.items():
        unspaced = "|".join(re.escape(w) for w in sorted(by["unspaced"], key=len, reverse=True)) or "(?!)"
        out[name] = (spaced(by["folded"]), spaced(by["exact"]), re.compile(f"({unspaced})"))
    return out


def cues(text: str, language: str | None) -> dict[str, list[str]]:
    """Distinct cue words of each kind found in a text, in order, longest match first where they overlap."""
    return {name: [w for w, _ in found] for name, found in _cue_positions(text, language).items()}


def _cue_positions(text: str, language: str | None) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    folded = fold(text)
    for name, (by_fold, exact, unspaced) in _patterns().items():
        first: dict[str, int] = {}
        hits = [*by_fold.finditer(folded), *exact.finditer(text), *unspaced.finditer(folded)]
        for m in sorted(hits, key=lambda m: m.start()):
            first.setdefault(m.group(1).lower(), m.start())
        if first:
            found[name] = list(first.items())
    return found


def classify(title: str, body: str, language: str | None, *, has_voucher: bool = False, benefits: int = 0,
             sells: bool = False, action_to_buy: bool = False) -> MessageKind:
    """The message's kind. `benefits`: how many benefits the text states (discounts, cashback, free shipping);
    `sells`: a call to buy ("Shop now!"); `action_to_buy`: a link or a keyword to text, which a confirmation or an
    advisory may carry as well."""
    positions = _cue_positions(f"{title}\n{body}", language)
    found = {name: [w for w, _ in hits] for name, hits in positions.items()}
    first = {name: min(i for _, i in hits) for name, hits in positions.items()}
    n = {name: len(found.get(name, ())) for name in _CUES}
    core = n["offer"] + 2 * has_voucher + 2 * min(benefits, 2) + sells  # what is offered
    offer = core + action_to_buy  # a link or a keyword alone may as well track an order

    def evidence(*names: str) -> tuple[str, ...]:
        out = [f"{name}: " + ", ".join(f"'{w}'" for w in found[name][:4]) for name in names if found.get(name)]
        if sells and "offer" in names:
            out.append("a call to buy")
        if action_to_buy and "offer" in names:
            out.append("a keyword to text or a link")
        if has_voucher and "offer" in names:
            out.append("the campaign has a voucher")
        if benefits and "offer" in names:
            out.append(f"states {benefits} benefit(s)")
        return tuple(out)

    if n["security"] >= 2 or (n["security"] and offer < 3):
        return MessageKind("security_warning", evidence("security"))
    if (n["advisory"] >= 2 and offer < 4) or (n["advisory"] and offer < 2):
        return MessageKind("service_advisory", evidence("advisory"))
    plain = core == 0 and not n["announcement"]  # one cue decides only where nothing is being offered
    leads = n["transactional"] >= 2 and first["transactional"] < first.get("offer", len(title + body) + 1)
    if (n["transactional"] >= 2 and offer < 3) or (n["transactional"] and plain) or leads:
        # a confirmation that opens the message stays one, even with a voucher for next time after it
        return MessageKind("transactional", evidence("transactional"))
    due = n["reminder"] >= 2 and first["reminder"] < first.get("offer", len(title + body) + 1)
    if (n["reminder"] >= 2 and offer < 2) or (n["reminder"] and plain) or due:
        # "your order is unpaid, pay by 20 Aug ... your free-shipping voucher still applies" is a bill, not an offer
        return MessageKind("reminder_bill", evidence("reminder"))
    if offer:
        return MessageKind("promotional_offer", evidence("offer"))
    if n["announcement"]:
        return MessageKind("announcement", evidence("announcement"))
    return MessageKind("promotional_offer", (NO_CUE,))
