"""How faithful rewrites are, per Appendix D error type: terms kept, terms invented, language kept, within the
length limit, delivered or rejected.

Two sources of truth. On a labelled set (`tests/data/real_style/`), each message lists by hand the terms a
rewrite must keep, its language, its stale deadlines and its personal data, so the parser is measured too.
On the synthetic month, the original's own parsed terms and detected language stand in for the labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crmagent_dagster.agents import language as languages
from crmagent_dagster.agents import terms
from crmagent_dagster.agents.auditor import audit
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.agents.guardrails import length_check

REAL_STYLE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "real_style"
REAL_STYLE_AS_OF = date(2025, 6, 1)  # the set's send date (tests/data/real_style/README.md)


@dataclass
class Tally:
    """Counts for one group of rewrites."""

    messages: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    terms: int = 0
    kept: int = 0
    invented: int = 0
    language_kept: int = 0
    within_limit: int = 0
    needs_change: int = 0  # the unforced audit found an error
    changed: int = 0  # ... and the written text differs from the original
    lost: list[str] = field(default_factory=list)
    invented_terms: list[str] = field(default_factory=list)

    def row(self, name: str) -> dict[str, Any]:
        pct = lambda a, b: round(100 * a / b, 1) if b else None  # noqa: E731
        return {"group": name, "messages": self.messages, "delivered": self.delivered, "rejected": self.rejected,
                "failed": self.failed, "terms_kept_pct": pct(self.kept, self.terms), "terms": self.terms,
                "invented": self.invented, "language_kept_pct": pct(self.language_kept, self.delivered),
                "within_limit_pct": pct(self.within_limit, self.delivered),
                "changed_where_error_pct": pct(self.changed, self.needs_change)}


def load_set(folder: Path = REAL_STYLE_DIR) -> list[dict[str, Any]]:
    """Every labelled message of a folder of JSONL files, with its `id` and `expect`."""
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                item["_source"] = f"{path.name}:{n}"
                out.append(item)
    return out


def input_line(item: dict[str, Any]) -> dict[str, Any]:
    """The `crmagent rewrite` input of a labelled message: everything but its id and labels."""
    return {k: v for k, v in item.items() if k not in ("id", "expect", "_source")}


def expected_kept(term_text: str, facts: OfferFacts, title: str, body: str) -> bool:
    """Does a rewrite still state a hand-labelled term? Parsed terms compare by meaning ("RM5" = "RM 5.00"), the
    rest as text, ignoring case."""
    if term_text.casefold() in f"{title}\n{body}".casefold():
        return True
    wanted = facts.read("", term_text).kept_terms
    if not wanted:
        return False
    rewrite = facts.read(title, body)
    return all(terms.covers(rewrite.terms, f"{title}\n{body}", t) for t in wanted)


def score(tally: Tally, *, facts: OfferFacts, status: str, title: str | None, body: str | None, channel: str,
          expected_terms: Iterable[str] | None = None, expected_language: str | None = None,
          limits: dict[str, tuple[int, int]] | None = None) -> None:
    """Add one rewrite to a tally. Term and language figures count delivered (ok) rewrites."""
    tally.messages += 1
    unforced = audit(facts.segment, facts.title, facts.body, facts.lang, facts.voucher is not None).error_type
    if title is not None and body is not None and unforced != "none":
        tally.needs_change += 1
        tally.changed += (title, body) != (facts.title, facts.body)
    if status != "ok":
        tally.rejected += status == "rejected"
        tally.failed += status == "failed"
        return
    tally.delivered += 1
    text = f"{title}\n{body}"
    if expected_terms is None:
        wanted = [t.text for t in facts.reading.kept_terms]
        lost = [t.text for t in terms.missing(facts.reading, facts.read(title, body), text)]
    else:
        wanted = list(expected_terms)
        lost = [t for t in wanted if not expected_kept(t, facts, title, body)]
    tally.terms += len(wanted)
    tally.kept += len(wanted) - len(lost)
    tally.lost += lost
    made_up = terms.invented(facts.read(title, body), facts.allowed)
    tally.invented += len(made_up)
    tally.invented_terms += [t.text for t in made_up]
    want = expected_language or languages.detect(f"{facts.title}\n{facts.body}")
    tally.language_kept += languages.same(want, languages.detect(text))
    tally.within_limit += length_check(title, body, channel, limits, title_required=bool(facts.title.strip())).passed


def real_style_tallies(items: list[dict[str, Any]], records: list[dict[str, Any]],
                       as_of: date = REAL_STYLE_AS_OF) -> dict[str, Tally]:
    """Tallies per original error type (and 'all') of `crmagent rewrite` records for a labelled set."""
    out: dict[str, Tally] = {"all": Tally()}
    for item, rec in zip(items, records, strict=True):
        row = {**input_line(item), "title": item["title"], "body": item["body"]}
        facts = OfferFacts.from_row(row, as_of)
        written = rec.get("rewrite") or {}
        for key in ("all", (rec.get("original") or {}).get("error_type") or "error"):
            score(out.setdefault(key, Tally()), facts=facts, status=rec["status"], title=written.get("title"),
                  body=written.get("body"), channel=item.get("channel", "push"),
                  expected_terms=item["expect"]["terms"], expected_language=item["expect"]["language"])
    return out


def table(tallies: dict[str, Tally]) -> str:
    """The tallies as a fixed-width table, 'all' last."""
    rows = [t.row(name) for name, t in sorted(tallies.items(), key=lambda kv: (kv[0] == "all", kv[0]))]
    cols = ["group", "messages", "delivered", "rejected", "failed", "terms", "terms_kept_pct", "invented",
            "language_kept_pct", "within_limit_pct", "changed_where_error_pct"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)
