"""One weak template with everything a writer may state about it: its own text and the campaign's facts.

Built once per template from a `core.labelled_templates` row (or a `crmagent rewrite` line) and shared by
the rule editor, the guardrails and the LLM prompt, so all three read the same stated terms, the same
language and the same send date.
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
from crmagent_dagster.currency import code_of
from crmagent_dagster.vocabulary import VoucherFacts, format_amount


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any], as_of: date | None) -> "OfferFacts":
        currency = code_of(row.get("currency")) if row.get("currency") else None
        return cls(segment=row["segment"], title=row.get("title") or "", body=row.get("body") or "",
                   language=row.get("language"), currency=currency, product_name=row.get("product_name"),
                   categories=tuple(str(row[k]) for k in ("category_l1", "category_l2", "category_l3") if row.get(k)),
                   voucher=voucher_facts(row.get("voucher_type"), row.get("discount_value"), row.get("min_spend"),
                                         row.get("max_discount"), currency, row.get("expires_at")),
                   voucher_code=row.get("voucher_code"), as_of=as_of)

    @cached_property
    def lang(self) -> str:
        return languages.of_message(self.title, self.body, self.language)

    @cached_property
    def reading(self) -> terms.Reading:
        return self.read(self.title, self.body)

    def read(self, title: str, body: str) -> terms.Reading:
        """Read any text (the original or a rewrite) in this template's market and send date."""
        names = tuple(n for n in (self.product_name,) if n)
        return terms.read(title, body, language=self.lang, currency=self.currency, as_of=self.as_of, names=names)

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
        """The last date the text states that has not passed, as written (a range's end): the real reason to act
        now."""
        dates = [t for t in self.reading.kept_terms if t.kind == "date" and t.key.startswith("date:")]
        if not dates:
            return None
        last = max(dates, key=lambda t: t.key)
        return re.split(r"\s*(?:-|–|—|~)\s*(?=\d)", last.text)[-1]

    def facts_lines(self) -> list[str]:
        """The structured facts as lines for a prompt."""
        lines = [f"Product: {self.product_name or 'none'}",
                 f"Category: {' > '.join(self.categories) or 'none'}"]
        v = self.voucher
        if v is None:
            lines.append("Voucher: none")
        else:
            money = lambda x: format_amount(x, v.currency) if v.currency else f"{x:g}"  # noqa: E731
            parts = [v.voucher_type, f"{v.value:g}%" if v.voucher_type == "percentage_off" else
                     (money(v.value) if v.voucher_type == "fixed_amount_off" else "")]
            if v.min_spend is not None:
                parts.append(f"minimum spend {money(v.min_spend)}")
            if v.max_discount is not None:
                parts.append(f"cap {money(v.max_discount)}")
            if self.voucher_code:
                parts.append(f"code {self.voucher_code}")
            if v.expires_on is not None:
                parts.append(f"expires {v.expires_on:%Y-%m-%d}" + (" (already passed)" if self.expiry is None else ""))
            lines.append("Voucher: " + ", ".join(p for p in parts if p))
        return lines


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
