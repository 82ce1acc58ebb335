"""How faithful rewrites are, per Appendix D error type: terms kept, terms invented, language kept, within the
length limit, delivered or rejected.

Two sources of truth. On a labelled set (`tests/data/real_style/`), each message lists by hand the terms a
rewrite must keep, its language, its stale deadlines and its personal data, so the parser is measured too.
On the synthetic month, the original's own parsed terms and detected language stand in for the labels.
"""

from __future__ import annotations

import hashlib
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


def load_file(path: Path) -> list[dict[str, Any]]:
    """The labelled messages of one JSONL file, each with `_source` (file:line)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            item = json.loads(line)
            item["_source"] = f"{path.name}:{n}"
            out.append(item)
    return out


def load_set(folder: Path = REAL_STYLE_DIR) -> list[dict[str, Any]]:
    """Every labelled message of a folder of JSONL files, with its `id` and `expect`."""
    return [item for path in sorted(folder.glob("*.jsonl")) for item in load_file(path)]


def input_line(item: dict[str, Any]) -> dict[str, Any]:
    """The `crmagent rewrite` input of a labelled message: everything but its id, labels and source."""
    return {k: v for k, v in item.items() if k not in ("id", "expect", "_source", "source")}


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


# --- real-message sets: blind judgment of what each writer delivers ---------------------------------------
# The sets under bench/real_messages/ are public messages (and merchant-style templates written apart from the
# code), each labelled by hand with its language, kind, terms, valid and passed deadlines. What the offline rule
# engine and the LLM path deliver for each is judged blind against the original (versions shuffled, 1-10 each),
# through files mode like any other request; the requests and a strong model's answers are recorded under
# bench/quality/, so the tables are recomputed without a model, and re-judged by anyone with an endpoint.
BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
SETS_DIR = BENCH_DIR / "real_messages"
RECORDINGS = BENCH_DIR / "quality"
FILES_MODEL = "strong-model"  # the model name files-mode requests carry; whoever answers them is recorded apart
FILES_URL = "http://files-mode.invalid/v1"  # never called: files mode only writes requests down
WRITERS = ("offline", "llm")


def request_key(body: dict[str, Any]) -> str:
    """What an answer answers: the model, the messages and the reply schema of a request (not its custom_id, which
    carries run-specific scopes)."""
    fmt = (body.get("response_format") or {}).get("json_schema", {}).get("name")
    blob = json.dumps({"model": body.get("model"), "messages": body.get("messages"), "schema": fmt},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class Recording:
    """Recorded Batch API answers, found by what they answer."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Recording":
        rec = cls()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    obj = json.loads(line)
                    rec.answers[obj["request_key"]] = obj
        return rec

    def answer(self, request_line: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded answer to one exported request, under that request's custom_id."""
        found = self.answers.get(request_key(request_line["body"]))
        return None if found is None else {**found, "custom_id": request_line["custom_id"]}


def versions_of(item: dict[str, Any], delivered: dict[str, tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The distinct texts to judge (the original and what each writer delivered), shuffled by the item's id, and
    which label each writer's text got."""
    original = (item.get("title") or "", item["body"])
    texts = list(dict.fromkeys([original, *delivered.values()]))
    order = sorted(texts, key=lambda t: hashlib.sha256(f"{item['id']}|{t[0]}|{t[1]}".encode()).hexdigest())
    labels = {t: f"V{i}" for i, t in enumerate(order, 1)}
    return order, {"original": labels[original], **{w: labels[t] for w, t in delivered.items()}}


def judge_request(item: dict[str, Any], order: list[tuple[str, str]], custom_id: str):
    """One blind-judge request for the versions of one message."""
    from crmagent_dagster.agents.prompts import fence, render
    from crmagent_dagster.llm import LLMRequest
    from crmagent_dagster.llm.replies import BlindJudgment
    from crmagent_dagster.segments import SEGMENT_BY_KEY

    # the hand-labelled language and kind, not our detector's or classifier's: the judge must not inherit their errors
    row = {**input_line(item), **({"language": item["expect"]["language"]} if item["expect"].get("language") else {})}
    facts = OfferFacts.from_row(row, date.fromisoformat(item["send_date"]))
    kind = item["expect"].get("kind", facts.kind.kind).replace("_", " ")
    context = [f"What the message is: a {kind}" if line.startswith("What the message is") else line
               for line in facts.context_lines() if not line.startswith("Terms the message states")]
    blocks = "\n\n".join(f"V{i}:\n" + fence((f"Title: {t}\n" if t else "") + f"Body: {b}")
                         for i, (t, b) in enumerate(order, 1))
    segment = SEGMENT_BY_KEY[item["segment"]]
    p = render("blind_judge", n_versions=str(len(order)), audience=segment.label, relationship=segment.relationship,
               context="\n".join(context), versions=blocks)
    return LLMRequest(custom_id, "evaluate", p.messages, BlindJudgment, p.version)


@dataclass
class Judged:
    """One writer's delivered text for one message, against the original."""

    item: str
    writer: str
    language: str
    kind: str
    changed: bool
    verdict: str  # better | same | worse | not_judged
    score: int | None = None
    original_score: int | None = None
    broken: bool = False
    judge_invented: list[str] = field(default_factory=list)
    judge_dropped: list[str] = field(default_factory=list)
    invented: list[str] = field(default_factory=list)  # what the offer-term reader finds unsupported
    dropped_deadlines: list[str] = field(default_factory=list)  # hand-labelled valid deadlines the text lost
    sales_cta_added: bool = False
    status: str = ""
    has_error: bool = False  # the hand label: something a careful copywriter would change


def judged(item: dict[str, Any], writer: str, record: dict[str, Any], verdicts: dict[str, dict] | None,
           labels: dict[str, str]) -> Judged:
    """How one writer did on one message: the blind judge's verdict and the objective checks."""
    from crmagent_dagster.vocabulary import has

    row = input_line(item)
    facts = OfferFacts.from_row(row, date.fromisoformat(item["send_date"]))
    title, body = record["delivered"]["title"] or "", record["delivered"]["body"] or ""
    changed = (title, body) != (item.get("title") or "", item["body"])
    expect = item["expect"]
    has_error = bool(expect.get("has_error")) or expect.get("error_type") not in (None, "none") \
        or bool(expect.get("stale")) or bool(expect.get("personal"))
    out = Judged(item=item["id"], writer=writer, language=expect["language"], kind=expect["kind"],
                 changed=changed, verdict="same", status=record["status"], has_error=has_error)
    if record["status"] == "waiting":  # the writer has not answered: nothing to compare yet
        out.verdict = "not_judged"
    elif changed:
        mine, orig = (verdicts or {}).get(labels[writer]), (verdicts or {}).get(labels["original"])
        if mine is None or orig is None:
            out.verdict = "not_judged"
        else:
            out.score, out.original_score, out.broken = mine["score"], orig["score"], bool(mine["broken"])
            out.judge_invented, out.judge_dropped = list(mine["invented"]), list(mine["dropped"])
            out.verdict = "better" if mine["score"] > orig["score"] else "worse" if mine["score"] < orig["score"] else "same"
        out.invented = [t.text for t in terms.invented(facts.read(title, body), facts.allowed)]
        out.dropped_deadlines = [d for d in item["expect"].get("valid_deadlines", [])
                                 if not expected_kept(d, facts, title, body)]
        lang = facts.lang
        out.sales_cta_added = has(lang, "cta", f"{title}\n{body}") and not has(lang, "cta", f"{facts.title}\n{facts.body}")
    return out


def quality_table(rows: list[Judged], by: str) -> str:
    """better / same / worse against the original per group (language or kind), with broken, invented and the
    valid deadlines dropped, for each writer."""
    groups: dict[tuple[str, str], list[Judged]] = {}
    for r in rows:
        for key in (getattr(r, by), "all"):
            groups.setdefault((r.writer, key), []).append(r)
    header = ["writer", by, "messages", "changed", "better", "same", "worse", "not judged", "worse %", "better % of changed",
              "broken", "invented", "deadlines dropped", "sales CTA on non-marketing"]
    lines = [header]
    for (writer, key), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all", kv[0][1])):
        n = len(rs)
        changed = [r for r in rs if r.changed]
        count = lambda v: sum(r.verdict == v for r in rs)  # noqa: E731
        better_changed = sum(r.verdict == "better" for r in changed)
        lines.append([writer, key, str(n), str(len(changed)), str(count("better")), str(count("same")),
                      str(count("worse")), str(count("not_judged")), f"{100 * count('worse') / n:.1f}",
                      f"{100 * better_changed / len(changed):.1f}" if changed else "-",
                      str(sum(r.broken for r in rs)), str(sum(bool(r.invented) for r in rs)),
                      str(sum(bool(r.dropped_deadlines) for r in rs)),
                      str(sum(r.sales_cta_added and r.kind not in MARKETING_KINDS for r in rs))])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    rows_md = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in lines]
    return "\n".join([rows_md[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *rows_md[1:]])


MARKETING_KINDS = frozenset({"promotional_offer", "announcement"})
