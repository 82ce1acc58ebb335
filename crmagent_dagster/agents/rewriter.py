"""The rule-based TemplateAgent: it edits the merchant's message; it does not replace it.

It starts from the original title and body and makes the smallest edits that fix what the audit found and
what the segment's winning templates have that this one lacks:
- a vague incentive gets the concrete one (from the voucher or the text's own terms), in the body and the title;
- a weak call to action gets an imperative with the real reason to act (the text's own deadline, else the
  incentive), built on the message's own verb (claim, book, pay, load ...);
- an audience assumption or an irrelevant offer gets the phrases that assume the wrong relationship
  ("we miss you" to new customers, "first order" to repeat buyers, "thanks for following" to non-followers)
  replaced or removed, keeping the offer;
- a misaligned tone gets a neutral register: slang and stiff formulas out, no shouting, one "!";
- personal data comes out (the template goes to a whole segment), and a passed deadline comes out with a
  note that a new one is needed, never an invented date;
- over the channel's limit, filler is shortened or dropped, never a term.
Exemplars (paths 1-2) lend structure (incentive in the title, an emoji, urgency, brevity), never facts.

Every edit is checked as it is made: one that would drop a stated term or state one the original and the
facts do not have is undone and reported in `unable`. A language without phrase tables is still edited for
tone, personal data, passed deadlines and length, and the edits it could not make are named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from crmagent_dagster.agents import terms
from crmagent_dagster.agents.auditor import audit
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.agents.guardrails import limits_for
from crmagent_dagster.agents.text_features import BOUGHT_OFTEN, HAVE_BOUGHT, PURCHASE_PENDING, UNFAMILIAR, features
from crmagent_dagster.lexicon import lexicons
from crmagent_dagster.vocabulary import (
    EMOJI_BY_INTENT,
    INTENT_OF_SEGMENT,
    UNSPACED,
    format_expiry,
    hits,
    incentive_phrases,
)

_EMOJI_CHARS = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u23E9-\u23FA\u200d\ufe0f\u2640\u2642"
_EMOJI = re.compile(f"[{_EMOJI_CHARS}]+")
_CLAUSE_END = re.compile(r"[.!?;\n]|,\s|:\s|\s[-–—]\s")
# A period after these ends no clause: "Min. spend", "No. 220145", "Yth. Bapak".
_ABBREVIATIONS = frozenset({"min", "max", "maks", "no", "yth", "bpk", "pt", "st", "mr", "ms", "mrs", "dr", "vs", "etc",
                            "approx", "incl", "excl", "s", "sdn", "bhd", "inc", "co", "jl", "tel", "hp", "ext", "pls"})


@dataclass(frozen=True)
class Style:
    """Structure borrowed from an exemplar (paths 1-2)."""

    incentive_in_title: bool = False
    emoji: bool = False
    urgency: bool = False
    brief: bool = False

    @classmethod
    def of(cls, title: str, body: str, language: str | None) -> "Style":
        f = features(title, body, language)
        return cls(incentive_in_title=terms.states_value(title), emoji=f.emoji_count > 0, urgency=f.has_urgency,
                   brief=len(body) < 90)


@dataclass(frozen=True)
class EditGoal:
    """What to fix: the audit's error type, the traits the segment's strong templates share, the channel."""

    error_type: str | None = None
    winning_traits: frozenset[str] = frozenset()  # concrete_value | cta | has_urgency | emoji
    channel: str = "push"
    limits: dict[str, tuple[int, int]] | None = None


@dataclass
class RuleRewrite:
    title: str
    body: str
    language: str
    changes: list[str] = field(default_factory=list)
    unable: list[str] = field(default_factory=list)  # edits the goal called for that could not be made
    needs: list[str] = field(default_factory=list)  # what a person must supply before sending


# --- per-language editing vocabulary ---------------------------------------------------------------
@dataclass(frozen=True)
class Lexicon:
    verbs: tuple[tuple[str, str], ...]  # (as found in text, imperative to write); voucher verbs first
    default_verb: dict[str, str]  # intent -> imperative
    cta: str  # "{verb} now{reason}!"
    by_deadline: str  # " before {deadline}"
    by_incentive: str  # " to get {incentive}"
    incentive_sentence: str  # "Get {incentive}."
    replace: dict[str, str]  # phrase (lower-case) -> replacement; unlisted wrong phrases are removed
    vague: tuple[str, ...]
    shorten: tuple[tuple[str, str], ...] = ()
    dangling: tuple[str, ...] = ()  # function words left hanging before punctuation after a removal
    code_word: str = "code"


VOUCHER_VERBS = frozenset({"claim", "redeem", "use", "tebus", "guna", "klaim", "pakai", "i-claim", "gamitin",
                           "i-redeem", "รับ", "ใช้โค้ด", "nhận", "dùng", "nhập mã"})


def _lexicon_of(data: dict) -> Lexicon:
    """A language file's [rewrite] section as the editor's Lexicon."""
    return Lexicon(verbs=tuple(tuple(v) for v in data["verbs"]), default_verb=dict(data["default_verb"]),
                   cta=data["cta"], by_deadline=data["by_deadline"], by_incentive=data["by_incentive"],
                   incentive_sentence=data["incentive_sentence"], replace=dict(data.get("replace") or {}),
                   vague=tuple(data.get("vague") or ()), shorten=tuple(tuple(x) for x in data.get("shorten") or ()),
                   dangling=tuple(data.get("dangling") or ()), code_word=data.get("code_word") or "code")


LEXICONS: dict[str, Lexicon] = {c: _lexicon_of(x.rewrite) for c, x in lexicons().items() if x.rewrite}
# Clauses a length cut must not drop even though they state no term: the law and the way out.
_KEEP_CLAUSE = re.compile(r"(?i)t&c|terms|syarat|s&k|dti|permit|fteb|stop|unsub|opt[- ]?out|unreg|berhenti|"
                          r"tu choi|từ chối|ยกเลิก|bawal|rm0|\b(?:min|max|maks|minimum|maximum|only|per|each|up to|valid|"
                          r"excl|incl|hanya|lang|limit|limited)\b|chỉ|เท่านั้น|ขั้นต่ำ|tối thiểu|tối đa")
# Which phrase lists are wrong for which audiences (the audit's reading).
_WRONG_FOR = (
    ("prior_relationship", lambda s: s in UNFAMILIAR),
    ("following", lambda s: s == "potential_new_customers"),
    ("treats_as_new", lambda s: s not in UNFAMILIAR),
    ("purchase_done", lambda s: s in PURCHASE_PENDING),
    ("first_order", lambda s: s in HAVE_BOUGHT),
    ("first_mention", lambda s: s in BOUGHT_OFTEN),
    ("loyalty", lambda s: s in UNFAMILIAR or s in PURCHASE_PENDING),
)


# --- the draft being edited -----------------------------------------------------------------------
class _Draft:
    """Title and body under edit; every edit is kept only if the message still states what it stated."""

    def __init__(self, facts: OfferFacts) -> None:
        self.facts = facts
        self.title, self.body = facts.title, facts.body
        self.changes: list[str] = []
        self.unable: list[str] = []
        self.needs: list[str] = []
        self.dropped_ok: set[str] = set()  # keys of terms an edit may drop on purpose (passed deadlines)

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"

    def faithful(self, title: str, body: str) -> list[terms.Term]:
        """What a candidate would break: terms it drops or states without support."""
        reading = self.facts.read(title, body)
        lost = [t for t in terms.missing(self.facts.reading, reading, f"{title}\n{body}") if t.key not in self.dropped_ok]
        return lost + terms.invented(reading, self.facts.allowed)

    def edit(self, what: str, change: Callable[[str, str], tuple[str, str]], *, required: bool = True) -> bool:
        title, body = change(self.title, self.body)
        title, body = _tidy(title), _tidy(body)
        if (title, body) == (self.title, self.body):
            return False
        if (self.facts.title.strip() and not _words(title)) or not _words(body):
            if required:
                self.unable.append(f"{what}: it would leave the {'title' if not _words(title) else 'body'} empty")
            return False
        broken = self.faithful(title, body)
        if broken:
            if required:
                self.unable.append(f"{what}: it would change the stated {', '.join(repr(t.text) for t in broken)}")
            return False
        self.title, self.body = title, body
        self.changes.append(what)
        return True


def _fix(d: _Draft, lex: Lexicon | None, style: Style | None, goal: EditGoal, error: str, *, first: bool) -> None:
    """One round of edits for one error type; the first round also gives the segment's winning traits."""
    lang = d.facts.lang
    traits = goal.winning_traits if first else frozenset()
    if lex is not None:
        if error in ("audience_assumption_error", "irrelevant_offer"):
            _fix_relationship(d, lex)
        if error == "vague_incentive" or "concrete_value" in traits or (first and style and style.incentive_in_title):
            _state_incentive(d, lex, in_title=error == "vague_incentive" or bool(style and style.incentive_in_title),
                             required=error == "vague_incentive")
        f = features(d.title, d.body, lang)
        if error == "weak_call_to_action" or not f.has_cta or f.weak_close or "cta" in traits \
                or "has_urgency" in traits or (first and style and style.urgency):
            _call_to_action(d, lex, required=error == "weak_call_to_action")
    _fix_tone(d, lex, required=error == "misaligned_tone")


def rewrite(facts: OfferFacts, style: Style | None = None, goal: EditGoal | None = None) -> RuleRewrite:
    """Edit one weak template toward `goal`, with an exemplar's `style` on paths 1-2."""
    goal = goal or EditGoal()
    lang = facts.lang
    lex = LEXICONS.get(lang)
    d = _Draft(facts)
    if lex is None:
        d.unable.append(f"no phrase tables for language {lang!r}: edited tone, personal data, deadlines and length only")
    _remove_personal_data(d)
    _remove_passed_deadlines(d)
    error = goal.error_type or "none"
    fixed: set[str] = set()
    for round_ in range(3):  # fixing one error can uncover the next ("first order" gone, the offer is still vague)
        if round_:
            error = audit(facts.segment, d.title, d.body, lang, facts.voucher is not None).error_type
            if error == "none" or error in fixed:
                break
        fixed.add(error)
        _fix(d, lex, style, goal, error, first=round_ == 0)
    error = goal.error_type or "none"
    if (style and style.emoji) or "emoji" in goal.winning_traits:
        _add_emoji(d)
    if style and style.brief:
        _drop_filler(d, limit=90)
    _fit(d, lex, goal)
    if error != "none" and (d.title, d.body) == (facts.title, facts.body):
        d.unable.append(f"no edit fixes {error.replace('_', ' ')} without inventing or dropping a stated term")
    return RuleRewrite(d.title, d.body, lang, d.changes, d.unable, d.needs)


# --- edits -----------------------------------------------------------------------------------------
def _remove_personal_data(d: _Draft) -> None:
    personal = d.facts.reading.personal
    if not personal:
        return
    kinds = sorted({p.kind.replace("_", " ") for p in personal})

    def strip(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        for p in sorted(personal, key=lambda p: -p.start):
            text = out[p.field]
            start, end = p.start, p.end
            if text[start:end] != p.text:
                continue
            if p.kind in ("account_number", "order_number", "personal_code"):
                # "account ending 4605" -> "account"; "pesanan #2505281KQ7VX" -> "pesanan"
                lead = re.search(r"(?i)(?:\s+(?:ending(?:\s+in)?|ends?\s+with|berakhir(?:an)?(?:\s+dengan)?|no\.?|number|"
                                 r"nombor|nomor|số|ลงท้าย(?:ด้วย)?))?\s*[:#]?\s*[*•xX]*$", text[:start])
                start = lead.start() if lead else start
            out[p.field] = _cut(text, start, end)
        return out["title"], out["body"]

    if d.edit(f"removed personal data ({', '.join(kinds)}): the template goes to a whole segment", strip):
        d.needs.append("personalise with your CRM tool's placeholders if the message should address each reader")


_DEADLINE_LEAD = re.compile(r"(?i)(?:(?<![\w])(?:valid(?:\s+(?:until|till|from))?|ends?|until|till|from|berlaku|sah|"
                            r"hingga|sehingga|sampai|s/d|s\.d\.|hanggang|bago(?:\s+mag-)?|tamat|sebelum|before|by|"
                            r"ถึง|ภายใน|ก่อน|วันที่|đến(?:\s+hết)?(?:\s+ngày)?|từ|hạn|hsd|tới|ngày)\s*)+$")
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|to|until|hingga|sehingga|sampai|s/d|hanggang|đến|ถึง|~)\s*$", re.I)
_DEADLINE_TAIL = re.compile(r"(?i)(?:,?\s*(?:\d{1,2}[:.]\d{2}\s?(?:am|pm)?|only|lang|sahaja|saja|เท่านั้น|thôi))*")


def _stale_spans(d: _Draft, title: str, body: str) -> list[tuple[str, int, int]]:
    """(field, start, end) of each passed deadline in this text, a date range counted as one span."""
    spans: list[list] = []
    for t in sorted(d.facts.read(title, body).stale, key=lambda t: (t.field, t.start)):
        text = title if t.field == "title" else body
        gap = text[spans[-1][2]:t.start] if spans else ""
        if spans and spans[-1][0] == t.field and (spans[-1][2] >= t.start or _RANGE_JOIN.match(gap) or terms.companions(gap)):
            spans[-1][2] = max(spans[-1][2], t.end)
        else:
            spans.append([t.field, t.start, t.end])
    return [tuple(x) for x in spans]


def _remove_passed_deadlines(d: _Draft) -> None:
    stale = d.facts.reading.stale
    if not stale:
        return
    d.dropped_ok |= {t.key for t in stale}
    as_of = d.facts.as_of.isoformat() if d.facts.as_of else "the send date"

    def strip(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        for _ in range(8):  # one span at a time: a removed clause can take another span with it
            spans = _stale_spans(d, out["title"], out["body"])
            if not spans:
                break
            field_name, start, end = max(spans, key=lambda x: x[1])
            text = out[field_name]
            lead = _DEADLINE_LEAD.search(text[:start])
            start = lead.start() if lead else start
            label = re.search(r"(?:^|(?<=[.!?]\s))[^.!?:\n]{1,30}:\s*$", text[:start])  # "Promo period: <date>"
            start = label.start() if label else start
            tail = _DEADLINE_TAIL.match(text[end:])
            end += tail.end() if tail else 0
            # the whole deadline phrase goes: "HSD: 31/5", "28 Mei, 11:59PM"
            d.dropped_ok |= {t.key for t in d.facts.read(text[start:end], "").terms}
            out[field_name] = _remove_clause_or_phrase(text, start, end, limit=2)
        return out["title"], out["body"]

    written = ", ".join(f"'{w}'" for w in dict.fromkeys(t.text for t in stale))
    d.edit(f"removed the passed deadline {written}", strip)
    d.needs.append(f"a new deadline: {written} had passed by {as_of}; the rewrite does not invent one")


def _replace_phrases(d: _Draft, lex: Lexicon, categories: list[str], what: str, required: bool) -> None:
    lang = d.facts.lang

    def apply(title: str, body: str) -> tuple[str, str]:
        return tuple(_replace_in(text, lang, lex, categories) for text in (title, body))  # type: ignore[return-value]

    if not d.edit(what, apply, required=required) and required:
        still = [m.group() for c in categories for m in hits(lang, c, d.text)]
        if still:
            d.unable.append(f"{what}: could not reword {', '.join(repr(s) for s in still)}")


def _replace_in(text: str, lang: str, lex: Lexicon, categories: list[str]) -> str:
    """Reword or remove every phrase of these lists, one at a time from the right: a removed clause can take a
    neighbouring phrase with it, so the text is searched again after each edit."""
    for _ in range(24):
        found = [m for c in categories for m in hits(lang, c, text)]
        if not found:
            break
        m = max(found, key=lambda m: m.start())
        phrase = m.group().lower()
        table = lex.replace if phrase in lex.replace or phrase.rstrip("!?.") in lex.replace else LEXICONS["en"].replace
        replacement = table.get(phrase, table.get(phrase.rstrip("!?."), None))
        if replacement is None:
            text = _remove_clause_or_phrase(text, m.start(), m.end(), lex)
        elif not replacement:
            text = _cut(text, m.start(), m.end())
        else:
            opens = not text[:m.start()].strip() or bool(re.search(r"[.!?\n]\s*$", text[:m.start()]))
            if opens and m.group()[:1].isupper():
                replacement = replacement[:1].upper() + replacement[1:]
            text = text[:m.start()] + replacement + text[m.end():]
    return text


def _fix_relationship(d: _Draft, lex: Lexicon) -> None:
    wrong = [c for c, applies in _WRONG_FOR if applies(d.facts.segment)]
    _replace_phrases(d, lex, wrong, "reworded what assumes the wrong relationship with this audience", required=True)


_THRESHOLD = re.compile(r"(?:min\.?|minimum|spend|belanja|pembelian|purchase of|purchases?|orders? (?:above|over)|above|over|"
                        r"from|mula|dari|worth|pataas|ขั้นต่ำ|ครบ|từ|tối thiểu|giá|harga|now|only|lang|just|เหลือ|còn)\s*$")
_THRESHOLD_AFTER = re.compile(r"\s*(?:pataas|and above|ke atas|ขึ้นไป|trở lên)")
_BENEFIT_AFTER = re.compile(r"\s?(?:off|discount|cashback|rebate|voucher|diskaun|diskon|potongan|worth of vouchers)\b", re.I)
_BENEFIT_WORD_BEFORE = re.compile(r"(cashback|diskon|diskaun|discount|potongan|giảm|ลด|hoàn tiền)\s*$", re.I)
_BENEFIT_BEFORE = re.compile(r"(?:save|get|enjoy|dapatkan|dapat|nikmati|jimat|hemat|giảm|ลด|tipid|makakuha ng|extra|"
                             r"tambahan|thêm)\s*(?:up to|hingga|sehingga|s/d|hanggang)?\s*$", re.I)


def _incentive(d: _Draft, lang: str) -> tuple[str, str] | None:
    """(long, short) phrase of the concrete incentive: the voucher's, else the first value the text states."""
    if d.facts.voucher is not None:
        return incentive_phrases(d.facts.voucher, lang)
    def benefit(t: terms.Term) -> bool:
        text = d.facts.title if t.field == "title" else d.facts.body
        before, after = text[max(0, t.start - 24):t.start].lower(), text[t.end:t.end + 14].lower()
        if _THRESHOLD.search(before) or _THRESHOLD_AFTER.match(after):
            return False
        return t.kind in ("percent", "offer") or bool(_BENEFIT_AFTER.match(after) or _BENEFIT_BEFORE.search(before))

    values = [t for t in d.facts.reading.kept_terms if t.kind in ("amount", "percent", "offer")
              and not t.key.endswith(":0") and benefit(t)]
    if not values:
        return None
    t = values[0]
    text = d.facts.title if t.field == "title" else d.facts.body
    after = re.match(r"\s?(?i:off|discount|cashback|rebate|voucher|diskaun|diskon|potongan|giảm|ส่วนลด)\b", text[t.end:])
    before = _BENEFIT_WORD_BEFORE.search(text[max(0, t.start - 14):t.start]) if not after else None
    phrase = (before.group(1) + " " if before else "") + t.text + (after.group() if after else "")
    return phrase, phrase[:1].upper() + phrase[1:]


def _state_incentive(d: _Draft, lex: Lexicon, *, in_title: bool, required: bool) -> None:
    lang = d.facts.lang
    found = _incentive(d, lang)
    vague = re.compile(r"(?<!\w)(" + "|".join(re.escape(v) for v in lex.vague) + r")(?!\w)", re.I)
    if found is None:
        if required:
            def drop_promise(title: str, body: str) -> tuple[str, str]:
                # a clause that mentions a promotion and states no term of its own promises nothing real
                for _ in range(6):
                    stated = [(t.start, t.end) for t in d.facts.read("", body).terms]
                    promo = [m for m in list(vague.finditer(body)) + hits(d.facts.lang, "promo", body)
                             if not any(_clause_of(body, m.start())[0] <= s < _clause_of(body, m.start())[1]
                                        for s, _ in stated)]
                    if not promo:
                        break
                    m = promo[-1]
                    body = _remove_clause_or_phrase(body, m.start(), m.end(), lex, limit=4)
                return title, body

            if d.edit("dropped a promise of an offer that neither the voucher nor the text states", drop_promise,
                      required=False):
                d.needs.append("the offer's terms, if there is one: the message no longer promises an unstated deal")
            else:
                d.unable.append("state the incentive: neither the voucher nor the text says what the offer is")
                d.needs.append("the offer's terms (amount, percentage or free shipping)")
        return
    long, short = found

    def body_edit(title: str, body: str) -> tuple[str, str]:
        if terms.states_value(body) and not vague.search(body):
            return title, body
        m = vague.search(body)
        if m:
            return title, body[:m.start()] + long + body[m.end():]
        return title, _append_sentence(body, lex.incentive_sentence.format(incentive=long))

    d.edit("stated the concrete incentive instead of a vague one", body_edit, required=required)
    if in_title and d.title.strip() and not terms.states_value(d.title):
        def title_edit(title: str, body: str) -> tuple[str, str]:
            m = vague.search(title)
            if m:
                return title[:m.start()] + short + title[m.end():], body
            lead = re.match(f"[{_EMOJI_CHARS}\\s]*", title).group()
            return f"{lead}{short}: {title[len(lead):]}", body

        d.edit("put the incentive in the title", title_edit, required=False)


CODE_VERBS = frozenset({"Use", "Guna", "Pakai", "Gamitin", "Dùng", "Nhập mã", "ใช้โค้ด"})


def _verb(d: _Draft, lex: Lexicon) -> str:
    """The message's own verb: a voucher verb when there is a voucher, the segment's verb when the text uses
    it (pay, to unpaid-order buyers), else the first; with a code, "use" takes it ("Use code X")."""
    text = d.text.lower()
    voucher = d.facts.voucher is not None or bool(d.facts.reading.of_kind("code"))
    preferred = (lex.default_verb.get(INTENT_OF_SEGMENT[d.facts.segment]) or "").lower()
    found = []
    for written, imperative in lex.verbs:
        pattern = re.escape(written) if d.facts.lang in UNSPACED else rf"(?<![\w-]){re.escape(written)}(?![\w-])"
        m = re.search(pattern, text)
        if m:
            found.append((not (voucher and written in VOUCHER_VERBS), imperative.lower() != preferred, m.start(),
                          imperative))
    codes = [t for t in d.facts.reading.kept_terms if t.kind == "code"]
    found = [f for f in found if f[3] not in CODE_VERBS or codes]  # "Use now" says nothing without the code
    verb = min(found)[3] if found else (lex.default_verb.get(INTENT_OF_SEGMENT[d.facts.segment]) or lex.default_verb["*"])
    if verb in CODE_VERBS and codes and codes[0].text in d.text:
        word = "" if lex.code_word.lower() in verb.lower() else f"{lex.code_word} "
        verb = f"{verb} {word}{codes[0].text}"
    return verb


def _reason(d: _Draft, lex: Lexicon) -> str:
    deadline = d.facts.deadline
    if deadline is not None and deadline in d.text:
        return lex.by_deadline.format(deadline=deadline)
    if d.facts.expiry is not None:
        return lex.by_deadline.format(deadline=format_expiry(d.facts.expiry, d.facts.lang))
    found = _incentive(d, d.facts.lang)
    return lex.by_incentive.format(incentive=found[0]) if found else ""


def _call_to_action(d: _Draft, lex: Lexicon, *, required: bool) -> None:
    lang = d.facts.lang
    weak = hits(lang, "weak_close", d.text)
    if weak:
        def drop_weak(title: str, body: str) -> tuple[str, str]:
            return tuple(_replace_in(t, lang, lex, ["weak_close"]) for t in (title, body))  # type: ignore[return-value]

        d.edit("dropped the weak close", drop_weak, required=required)
    f = features(d.title, d.body, lang)
    reason = _reason(d, lex)
    if f.has_cta and (f.has_urgency or not reason):
        if required and not reason:
            d.unable.append("give a reason to act now: no deadline or concrete benefit is stated")
        return
    last_clause = d.body[_clauses(d.body)[-1][0]:] if d.body.strip() else ""
    if f.has_cta and reason and lang not in UNSPACED and hits(lang, "cta", last_clause):
        # the merchant's own call to action closes the message: tie the reason to it
        anchor = hits(lang, "cta", last_clause)[-1].group()

        def attach(title: str, body: str) -> tuple[str, str]:
            i = body.rfind(anchor)
            if i < 0:
                return title, body
            j = i + len(anchor)
            tail = re.match(r"(?:[^.!?\n\U0001F300-\U0001FAFF\u2600-\u27BF]|[.,](?=\d))*?"
                            r"(?=[.!?](?!\d)|[\n\U0001F300-\U0001FAFF\u2600-\u27BF]|$)", body[j:])
            j += tail.end() if tail and len(tail.group()) < 40 else 0
            rest = body[j:]
            return title, body[:j] + reason + (" " if rest[:1] and not rest[:1].isspace() and rest[:1] not in ".!?,"
                                               else "") + rest

        if d.edit("tied the call to action to the real reason to act now", attach, required=False):
            return
    sentence = lex.cta.format(verb=_verb(d, lex), reason=reason)
    d.edit("ended with an imperative call to action" + (" and the reason to act now" if reason else ""),
           lambda t, b: (t, _append_sentence(b, sentence)), required=required)


def _fix_tone(d: _Draft, lex: Lexicon | None, *, required: bool) -> None:
    lang = d.facts.lang

    def calm(title: str, body: str) -> tuple[str, str]:
        out = []
        for text in (title, body):
            if lex is not None:
                text = _replace_in(text, lang, lex, ["casual", "formal"])
            text = re.sub(r"([!?])\1+", r"\1", text)
            text = re.sub(r"([\U0001F300-\U0001FAFF\u2600-\u27BF]\ufe0f?)\1+", r"\1", text)  # 🔥🔥🔥 -> 🔥
            out.append(text)
        reading = d.facts.read(out[0], out[1])
        return _unshout(out[0], reading, "title", lang), _unshout(out[1], reading, "body", lang)

    f = features(d.title, d.body, lang)
    if f.casual or f.formal or f.shouting or required:
        if not d.edit("neutral register: no slang, stiff formulas or shouting", calm, required=required) and required:
            d.unable.append("misaligned tone: nothing to reword in this language's tables")


def _unshout(text: str, reading: terms.Reading, field_name: str, lang: str = "en") -> str:
    """Shouted sentences in sentence case: names and dates in Title Case; codes, links and short acronyms kept."""
    spans = [(t.start, t.end, t.kind) for t in reading.terms if t.field == field_name]

    def case(m: re.Match, offset: int) -> str:
        w = m.group()
        kind = next((k for s, e, k in spans if s <= m.start() + offset < e), None)
        acronym = len(w) <= 3 and w.isascii() and w.lower() not in _COMMON_CAPS and (kind == "name" or lang != "vi")
        if not w.isupper() or kind in ("code", "url", "placeholder", "phone") or acronym:
            return w
        return w.capitalize() if kind is not None else w.lower()

    def calm(sentence: re.Match) -> str:
        chunk = sentence.group()
        words = re.findall(r"[^\W\d_]{2,}", chunk)
        if len(words) < 2 or sum(w.isupper() for w in words) < 0.6 * len(words):
            return chunk
        chunk = re.sub(r"(?<![\w'’])[^\W\d_](?:[^\W\d_]|['’](?=[^\W\d_]))+(?![\w])",
                       lambda m: case(m, sentence.start()), chunk)
        return re.sub(r"^(\W*)([a-z])", lambda m: m.group(1) + m.group(2).upper(), chunk)

    return re.sub(r"[^.!?\n]+[.!?\n]*", calm, text)


_COMMON_CAPS = frozenset({"now", "buy", "pay", "off", "get", "all", "new", "for", "the", "and", "you", "out", "min",
                          "max", "up", "to", "sale", "hot", "big", "don", "yes", "our", "its", "lang", "na", "ng", "sa",
                          "ang", "mo", "ka", "dan", "ini", "itu", "je", "ya"})


def _add_emoji(d: _Draft) -> None:
    if not d.title.strip() or _EMOJI.search(d.title):
        return
    mark = EMOJI_BY_INTENT[INTENT_OF_SEGMENT[d.facts.segment]][0]
    d.edit("an emoji in the title, as the segment's winners have", lambda t, b: (f"{mark} {t}", b), required=False)


def _drop_filler(d: _Draft, limit: int) -> None:
    """Drop clauses that state no term, no call to action and no legal line, longest first, until the body
    fits `limit`."""
    lang = d.facts.lang

    def cut(title: str, body: str) -> tuple[str, str]:
        clauses = _clauses(body)
        keep = [True] * len(clauses)
        reading = d.facts.read("", body)
        protected = [(t.start, t.end) for t in reading.terms]
        candidates = []
        for i, (s, e) in enumerate(clauses):
            chunk = body[s:e]
            if any(s < te and ts < e for ts, te in protected) or _KEEP_CLAUSE.search(chunk) or hits(lang, "cta", chunk):
                continue
            candidates.append((-(e - s), i))
        total = len(body)
        for neg, i in sorted(candidates):
            if total <= limit:
                break
            keep[i] = False
            total += neg
        return title, "".join(body[s:e] for (s, e), k in zip(clauses, keep) if k)

    d.edit(f"dropped filler to fit {limit} characters", cut, required=False)


def _fit(d: _Draft, lex: Lexicon | None, goal: EditGoal) -> None:
    max_title, max_body = limits_for(goal.channel, goal.limits)
    if len(d.body) > max_body:
        d.edit("collapsed spacing to fit", lambda t, b: (t, re.sub(r"\s+", " ", b).strip()), required=False)
    if len(d.body) > max_body:
        def dedupe(title: str, body: str) -> tuple[str, str]:
            seen, kept = set(), []
            for s_, e in _clauses(body):
                key = re.sub(r"\W+", " ", body[s_:e]).strip().lower()
                if key and key in seen:
                    continue
                seen.add(key)
                kept.append(body[s_:e])
            return title, "".join(kept)

        d.edit("dropped repeated sentences to fit", dedupe, required=False)
    if len(d.body) > max_body and lex is not None:
        def shorten(title: str, body: str) -> tuple[str, str]:
            for long, short in lex.shorten:
                if len(body) <= max_body:
                    break
                body = re.sub(rf"(?i)(?<!\w){re.escape(long.strip())}(?!\w)" if long.strip() == long else re.escape(long),
                              short, body)
            return title, body

        d.edit("shortened wording to fit", shorten, required=False)
    if len(d.body) > max_body:
        _drop_filler(d, limit=max_body)
    if len(d.body) > max_body:
        d.edit("dropped emoji to fit", lambda t, b: (t, re.sub(r"\s*" + _EMOJI.pattern, "", b)), required=False)
    if len(d.title) > max_title:
        d.edit("dropped emoji from the title to fit", lambda t, b: (re.sub(r"\s*" + _EMOJI.pattern, "", t).strip(), b),
               required=False)
    if len(d.title) > max_title:
        def trim_title(title: str, body: str) -> tuple[str, str]:
            clauses = _clauses(title)
            while len(clauses) > 1 and clauses[-1][1] > max_title:
                clauses.pop()
            return title[:clauses[-1][1]].rstrip(" ,;:-"), body

        d.edit("shortened the title to fit", trim_title, required=False)
    over = [f"title {len(d.title)} > {max_title}"] * (len(d.title) > max_title)
    over += [f"body {len(d.body)} > {max_body}"] * (len(d.body) > max_body)
    if over:
        d.unable.append(f"the stated terms alone do not fit the {goal.channel} limit ({', '.join(over)})")


# --- text helpers ----------------------------------------------------------------------------------
def _clauses(text: str) -> list[tuple[int, int]]:
    """Spans that together cover `text`, each ending after its delimiter."""
    out, start = [], 0
    for m in _CLAUSE_END.finditer(text):
        if m.group() == ".":
            word = re.search(r"([^\W_]+)$", text[:m.start()])
            if (word and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1)) or \
                    re.match(r"\d", text[m.end():m.end() + 1]):
                continue
        out.append((start, m.end()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return out


def _clause_of(text: str, i: int) -> tuple[int, int]:
    return next(((s, e) for s, e in _clauses(text) if s <= i < e), (0, len(text)))


def _remove_clause_or_phrase(text: str, start: int, end: int, lex: Lexicon | None = None, limit: int = 3) -> str:
    """Remove a phrase; when little else is left of its clause (`limit` words), remove the whole clause."""
    spans = [(s, e) for s, e in _clauses(text) if s < end and start < e]
    if spans:
        s, e = spans[0][0], spans[-1][1]
        rest = re.findall(r"[^\W\d_]+", text[s:start] + " " + text[end:e])
        if len(rest) <= limit:
            return _cut(text, s, e)
    if lex is not None and lex.dangling and re.match(r"\s*(?:[.!?,;:]|$)", text[end:]):
        # "for the [first time]." -> drop the function words the phrase leaves hanging
        words = "|".join(re.escape(w) for w in lex.dangling)
        lead = re.search(rf"(?i)(?:\s+(?:{words}))+\s*$", text[:start])
        if lead:
            start = lead.start()
    return _cut(text, start, end)


def _cut(text: str, start: int, end: int) -> str:
    """Remove text[start:end]; if that removes a sentence's start, the rest of it starts with a capital."""
    before, after = text[:start], text[end:]
    if before.strip() and not re.search(r"[.!?\n]\s*$", before):
        return before + after
    after = re.sub(r"^[\s,;:!?.-]+", lambda m: "\n" if "\n" in m.group() else " " if before else "", after)
    i = len(after) - len(after.lstrip())
    if after[i:i + 1].islower() and not re.match(r"[a-z]+[A-Z]", after[i:]):
        after = after[:i] + after[i].upper() + after[i + 1:]
    gap = " " if before and not before[-1].isspace() and after and not after[0].isspace() else ""
    return before + gap + after


def _append_sentence(body: str, sentence: str) -> str:
    body = body.rstrip()
    trailing = re.search(f"([{_EMOJI_CHARS}\\s]+)$", body)
    tail = trailing.group() if trailing else ""
    core = body[: len(body) - len(tail)].rstrip()
    if core and core[-1] not in ".!?。":
        core += "."
    return f"{core} {sentence}{tail}".strip()


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    # never join digits: "0 .5" or "0..0" must not become a new number
    text = re.sub(r"\s+([,.!?;:])(?!\d)", r"\1", text)
    text = re.sub(r"([,;:])\s*([.!?])(?!\d)", r"\2", text)
    text = re.sub(r"(?<!\d)([.!?])[.,;:]+(?!\d)", r"\1", text)
    text = re.sub(r"^[\s,.;:!?-]+", "", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"(?i)\b(is|are|ay|adalah)\s+(?:and|at|dan)\s+(?=\1\b)", "", text)  # "is [valid until X] and is"
    return re.sub(r"[,;:]\s*$", "", text.strip(" \t"))
