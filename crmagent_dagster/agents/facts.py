"""One message, read once: its text, the campaign's facts, and everything the agents need to know about it.

Built once per template from a `core.labelled_templates` row (or a `crmagent rewrite` line) at entry, and handed
to the audit, the rule editor, the LLM prompts, the guardrails and the judge, so all of them read the same kind,
the same language, the same stated terms with their roles, the same flags and the same send date. The pieces are
computed on first use and kept (`cached_property`): a message is never re-read for another stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from crmagent_dagster.agents import language as languages
from crmagent_dagster.agents import terms
from crmagent_dagster.agents.kinds import MessageKind, classify
from crmagent_dagster.currency import code_of
from crmagent_dagster.vocabulary import VoucherFacts, format_amount, has


@dataclass(frozen=True)
class OfferFacts:
    segment: str
    title: str
    body: str
    language: str | None = None  # as declared; `lang` is what the text is written in
    currency: str | None = None  # ISO 4217
    product_name: str | None = None
    categories: tuple[str, ...] = ()
    voucher: VoucherFacts | None = None
    voucher_code: str | None = None
    as_of: date | None = None  # the send date: deadlines before it are stale
    channel: str = "push"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], as_of: date | None, channel: str = "push") -> "OfferFacts":
        currency = code_of(row.get("currency")) if row.get("currency") else None
        return cls(segment=row["segment"], title=row.get("title") or "", body=row.get("body") or "",
                   language=row.get("language"), currency=currency, product_name=row.get("product_name"),
                   categories=tuple(str(row[k]) for k in ("category_l1", "category_l2", "category_l3") if row.get(k)),
                   voucher=voucher_facts(row.get("voucher_type"), row.get("discount_value"), row.get("min_spend"),
                                         row.get("max_discount"), currency, row.get("expires_at")),
                   voucher_code=row.get("voucher_code"), as_of=as_of, channel=row.get("channel") or channel)

    @cached_property
    def lang(self) -> str:
        return languages.of_message(self.title, self.body, self.language, self.currency)

    @cached_property
    def taglish(self) -> bool:
        return self.lang == "tl" and languages.taglish(f"{self.title}\n{self.body}")

    @cached_property
    def language_instruction(self) -> str:
        """The language as a writer is told it: "Taglish (...)", "Indonesian (not Malay ...)"."""
        return languages.writing_instruction(self.lang, f"{self.title}\n{self.body}")

    @cached_property
    def kind(self) -> MessageKind:
        """What the message is for: an offer or an announcement (marketing), or a reminder, a confirmation, an
        advisory, a warning (not marketing: no sales call to action, no Appendix D audit)."""
        acts = any(t.kind in ("keyword", "url") for t in self.reading.kept_terms)
        return classify(self.title, self.body, self.lang, has_voucher=self.voucher is not None,
                        benefits=len(self.stated_offer), sells=has(self.lang, "cta", f"{self.title}\n{self.body}"),
                        action_to_buy=acts)

    @cached_property
    def stated_offer(self) -> tuple[terms.Term, ...]:
        """The benefits the text itself states: a discount, cashback, free shipping ("Disc.30%", "RM5 off")."""
        return self.benefits(self.reading)

    @staticmethod
    def benefits(reading: terms.Reading) -> tuple[terms.Term, ...]:
        """The benefits a reading of a text states (a price, a minimum spend or a cap is none)."""
        return tuple(t for t in reading.kept_terms
                     if t.kind == "offer" or (t.kind in ("percent", "amount") and t.role == "benefit"))

    @cached_property
    def reading(self) -> terms.Reading:
        return self.read(self.title, self.body)

    @cached_property
    def _readings(self) -> dict[tuple[str, str], terms.Reading]:
        return {}

    def read(self, title: str, body: str) -> terms.Reading:
        """Read any text (the original or a rewrite) in this template's market and send date, once per text: the
        editor, the guardrails, the audit and the records all ask about the same few texts."""
        key = (title or "", body or "")
        if key not in self._readings:
            names = tuple(n for n in (self.product_name,) if n)
            self._readings[key] = terms.read(title, body, language=self.lang, currency=self.currency,
                                             as_of=self.as_of, names=names)
        return self._readings[key]

    @cached_property
    def allowed(self) -> terms.Allowed:
        """What a rewrite may state: the original's terms (stale ones included: restating them is checked
        apart) and the structured facts."""
        allowed = terms.Allowed()
        allowed.add_text(f"{self.title}\n{self.body}")
        for t in self.reading.terms:
            allowed.add(t)
        v = self.voucher
        for key in terms.fact_keys(voucher_type=v.voucher_type if v else None, discount_value=v.value if v else None,
                                   min_spend=v.min_spend if v else None, max_discount=v.max_discount if v else None,
                                   currency=v.currency if v else self.currency, voucher_code=self.voucher_code,
                                   expires_at=v.expires_on if v else None):
            allowed.add(key)
        if v is not None and v.voucher_type == "free_shipping":
            allowed.add("offer:free_shipping")
        return allowed

    @property
    def expiry(self) -> date | None:
        """The voucher's expiry, unless it has passed."""
        v = self.voucher
        if v is None or v.expires_on is None or (self.as_of and v.expires_on < self.as_of):
            return None
        return v.expires_on

    @cached_property
    def deadline(self) -> str | None:
        """The last deadline the text states that has not passed, as written: an offer's or a booking's last day
        (never a travel or event day, a due date or a day without its month). The real reason to act now."""
        dates = [t for t in self.reading.kept_terms if t.deadline and t.key.startswith("date:")]
        if not dates:
            return None
        last = max(dates, key=lambda t: t.key)
        written = re.split(r"\s*(?:-|–|—|~)\s*(?=\d)", last.text)[-1]
        return written if re.search(r"[^\W\d_]|/|\.", written) else None  # "31" alone names no date

    @property
    def flags(self) -> tuple[str, ...]:
        """What a template for a whole segment must not carry, or what a person must look at."""
        r = self.reading
        return tuple(f for f, on in (("personal_data", r.personal), ("stale_offer", r.stale),
                                      ("injected_text", r.injected)) if on)

    def facts_lines(self) -> list[str]:
        """The structured facts as lines for a prompt: the campaign's voucher, else what the text itself states."""
        lines = [f"Product: {self.product_name or 'none'}",
                 f"Category: {' > '.join(self.categories) or 'none'}"]
        v = self.voucher
        stated = list(dict.fromkeys(t.text for t in self.stated_offer))
        codes = list(dict.fromkeys(t.text for t in self.reading.kept_terms if t.kind == "code"))
        if v is None:
            if stated or codes:
                said = ", ".join(stated + [f"code {c}" for c in codes])
                lines.append(f"Voucher: none in the campaign's data; the message itself states {said}")
            else:
                lines.append("Voucher: none (neither the campaign's data nor the message states one)")
        else:
            money = lambda x: format_amount(x, v.currency) if v.currency else f"{x:g}"  # noqa: E731
            parts = [v.voucher_type, f"{v.value:g}%" if v.voucher_type == "percentage_off" else
                     (money(v.value) if v.voucher_type == "fixed_amount_off" else "")]
            if v.min_spend:
                parts.append(f"minimum spend {money(v.min_spend)}")
            elif v.min_spend is not None:
                parts.append("no minimum spend")
            if v.max_discount is not None:
                parts.append(f"cap {money(v.max_discount)}")
            if self.voucher_code:
                parts.append(f"code {self.voucher_code}")
            if v.expires_on is not None:
                parts.append(f"expires {v.expires_on:%Y-%m-%d}" + (" (already passed)" if self.expiry is None else ""))
            lines.append("Voucher: " + ", ".join(p for p in parts if p))
        return lines


    def must_keep(self) -> list[str]:
        """The original's terms as a writer must keep them: each as written, with what it is and what it is for."""
        return list(dict.fromkeys(f"{t.text} ({t.kind}{', ' + ROLE_WORDS[t.role] if t.role in ROLE_WORDS else ''})"
                                  for t in self.reading.kept_terms))

    def _what_it_is(self) -> str:
        if self.kind.guessed:  # a model can read what our cue lists could not; it must not take our guess as fact
            return ("not clear: nothing in it reads as an offer, a reminder, a confirmation, an advisory or a warning. "
                    "If it is not marketing copy, it has none of the error types and keeps its purpose and wording")
        return f"a {self.kind.label}"

    def context_lines(self) -> list[str]:
        """What every prompt about this message says of it: channel, language, send date, kind, facts, terms."""
        channel = {"sms": "SMS: one body and no title", "push": "push notification: a title and a body",
                   "im": "chat message: a title and a body", "email": "e-mail: a subject and a body"
                   }.get(self.channel, f"{self.channel}: a title and a body")
        kept = self.must_keep()
        return [f"Channel: {channel}", f"Language: {self.language_instruction}",
                f"Send date: {self.as_of.isoformat() if self.as_of else 'not given'}",
                f"What the message is: {self._what_it_is()}", *self.facts_lines(),
                "Terms the message states: " + ("; ".join(kept) if kept else "none")]


ROLE_WORDS = {"until": "offer's deadline", "book": "booking deadline", "start": "start date", "travel": "travel date",
              "event": "event day", "pay": "due date", "record": "date of a past event", "benefit": "a benefit",
              "threshold": "a minimum spend", "cap": "a cap", "price": "a price", "account": "an account figure"}


def voucher_facts(voucher_type: str | None, discount_value, min_spend, max_discount, currency: str | None,
                  expires_at) -> VoucherFacts | None:
    """VoucherFacts from staged columns (None when the template has no voucher)."""
    if not voucher_type:
        return None
    if isinstance(expires_at, str):
        expires_at = datetime.fromisoformat(expires_at)
    expires = expires_at.date() if isinstance(expires_at, datetime) else expires_at
    return VoucherFacts(voucher_type, float(discount_value or 0), None if min_spend is None else float(min_spend),
                        None if max_discount is None else float(max_discount), currency or "", expires)


def month_start(month: str) -> date:
    """The send date of a month partition ('2025-04' -> 2025-04-01): deadlines before it are stale."""
    year, mon = month.split("-")
    return date(int(year), int(mon), 1)
