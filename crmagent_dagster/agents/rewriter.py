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
from crmagent_dagster.agents.auditor import audit_message
from crmagent_dagster.agents.facts import OfferFacts
from crmagent_dagster.agents.guardrails import limits_for, new_meanings, sms_capacity, sms_parts
from crmagent_dagster.agents.text_features import (
    BOUGHT_OFTEN,
    HAVE_BOUGHT,
    KNOW_THE_SHOP,
    PURCHASE_PENDING,
    UNFAMILIAR,
    exhorts,
    features,
)
from crmagent_dagster.lexicon import lexicon, lexicons
from crmagent_dagster.vocabulary import (
    EMOJI_BY_INTENT,
    INCENTIVE_FORMATS,
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
    vague_hint: tuple[str, ...]
    shorten: tuple[tuple[str, str], ...] = ()
    dangling: tuple[str, ...] = ()  # function words left hanging before punctuation after a removal
    code_word: str = "code"
    voucher_verbs: tuple[str, ...] = ()  # as found in text: the verbs that take a voucher
    code_verbs: tuple[str, ...] = ()  # imperatives that need the code after them ("Use code X")
    shop_verbs: tuple[str, ...] = ()  # imperatives that mean shopping
    not_shopping: tuple[str, ...] = ()  # what is not shopped: a loan, a load, a bill, a plan




def _lexicon_of(data: dict) -> Lexicon:
    """A language file's [rewrite] section as the editor's Lexicon."""
    return Lexicon(verbs=tuple(tuple(v) for v in data["verbs"]), default_verb=dict(data["default_verb"]),
                   cta=data["cta"], by_deadline=data["by_deadline"], by_incentive=data["by_incentive"],
                   incentive_sentence=data["incentive_sentence"], replace=dict(data.get("replace") or {}),
                   vague=tuple(data.get("vague") or ()), vague_hint=tuple(data.get("vague_hint") or ()), shorten=tuple(tuple(x) for x in data.get("shorten") or ()),
                   dangling=tuple(data.get("dangling") or ()), code_word=data.get("code_word") or "code",
                   voucher_verbs=tuple(data.get("voucher_verbs") or ()), code_verbs=tuple(data.get("code_verbs") or ()),
                   shop_verbs=tuple(data.get("shop_verbs") or ()), not_shopping=tuple(data.get("not_shopping") or ()))


LEXICONS: dict[str, Lexicon] = {c: _lexicon_of(x.rewrite) for c, x in lexicons().items() if x.rewrite}
# Clauses a length cut must not drop even though they state no term: the law and the way out.
_KEEP_CLAUSE = re.compile(r"(?i)t&c|terms|syarat|s&k|dti|permit|fteb|stop|unsub|opt[- ]?out|unreg|berhenti|"
                          r"tu choi|từ chối|ยกเลิก|bawal|rm0|\b(?:min|max|maks|minimum|maximum|only|per|each|up to|valid|"
                          r"excl|incl|hanya|lang|limit|limited)\b|chỉ|เท่านั้น|ขั้นต่ำ|tối thiểu|tối đa")
# The closing lines a reader acts on or the law asks for: nothing generic goes after them.
_FOOTER = re.compile(r"(?i)\b(?:stop|unsub\w*|opt[- ]?out|unreg|berhenti|t&cs?|tncs?|terms\s+(?:and|&)\s+conditions|"
                     r"syarat|s&k|per\s+dti|dti|fda|permit|bsp|fteb|ser\.?\s*no|regulated|diawasi|terdaftar\s+di)\b")
# Which phrase lists are wrong for which audiences (the audit's reading).
_WRONG_FOR = (
    ("prior_relationship", lambda s: s in UNFAMILIAR),
    ("following", lambda s: s == "potential_new_customers"),
    ("treats_as_new", lambda s: s in KNOW_THE_SHOP),
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
        changed_title, changed_body = change(self.title, self.body)
        title, body = _tidy(changed_title), _tidy(changed_body)
        if (title, body) == (self.title, self.body):
            return False
        # tidying reaches a field the edit did not touch ("Big Sale!!  " loses its spaces): say so, never silently
        tidied = [name for name, before, edited, after in (("title", self.title, changed_title, title),
                                                            ("body", self.body, changed_body, body))
                  if edited == before and after != before]
        if (self.facts.title.strip() and not _words(title)) or not _words(body):
            if required:
                self.unable.append(f"{what}: it would leave the {'title' if not _words(title) else 'body'} empty")
            return False
        broken = self.faithful(title, body)
        if broken:
            if required:
                self.unable.append(f"{what}: it would change the stated {', '.join(repr(t.text) for t in broken)}")
            return False
        if self.facts.channel == "sms" and sms_parts(body) > max(1, sms_parts(self.facts.body), sms_parts(self.body)):
            if required:
                self.unable.append(f"{what}: it would send the SMS in {sms_parts(body)} parts")
            return False
        moved = new_meanings(self.facts.reading, self.facts.read(title, body))
        if moved:
            if required:
                self.unable.append(f"{what}: it would give {'; '.join(moved)}")
            return False
        self.title, self.body = title, body
        self.changes.append(what)
        self.changes += [f"tidied the {name}'s spacing and punctuation" for name in tidied]
        return True


def _fix(d: _Draft, lex: Lexicon | None, error: str) -> None:
    """One round of edits for the audited error."""
    if lex is None:
        if error == "misaligned_tone":
            _fix_tone(d, lex, required=True)
        return
    if error in ("audience_assumption_error", "irrelevant_offer"):
        _fix_relationship(d, lex)
    if error == "vague_incentive":
        _state_incentive(d, lex, in_title=True, required=True)
    if error in ("weak_call_to_action", "misaligned_tone") and d.facts.kind.guessed:
        # all-caps bills and terse notices read as "marketing" only for want of a cue: a sales close or a new
        # register on them is no sure fix
        d.unable.append(f"fix {error.replace('_', ' ')}: nothing marks the message as marketing copy (no offer, no "
                        "cue of any kind), so neither a call to action nor a new tone is sure")
        return
    if error == "weak_call_to_action":
        _call_to_action(d, lex, required=True)
    if error == "misaligned_tone":
        _fix_tone(d, lex, required=True)


def rewrite(facts: OfferFacts, style: Style | None = None, goal: EditGoal | None = None) -> RuleRewrite:
    """Edit one weak template toward `goal`, with an exemplar's `style` on paths 1-2, where the fix is sure.

    Any message loses personal data and, where its sentence stays whole without it, a passed deadline. Marketing
    copy (an offer, an announcement) also gets the fix for its audited Appendix D error. A reminder, confirmation,
    advisory or warning keeps its purpose and wording. What could not be fixed with confidence is in `unable`,
    and what a person must supply in `needs`."""
    goal = goal or EditGoal()
    lang = facts.lang
    lex = LEXICONS.get(lang)
    d = _Draft(facts)
    if lex is None:
        d.unable.append(f"no phrase tables for language {lang!r}: edited tone, personal data, deadlines and length only")
    _remove_personal_data(d)
    _remove_passed_deadlines(d)
    error = goal.error_type or "none"
    if facts.kind.marketing:
        if lex is not None and error != "vague_incentive":
            _state_voucher(d, lex, lead=bool(style and style.incentive_in_title) or "concrete_value" in goal.winning_traits)
        fixed: set[str] = set()
        for round_ in range(3 if error != "none" else 1):
            # fixing one error can uncover the next ("first order" gone, the offer is still vague); a message whose
            # audit found none is not audited again after a passed date or personal data comes out
            if round_:
                error = audit_message(facts, d.title, d.body).error_type
                if error == "none" or error in fixed:
                    break
            fixed.add(error)
            before = (d.title, d.body, len(d.changes), len(d.needs))
            _fix(d, lex, error)
            if error != "none" and (d.title, d.body) != before[:2] \
                    and audit_message(facts, d.title, d.body).error_type == error:
                # edits that leave the error standing only change words: undo them
                d.title, d.body = before[:2]
                del d.changes[before[2]:], d.needs[before[3]:]
                d.unable.append(f"fix {error.replace('_', ' ')}: the sure edits leave it standing")
                break
        error = goal.error_type or "none"
        if d.changes and ((style and style.emoji) or "emoji" in goal.winning_traits):
            _add_emoji(d)  # the winners' look, only on a message that needed a fix anyway
    _fit(d, lex, goal)
    if error != "none" and (d.title, d.body) == (facts.title, facts.body):
        d.unable.append(f"no rule fixes {error.replace('_', ' ')} with confidence without inventing or dropping a "
                        "stated term; an LLM or a person can rewrite it")
    return RuleRewrite(d.title, d.body, lang, d.changes, d.unable, d.needs)


def notice_edits(facts: OfferFacts) -> RuleRewrite | None:
    """The sure edits of a message that is not marketing copy; the rest of its wording stays. A customer's name
    leaves its greeting (every reader would get it), and a reminder or bill loses a close that tells the reader
    not to bother ("settle it whenever you feel like it"), with no sales line in its place. None: nothing to do."""
    d = _Draft(facts)
    left = _drop_greeted_names(d, facts.reading.personal)
    if facts.kind.kind == "reminder_bill" and hits(facts.lang, "weak_close", d.text):
        d.edit("dropped the close that tells the reader not to bother",
               lambda t, b: _without_weak_close(t, b, facts.lang), required=False)
    if not d.changes:
        return None
    if left:
        d.needs.append("your CRM tool's placeholders in place of " + ", ".join(f"'{p.text}'" for p in left))
    return RuleRewrite(d.title, d.body, facts.lang, d.changes, d.unable, d.needs)


# --- edits -----------------------------------------------------------------------------------------
_GREETING_LEAD = re.compile(r"(?i)(?:^|(?<=[.!?:\n]\s)|(?<=[.!?\n]))\W*(?:hi|hello|hey|dear|hai|halo|helo|hallo|kak|ka|"
                            r"yth\.?|chào|xin chào|kumusta)\s+(?:(?:bapak|ibu|pak|bu|mr\.?|ms\.?|mrs\.?|encik|cik|puan|tuan|"
                            r"kuya|ate|anh|chị|em)\s+)?$")


def _parenthesis_around(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of a parenthesis holding text[start:end] and at most two other words, or None."""
    left, right = text.rfind("(", 0, start), text.find(")", end)
    if left < 0 or right < 0 or ")" in text[left:start] or "(" in text[end:right]:
        return None
    rest = text[left + 1:start] + " " + text[end:right]
    return (left, right + 1) if len(_words(rest)) <= 2 and not re.search(r"\d", rest) else None


def _remove_personal_data(d: _Draft) -> None:
    """Personal data out of a marketing template that goes to a whole segment: a greeting with the name goes whole
    ("Dear Scott, join ..." -> "Join ..."), a number with its lead ("account ending 4605" -> "account"). A
    confirmation or a reminder is written to one person by nature: its order or account number is flagged for a
    placeholder, not cut (a bare "Order" says less than "Order #8199812605")."""
    personal = d.facts.reading.personal
    if not personal:
        return
    kinds = sorted({p.kind.replace("_", " ") for p in personal})
    if not d.facts.kind.marketing:
        personal = _drop_greeted_names(d, personal)
        if not personal:
            return
        kinds = sorted({p.kind.replace("_", " ") for p in personal})
        d.unable.append(f"remove the personal data ({', '.join(kinds)}): a {d.facts.kind.label} is written to one "
                        "person, and without it the message says less")
        d.needs.append("your CRM tool's placeholders in place of " + ", ".join(f"'{p.text}'" for p in personal))
        return

    blocked: list[str] = []

    def strip(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        blocked.clear()
        for p in sorted(personal, key=lambda p: -p.start):
            text = out[p.field]
            start, end = p.start, p.end
            if text[start:end] != p.text:
                continue
            greeting = _GREETING_LEAD.search(text[:start]) if p.kind == "person_name" else None
            if greeting:  # "Dear Scott, join" -> "Join"; "Hi Wei Ling, your voucher" -> "Your voucher"
                start = greeting.start() + len(greeting.group()) - len(greeting.group().lstrip(" \t\W"))
                end += len(re.match(r"\s*[,!:;]?\s*", text[end:]).group())
            elif p.kind == "person_name" and text[:start].endswith("คุณ"):
                start -= len("คุณ")  # "คุณสมชาย แต้มของคุณ" -> "แต้มของคุณ"
                end += len(re.match(r"\s*", text[end:]).group())
            elif p.kind == "person_name" and re.match(r"\s*,\s*", text[end:]) and \
                    re.search(r"(?:^|[.!?\n])\s*$", text[:start]):
                end += re.match(r"\s*,\s*", text[end:]).end()  # "Rachel, your treat is inside" -> "Your treat ..."
            elif p.kind == "person_name" and _parenthesis_around(text, start, end) is None and \
                    not re.match(r"\s*[!?.]", text[end:]) and not re.search(r",\s*$", text[:start]):
                blocked.append(p.text)  # a name inside a sentence, with no greeting to go with it
                continue
            elif p.kind == "person_name" and re.search(r",\s*$", text[:start]):
                start = re.search(r",\s*$", text[:start]).start()  # "Salamat, Juan!" -> "Salamat!"
            elif p.kind != "person_name":
                span = (_parenthesis_around(text, *_with_label(text, start, end))
                        or _trailing_phrase(text, start, end, d.facts.lang)
                        or _inline_number(text, start, end, d.facts.lang))
                if span is None:
                    blocked.append(p.text)  # "from XXXXXXXX7428 for 1 year": cutting it breaks the sentence
                    continue
                start, end = span
            paren = _parenthesis_around(text, start, end)
            if paren is not None:  # "(member ****8821)", "(card ending 4605)": nothing left worth the brackets
                start, end = paren
            out[p.field] = _cut(text, start, end)
        return out["title"], out["body"]

    if d.edit(f"removed personal data ({', '.join(kinds)}): the template goes to a whole segment", strip):
        d.needs.append("personalise with your CRM tool's placeholders if the message should address each reader")
    if blocked:
        d.unable.append("remove the personal data " + ", ".join(f"'{b}'" for b in blocked) + ": it sits inside a "
                        "sentence that would break without it")
        d.needs.append("your CRM tool's placeholders in place of " + ", ".join(f"'{b}'" for b in blocked))


_GREETED = re.compile(rf"(?i)(?:^|(?<=\W))(?:hi|hello|hey|dear|hai|halo|helo|hallo|kak|yth\.?|chào|xin chào|kumusta|salam|"
                      rf"assalamu['’]?alaikum)(?P<honorific>\s+{terms.HONORIFIC_PATTERN})?\s+$")


def _drop_greeted_names(d: _Draft, personal: tuple[terms.Personal, ...]) -> tuple[terms.Personal, ...]:
    """A reminder or a confirmation keeps its greeting but not one customer's name in it: "Salam Puan Nurul 😊" ->
    "Salam 😊", "สวัสดีค่ะคุณวรรณวิสา 🙏" -> "สวัสดีค่ะ 🙏" (every reader would get her name). Returns what is left."""
    greeted = []
    for p in personal:
        text = d.facts.title if p.field == "title" else d.facts.body
        m = _GREETED.search(text[:p.start]) if p.kind == "person_name" else None
        if m:
            greeted.append((p, m.start("honorific") if m.group("honorific") else len(text[:p.start].rstrip())))
        elif p.kind == "person_name" and text[:p.start].endswith("คุณ") and \
                re.search(r"(?:ค่ะ|คะ|ครับ|สวัสดี)$", text[:p.start - len("คุณ")]):
            greeted.append((p, p.start - len("คุณ")))
    if not greeted:
        return personal

    def strip(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        for p, start in sorted(greeted, key=lambda g: -g[0].start):
            text = out[p.field]
            if text[p.start:p.end] == p.text:
                out[p.field] = text[:start] + text[p.end:]
        return out["title"], out["body"]

    if not d.edit("removed a customer's name from the greeting: the template goes to every reader", strip,
                  required=False):
        return personal
    d.needs.append("personalise with your CRM tool's placeholders if the message should address each reader")
    done = {id(p) for p, _ in greeted}
    return tuple(p for p in personal if id(p) not in done)


# The words that label a personal number ("for account number ending 4605", "untuk pesanan #123") and the
# prepositions that open such a phrase: the phrase goes whole only where it closes its sentence.
_LABEL = (r"(?:account|acct|a/c|card|order|mobile|phone|number|no\.?|nos?\.|ending|in|with|ends?|your|the|ref|"
          r"reference|member|id|akaun|kad|nombor|pesanan|anda|rekening|kartu|nomor|akun|kamu|numero|ng|iyong|mo|"
          r"tài khoản|số|thẻ|đơn hàng|mã|berakhir(?:an)?|dengan|บัญชี|หมายเลข|เลขที่|ลงท้ายด้วย)")
_OPENS_PHRASE = (r"(?:for|to|from|on|of|at|via|untuk|ke|dari|pada|bagi|sa|para sa|mula sa|cho|của|từ|ของ|สำหรับ|จาก)")


def _with_label(text: str, start: int, end: int) -> tuple[int, int]:
    """The number with the words that label it before it ("card ending 4605" for "4605")."""
    lead = re.search(rf"(?i)(?:(?<![\w])(?:{_LABEL})\s*[:#]?\s*)+[*•xX]*$", text[:start])
    return (lead.start() if lead else start), end


def _inline_number(text: str, start: int, end: int, lang: str) -> tuple[int, int] | None:
    """"Your BDO account ending 4605 gets ..." -> "Your BDO account gets ...": the number goes with the words
    that only point at it ("ending", "no.", "#") where a noun stays before it and the sentence goes on after it."""
    lead = re.search(r"(?i)(?:\s+(?:ending(?:\s+in)?|ends?\s+with|berakhir(?:an)?(?:\s+dengan)?|no\.?|"
                     r"nombor|nomor|số|ลงท้าย(?:ด้วย)?))?\s*[:#]?\s*[*•xX]*$", text[:start])
    cut_from = lead.start() if lead else start
    before, after = text[:cut_from], text[end:]
    nxt = re.match(r"\s+([^\W\d_][\w'’-]*)", after)
    if not re.search(r"[^\W\d_]\s*$", before) or re.search(_dangling(lang), before) or nxt is None or \
            re.search(_dangling(lang), " " + nxt.group(1)) or re.fullmatch(rf"(?i){_OPENS_PHRASE}", nxt.group(1)):
        return None  # "from card XXXXXXXX7428 for 1 year": "from card for" says nothing
    return cut_from, end


def _trailing_phrase(text: str, start: int, end: int, lang: str) -> tuple[int, int] | None:
    """The phrase "for account number ending 4605" when it closes its sentence and what stays reads whole
    ("... using the invite code 7E3AF4."), else None."""
    if not re.fullmatch(rf"[\s{_EMOJI_CHARS}]*(?:[.!?](?:\s|$)[\s\S]*|$)", text[end:]):
        return None
    lead_start = _with_label(text, start, end)[0]
    opens = re.search(rf"(?i)(?<![\w])(?:{_OPENS_PHRASE})\s+$", text[:lead_start])
    if not opens:
        return None
    cut_from = opens.start()
    s_, _ = _sentence_of(text, start, end)
    kept = text[s_:cut_from].rstrip(" ,")
    if len(_words(kept)) < 3 or re.search(_dangling(lang), kept):
        return None
    return cut_from - (len(text[:cut_from]) - len(text[:cut_from].rstrip())), end


# The words that lead a deadline in any language file ("valid until", "s.d.", "hanggang", "áp dụng đến"), repeated
# ("berlaku s.d."), so a cut takes the lead with the date.
_DEADLINE_LEAD = re.compile(r"(?i)(?:(?<![\w])(?:" + "|".join(re.escape(w) for w in terms.role_words("until", "book", "start"))
                            + r"|hsd|ngày|วันที่)\s*)+$")
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|to|until|hingga|sehingga|sampai|s/d|hanggang|đến|ถึง|~)\s*$", re.I)
_DEADLINE_TAIL = re.compile(r"(?i)(?:,?\s*(?:\d{1,2}[:.]\d{2}\s?(?:am|pm)?|only|lang|sahaja|saja|นี้|เท่านั้น|thôi))*")


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
    """A passed offer deadline comes out where the sentence around it stays whole ("valid until 30 May." at a
    clause's end, "(s.d. 22 Mei)", a "Promo period: ..." sentence); else a person sets the new date. A passed
    travel or event day is never cut: the message is out of date, and a person must look at it."""
    stale = d.facts.reading.stale
    if not stale:
        return
    as_of = d.facts.as_of.isoformat() if d.facts.as_of else "the send date"
    days = [t for t in stale if t.kind == "date" and t.role in ("travel", "event")]
    deadlines = [t for t in stale if t not in days]
    if days:
        written = ", ".join(f"'{w}'" for w in dict.fromkeys(t.text for t in days))
        d.needs.append(f"a check that the message is still current: it refers to {written}, which had passed by {as_of}")
    if not deadlines:
        return
    d.dropped_ok |= {t.key for t in deadlines}
    written = ", ".join(f"'{w}'" for w in dict.fromkeys(t.text for t in deadlines))
    if d.facts.expiry is not None and _to_expiry(d, deadlines):
        return
    broken: list[str] = []

    def strip(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        for _ in range(8):  # one span at a time, from the right
            spans = [s_ for s_ in _stale_spans(d, out["title"], out["body"]) if s_ not in broken]
            if not spans:
                break
            field_name, start, end = max(spans, key=lambda x: x[1])
            cut = _deadline_cut(out[field_name], start, end, d.facts.lang)
            if cut is None:
                broken.append((field_name, start, end))
                continue
            text = out[field_name]
            d.dropped_ok |= {t.key for t in d.facts.read(text[cut[0]:cut[1]], "").terms}
            out[field_name] = _cut(text, *cut)
        return out["title"], out["body"]

    if d.edit(f"removed the passed deadline {written}", strip, required=False) and not broken:
        d.needs.append(f"a new deadline: {written} had passed by {as_of}; the rewrite does not invent one")
        return
    d.unable.append(f"remove the passed deadline {written}: the sentence around it would not stay whole without it")
    d.needs.append(f"a new date in place of {written}, which had passed by {as_of}: a person must set it")


def _to_expiry(d: _Draft, deadlines: list[terms.Term]) -> bool:
    """A passed deadline the campaign's voucher outlives becomes the voucher's expiry, written the way the text
    writes its dates ("s/d 30 Juni" -> "s/d 15 Jul", "30/6" -> "20/7"): the date comes from the campaign's data, so
    the fix is sure. Only single dates: a passed range needs a person."""
    expiry = d.facts.expiry
    keys = {t.key for t in deadlines}
    if any(t.key != deadlines[0].key for t in deadlines if t.text == deadlines[0].text) or \
            any(sum(u.text == t.text for u in deadlines) > 1 for t in deadlines):
        return False  # "1-31 Des" names two days in one span

    def written(t: terms.Term) -> str:
        if re.fullmatch(r"\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?", t.text):
            sep = re.search(r"[/.-]", t.text).group()
            first, second = (expiry.month, expiry.day) if d.facts.reading and terms.Market.of(
                d.facts.lang, d.facts.currency).month_first else (expiry.day, expiry.month)
            year = re.search(r"[/.-](\d{2,4})$", t.text[t.text.index(sep) + 1:])
            return f"{first}{sep}{second}" + (f"{sep}{expiry.year if len(year.group(1)) == 4 else expiry.year % 100:02d}"
                                             if year else "")
        lex_ = lexicon(d.facts.lang)
        word = re.search(r"[^\W\d_]+", t.text)
        month = format_expiry(expiry, d.facts.lang).split(" ", 1)[-1]
        if word and lex_.month_names and len(word.group()) > len(lex_.month_abbr[0] if lex_.month_abbr else "Jan") \
                and word.group().lower() in {n.lower() for n in lex_.month_names}:
            month = lex_.month_names[expiry.month - 1]  # the text writes its months out: "15 Ogos" -> "31 Ogos"
        if re.match(r"[^\W\d_]", t.text):  # "June 30": month first
            return f"{month} {expiry.day}"
        return f"{expiry.day} {month}" if d.facts.lang != "vi" else format_expiry(expiry, d.facts.lang)

    def swap(title: str, body: str) -> tuple[str, str]:
        out = {"title": title, "body": body}
        for t in sorted(deadlines, key=lambda t: -t.start):
            text = out[t.field]
            if text[t.start:t.end] == t.text and t.role in ("until", "book", "pay", "date"):
                out[t.field] = text[:t.start] + written(t) + text[t.end:]
        return out["title"], out["body"]

    old = ", ".join(f"'{t.text}'" for t in deadlines)
    if not d.edit(f"replaced the passed deadline {old} with the voucher's expiry", swap, required=False):
        return False
    if {t.key for t in d.facts.read(d.title, d.body).terms} & keys:
        return False
    d.needs.append(f"a check of the new deadline: {old} had passed; the voucher in the campaign's data runs until "
                   f"{expiry.isoformat()}")
    return True


def _deadline_cut(text: str, start: int, end: int, lang: str) -> tuple[int, int] | None:
    """The span to cut for a passed deadline at text[start:end], or None when no cut leaves whole sentences.

    Cut: the whole sentence when it says nothing but the deadline ("Valid until 30 May.", "Promo period: 1-31
    May."); a parenthesis that holds only the deadline; the deadline with its lead ("until", "s.d.", "hanggang")
    when it closes its clause and the clause keeps two words. Nothing else."""
    tail = _DEADLINE_TAIL.match(text[end:])
    end += tail.end() if tail else 0
    lead = _DEADLINE_LEAD.search(text[:start])
    phrase_start = lead.start() if lead else start
    sentence = _sentence_of(text, phrase_start, end)
    rest = text[sentence[0]:phrase_start] + " " + text[end:sentence[1]]
    label = re.fullmatch(r"\s*[^.!?:\n]{1,30}:\s*", text[sentence[0]:phrase_start])  # "Promo period: <date>"
    if len(_words(rest)) <= 3 and not _KEEP_CLAUSE.search(rest) and (lead or label) and not _has_terms(rest, lang):
        return sentence
    before, after = text[:phrase_start], text[end:]
    if re.search(r"\(\s*$", before) and re.match(r"\s*\)", after):
        return before.rstrip().rstrip("(").__len__(), end + re.match(r"\s*\)", after).end()
    closes = re.match(r"\s*(?:[.!?;)\n]|,\s|$)", after)
    if lead is None or not closes:
        return None
    clause_start = _clause_start(text, phrase_start)
    clause = text[clause_start:phrase_start]
    comma = re.match(r",\s+", after)
    if not _words(clause) and clause_start == sentence[0] and comma and len(_words(text[end:sentence[1]])) >= 3:
        return phrase_start, end + comma.end()  # "Valid 1 Apr - 15 May, limited to ..." -> "Limited to ..."
    if not _words(clause) and re.search(r",\s*$", text[:clause_start]):
        # the deadline is a clause of its own (", berlaku s/d 25 Mei."): the comma goes with it
        clause = text[_clause_start(text, text[:clause_start].rstrip(" ,").__len__()):clause_start]
    if len(_words(clause)) < 3 or re.search(_dangling(lang), clause.rstrip(" ,")):
        return None
    return phrase_start - (len(before) - len(before.rstrip(" ,-–"))), end


def _sentence_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around text[start:end] (a full stop after "min." or "s.d." ends none)."""
    ends = terms.sentence_ends(text)
    left = max((e for e in ends if e <= start), default=0)
    right = min((e for e in ends if e >= end), default=len(text))
    return left, right


def _clause_start(text: str, i: int) -> int:
    ends = [e for e in terms.sentence_ends(text[:i])]
    ends += [m.end() for m in re.finditer(r"[;:](?=\s)|,\s|\s[-–—]\s", text[:i])]
    return max(ends, default=0)


def _dangling(lang: str) -> str:
    lex = LEXICONS.get(lang) or LEXICONS["en"]
    words = "|".join(re.escape(w) for w in (*lex.dangling, *LEXICONS["en"].dangling))
    return rf"(?i)(?:^|\s)(?:{words})\s*$"


def _has_terms(text: str, lang: str, names: bool = False) -> bool:
    """Does the text state a term (a brand or product name too, with `names`)?"""
    return any(names or t.kind != "name" for t in terms.read("", text, language=lang).terms)


def _replace_phrases(d: _Draft, lex: Lexicon, categories: list[str], what: str, required: bool) -> None:
    lang = d.facts.lang

    # the body and the title apart: a title that would be left empty must not stop the body's fix
    n = len(d.changes)
    d.edit(what, lambda t, b: (t, _replace_in(b, lang, lex, categories)), required=required)
    d.edit(what, lambda t, b: (_replace_in(t, lang, lex, categories), b), required=required)
    if len(d.changes) == n + 2:
        d.changes.pop()
    still = [m.group() for c in categories for m in hits(lang, c, d.text)]
    if still and required:
        d.unable.append(f"{what}: no sure rewording of {', '.join(repr(s) for s in dict.fromkeys(still))} (the phrase "
                        "tables have no replacement, and cutting it would break its sentence)")


def _replace_in(text: str, lang: str, lex: Lexicon, categories: list[str]) -> str:
    """Reword every phrase of these lists that the language's table has a replacement for, one at a time from the
    right. A phrase with no replacement goes only with its whole sentence, when that sentence states no term
    ("We miss you!", "It's been a while since we saw you.") and something else remains, or, when the table says
    to drop it, at the start of its clause ("Kindly be advised that your order..."). Anything else stays: cutting
    words out of a sentence is not a sure fix."""
    skipped: set[int] = set()
    for _ in range(24):
        found = [m for c in categories for m in hits(lang, c, text) if m.start() not in skipped]
        if not found:
            break
        m = max(found, key=lambda m: m.start())
        phrase = m.group().lower()
        table = lex.replace if phrase in lex.replace or phrase.rstrip("!?.") in lex.replace else LEXICONS["en"].replace
        replacement = table.get(phrase, table.get(phrase.rstrip("!?."), None))
        opens = _opens_clause(text, m.start())
        if replacement and not opens and any(m.group().lower() in lex_.phrases.get("formal", ())
                                             for lex_ in (lexicon(lang), lexicon("en"))):
            skipped.add(m.start())  # "Tuan/Puan yang dihormati" is no "Hai" mid-clause
            continue
        s_, e_ = _sentence_of(text, m.start(), m.end())
        # a sentence that states nothing but the wrong assumption goes whole: "It's been a while since we saw you."
        alone = len(_words(text[s_:e_])) <= 12 and not _has_terms(text[s_:e_], lang, names=True)
        formal = any(m.group().lower() in lex_.phrases.get("formal", ()) for lex_ in (lexicon(lang), lexicon("en")))
        if replacement is None or (not replacement and not opens):
            if alone and not formal and text[:s_].strip() + text[e_:].strip():
                text = _cut(text, s_, e_)
            else:
                skipped.add(m.start())
        elif not replacement:
            text = _cut(text, m.start(), m.end())
        else:
            if opens and m.group()[:1].isupper():
                replacement = replacement[:1].upper() + replacement[1:]
            text = text[:m.start()] + replacement + text[m.end():]
    return text


def _opens_clause(text: str, i: int) -> bool:
    return not text[:i].strip() or bool(re.search(r"(?:[.!?,:;\n]|^)\s*(?:[^\w\s]\s*)*$", text[:i]))


def _fix_relationship(d: _Draft, lex: Lexicon) -> None:
    """Every phrase that assumes the wrong relationship reworded, or none: a message that still says "we miss you"
    after "welcome back" became "welcome" is no better, so a partial fix is undone."""
    wrong = [c for c, applies in _WRONG_FOR if applies(d.facts.segment)]
    before = (d.title, d.body, len(d.changes))
    _replace_phrases(d, lex, wrong, "reworded what assumes the wrong relationship with this audience", required=False)
    _retitle(d, wrong)  # what the tables could not reword in a title that is nothing else
    still = [m.group() for c in wrong for m in hits(d.facts.lang, c, d.text)]
    if still:
        d.unable.append("reword what assumes the wrong relationship: no sure rewording of "
                        + ", ".join(repr(x) for x in dict.fromkeys(still)) + " (the phrase tables have no replacement, "
                        "and cutting it would break its sentence)")
    if (d.title, d.body) != before[:2] and still:
        d.title, d.body = before[:2]
        del d.changes[before[2]:]
        d.unable.append("reword what assumes the wrong relationship: only part of it has a sure rewording, and half a "
                        "fix still misreads the audience")


def _retitle(d: _Draft, wrong: list[str]) -> None:
    """A title that is nothing but the wrong assumption ("Kangen kamu nih! 🥹", "First time dito? Welcome!") has no
    part worth keeping and cannot be emptied: it becomes the offer the campaign's data or the text states."""
    lang, title = d.facts.lang, d.title
    found = [m for c in wrong for m in hits(lang, c, title)]
    if not found or _has_terms(title, lang, names=True):
        return
    rest = title
    for m in sorted(found, key=lambda m: -m.start()):
        rest = rest[:m.start()] + " " + rest[m.end():]
    words = _words(rest)
    if len("".join(words)) > 16 if lang in UNSPACED else len(words) > 3:
        return
    found_offer = _incentive(d, lang)
    if found_offer is None:
        return
    mark = EMOJI_BY_INTENT[INTENT_OF_SEGMENT[d.facts.segment]][0]
    d.edit("put the offer in place of a title that only assumed the wrong relationship",
           lambda t, b: (f"{found_offer[1]} {mark}", b), required=False)


def _incentive(d: _Draft, lang: str) -> tuple[str, str] | None:
    """(long, short) phrase of the concrete incentive: the voucher's, else the first benefit the text states (a
    discount, cashback, free shipping: never a price, a minimum spend, a cap or an account figure)."""
    if d.facts.voucher is not None:
        long, short = incentive_phrases(d.facts.voucher, lang)
        code = d.facts.voucher_code
        if code and code not in d.text:  # the offer is no use to a reader who is not told its code
            long = f"{long} " + INCENTIVE_FORMATS.get(lang, INCENTIVE_FORMATS["en"])["with_code"].format(code=code)
        return long, short
    values = [t for t in d.facts.stated_offer if not t.key.endswith(":0")]
    if not values:
        return None
    t = values[0]
    text = d.facts.title if t.field == "title" else d.facts.body
    after = re.match(r"\s?(?i:off|discount|cashback|rebate|voucher|diskaun|diskon|potongan|giảm|ส่วนลด)\b", text[t.end:])
    before = _BENEFIT_WORD_BEFORE.search(text[max(0, t.start - 14):t.start]) if not after else None
    phrase = (before.group(1) + " " if before else "") + t.text + (after.group() if after else "")
    return phrase, phrase[:1].upper() + phrase[1:]


_BENEFIT_WORD_BEFORE = re.compile(r"(cashback|diskon|diskaun|discount|potongan|giảm|ลด|hoàn tiền)\s*$", re.I)


def _state_voucher(d: _Draft, lex: Lexicon, *, lead: bool) -> None:
    """The voucher the campaign's data gives, stated where the text states no value: a sure fix whatever else is
    wrong (the facts are the merchant's own), kept even when the audited error has no sure fix; in the title too
    when the segment's winners lead with it."""
    if d.facts.voucher is not None and not d.facts.stated_offer and not terms.states_value(d.text):
        _state_incentive(d, lex, in_title=lead, required=False)


def _phrases(words: tuple[str, ...], lang: str) -> re.Pattern:
    """Any of these phrases, longest first, as whole words ("hadiah kecil" takes its reduplication, "hadiah
    kecil-kecilan"); a pattern that never matches for none."""
    if not words:
        return re.compile(r"(?!x)x")
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    if lang in UNSPACED:  # only where spaces set it apart: an offer put in the middle of a Thai run glues to it
        return re.compile(rf"(?<!\w)({alts})(?!\w)", re.I)
    return re.compile(rf"(?<![\w-])({alts})(?:-\w+)?(?![\w-])", re.I)


def _state_incentive(d: _Draft, lex: Lexicon, *, in_title: bool, required: bool) -> None:
    lang = d.facts.lang
    found = _incentive(d, lang)
    vague, hint = _phrases(lex.vague, lang), _phrases(lex.vague_hint, lang)
    if found is None:
        if required:
            d.unable.append("state the incentive: neither the campaign's voucher nor the text says what the offer is")
            d.needs.append("the offer's terms (amount, percentage or free shipping), if there is one")
        return
    long, short = found

    def body_edit(title: str, body: str) -> tuple[str, str]:
        if terms.states_value(body) and not vague.search(body) and not hint.search(body):
            return title, body
        m = vague.search(body)
        if m:  # "our special offer" -> "15% off": the same slot in the sentence
            return title, body[:m.start()] + long + body[m.end():]
        sentence = lex.incentive_sentence.format(incentive=long)
        m = hint.search(body)
        if m:  # "a little something awaits at checkout." + "Get 15% off with code X.": the promise, then what it is
            end = _sentence_of(body, m.start(), m.end())[1]
            end += len(re.match(r"[.!?]*", body[end:]).group())
            end -= len(body[:end]) - len(body[:end].rstrip("\n"))  # a line that ends the sentence stays a line
            tail = body[end:]
            added = body[:end].rstrip(" \t") + " " + sentence + ("" if not tail or tail[0].isspace() else " ") + tail
            # no room for a sentence: the promise stays (the offer squeezed into its slot reads garbled)
            return title, added if len(added) <= limits_for(d.facts.channel, None)[1] else body
        main, signoff = _before_signoff(body)  # "Happy planting,\nMei & the team" stays last
        return title, _append_sentence(main, lex.incentive_sentence.format(incentive=long), before_footer=True) + signoff

    d.edit("stated the concrete incentive instead of a vague one", body_edit, required=required)
    if in_title and d.title.strip() and not terms.states_value(d.title):
        def title_edit(title: str, body: str) -> tuple[str, str]:
            m = vague.search(title)
            if m:
                said = short if _opens_clause(title, m.start()) else long.split(" (")[0]
                return title[:m.start()] + said + title[m.end():], body
            lead = re.match(f"[{_EMOJI_CHARS}\\s]*", title).group()
            return f"{lead}{short}: {title[len(lead):]}", body

        d.edit("put the incentive in the title", title_edit, required=False)




def _verb(d: _Draft, lex: Lexicon) -> str | None:
    """The message's own verb: a voucher verb when there is a voucher, the segment's verb when the text uses it
    (pay, to unpaid-order buyers), else the first; with a code, "use" takes it ("Use code X"). Without one of its
    own, the segment's verb, but only where the offer is a shop's (a voucher or a product): never "Shop" on a
    loan, a load, a bill or a plan. None when no verb fits with confidence."""
    text = d.text.lower()
    voucher = d.facts.voucher is not None or bool(d.facts.reading.of_kind("code"))
    preferred = (lex.default_verb.get(INTENT_OF_SEGMENT[d.facts.segment]) or "").lower()
    found = []
    for written, imperative in lex.verbs:
        pattern = re.escape(written) if d.facts.lang in UNSPACED else rf"(?<![\w-]){re.escape(written)}(?![\w-])"
        m = re.search(pattern, text)
        if m:
            found.append((not (voucher and written in lex.voucher_verbs), imperative.lower() != preferred, m.start(),
                          imperative))
    codes = [t for t in d.facts.reading.kept_terms if t.kind == "code"]
    found = [f for f in found if f[3] not in lex.code_verbs or codes]  # "Use now" says nothing without the code
    not_shopping = _mentions(text, lex.not_shopping + LEXICONS["en"].not_shopping, d.facts.lang)
    if not_shopping:
        found = [f for f in found if f[3] not in lex.shop_verbs]
    # only a verb that takes the offer (a voucher verb) or the segment's own ("Pay" to unpaid orders); "upgrade" or
    # "visit" somewhere in the text need not be what the offer asks for
    default = (lex.default_verb.get(INTENT_OF_SEGMENT[d.facts.segment]) or lex.default_verb["*"]).lower()
    found = [f for f in found if not f[0] or f[3].lower() in (preferred, default)]
    if found:
        verb = min(found)[3]
    elif not_shopping or not (d.facts.voucher or d.facts.product_name or d.facts.categories):
        return None
    elif codes and lex.code_verbs and codes[0].text in d.text:
        verb = lex.code_verbs[0]  # no verb of its own, but a code: "Use code X" says what to do with it
    else:
        verb = lex.default_verb.get(INTENT_OF_SEGMENT[d.facts.segment]) or lex.default_verb["*"]
    if verb in lex.code_verbs and codes and codes[0].text in d.text:
        word = "" if lex.code_word.lower() in verb.lower() else f"{lex.code_word} "
        verb = f"{verb} {word}{codes[0].text}"
    return verb


def _mentions(text: str, words: tuple[str, ...], lang: str) -> list[str]:
    if lang in UNSPACED:
        return [w for w in words if w.lower() in text]
    return [w for w in words if re.search(rf"(?<![\w-]){re.escape(w.lower())}(?![\w-])", text)]


def _reason(d: _Draft, lex: Lexicon) -> str | None:
    """The real reason to act now: the offer's own deadline (never a travel or event day), the voucher's expiry,
    else the concrete benefit. "" when the closing sentence already states the deadline (no need to repeat it),
    None when there is no reason at all."""
    deadline = d.facts.deadline
    if deadline is None or deadline not in d.text:
        deadline = format_expiry(d.facts.expiry, d.facts.lang) if d.facts.expiry is not None else None
    if deadline is not None:
        close = _last_sentence(_before_signoff(d.body)[0])
        if close is not None and deadline in d.body[max(0, close - 80):]:
            return ""  # the close states it already (the voucher's expiry put in for a passed date too)
        return lex.by_deadline.format(deadline=deadline)
    found = _incentive(d, d.facts.lang)
    return lex.by_incentive.format(incentive=found[0]) if found else None


def _call_to_action(d: _Draft, lex: Lexicon, *, required: bool) -> None:
    """A weak close goes; the merchant's own call to action gets the real reason to act now; a missing one is
    added with the message's own verb and that reason. Never a bare generic one, never after a closing action,
    link, keyword, opt-out or permit line, never a verb that does not fit the offer."""
    lang = d.facts.lang
    dropped_close = False
    if hits(lang, "weak_close", d.text):
        dropped_close = d.edit("dropped the weak close", lambda t, b: _without_weak_close(t, b, lang), required=required)
        if hits(lang, "weak_close", d.text):
            if required:  # "Shop now!" after "whenever you like" contradicts the message it closes
                d.unable.append("add a call to action: the weak close sits inside a sentence that states more, and "
                                "a call to action after it would contradict it")
            return
    f = features(d.title, d.body, lang)
    reason = _reason(d, lex)
    if f.has_cta and (f.has_urgency or not reason) and not dropped_close:
        if required and reason is None:
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
    ends = _ends_with_action(d)
    link_line = _closing_link(_before_signoff(d.body)[0])
    if ends and not (dropped_close and link_line is not None):  # a bare link may follow the new close
        if required:
            d.unable.append(f"add a call to action: the message already ends with {ends}; one after it would not be "
                            "read as the close")
        return
    if reason is None and not dropped_close:
        if required:
            d.unable.append("add a call to action: no deadline or concrete benefit to give as the reason to act now, "
                            "and a bare 'Shop now' fixes nothing")
        return
    reason = reason or ""  # a weak close ("Maybe take a look sometime") gone: a plain imperative takes its place
    verb = _verb(d, lex)
    if verb is None:
        if required:
            d.unable.append("add a call to action: no verb fits this offer with confidence (it is not a shop's "
                            "product, or it is a loan, load, bill or plan)")
        return
    bare = re.sub(r"[!.?]+$", "", lex.cta.format(verb=verb, reason="")).strip()
    if _mentions(d.text.lower(), (bare,), lang):
        if required:  # "Check out now! Check out now before 6 May!" says it twice
            d.unable.append(f"add a call to action: the message already says '{bare}'")
        return
    # "ใช้โค้ด DOIMOK80" + "เลย": a code is set apart from the Thai word after it
    glued = re.search(r"[A-Za-z0-9]$", verb) and re.search(r"\{verb\}[\u0E00-\u0E7F]", lex.cta)
    sentence = lex.cta.format(verb=verb + " " if glued else verb, reason=reason)

    def add(title: str, body: str) -> tuple[str, str]:
        main, signoff = _before_signoff(body)
        at = _closing_link(main) if dropped_close else None
        if at is not None:  # "...valid until Oct 20. Order now!\n\nshopee.ph/shop": the link stays last
            core = main[:at].rstrip()
            return title, _append_sentence(core, sentence) + main[len(core):] + signoff
        return title, _append_sentence(main, sentence) + signoff

    d.edit("ended with an imperative call to action" + (" and the reason to act now" if reason else ""), add,
           required=required)


def _without_weak_close(title: str, body: str, lang: str) -> tuple[str, str]:
    """Each weak close out where it is a whole sentence, a trailing clause or (in Thai) its own run of words; one
    inside a sentence that states more stays (cutting words out of a sentence is no sure fix)."""
    out = []
    for text in (title, body):
        kept: set[int] = set()
        for _ in range(6):  # one at a time, searched again: a cut sentence can hold a second one
            found = hits(lang, "weak_close", text)
            if not found:
                break
            found = [m for m in found if m.start() not in kept]
            if not found:
                break
            m = max(found, key=lambda m: m.start())
            s_, e_ = _sentence_of(text, m.start(), m.end())
            link = _trailing_link(text)
            if link is not None and s_ < link < e_ and m.end() <= link:
                e_ = link  # "... okay lang din sa amin ✌️ shopee.ph/x": the link stays
            if lang in UNSPACED:  # Thai ends a sentence with a space: the phrase's own run of words
                s_ = max(s_, text.rfind(" ", 0, m.start()) + 1)
                gap = re.search(r"\s", text[m.end():e_])
                e_ = m.end() + gap.start() if gap else e_
            if not _has_terms(text[s_:e_], lang) and (text[:s_].strip() or text[e_:].strip()):
                text = _cut(text, s_, e_)  # the whole sentence is the weak close
                continue
            clause = _clause_start(text, m.start())
            tail = text[clause:e_]
            if clause > s_ and not _has_terms(tail, lang) and re.search(r",\s*$", text[:clause]):
                # "..., semoga suka dengan kemeja batiknya ya 😊": the trailing clause goes with its comma
                comma = text[:clause].rstrip().rstrip(",").rstrip()
                ending = re.match(r"[^.!?\n]*", text[clause:e_]).end() + clause
                text = comma + text[ending:]
                continue
            kept.add(m.start())  # cutting words out of a sentence is no sure fix
        out.append(text)
    return out[0], out[1]


def _before_signoff(body: str) -> tuple[str, str]:
    """(message, sign-off): an e-mail's or chat's closing lines ("Love,\nTinyToes PH", "Salam mesra,\nRumah Wangi")
    after its last blank line, when they are short and state nothing."""
    m = re.search(r"\n\s*\n(?P<tail>(?:[^\n]{1,40}\n?){1,3})\s*$", body)
    closing = m and re.match(r"[^\n,]{1,25},[ \t]*\n", m.group("tail"))  # "Happy planting,\n<sender>"
    if not m or re.search(r"\d|https?://|www\.", m.group("tail")) or len(_words(m.group("tail"))) > (10 if closing else 6):
        inline = _INLINE_SIGNOFF.search(body)  # "... at checkout. xoxo, Team Serene" on the message's last line
        if inline and not re.search(r"\d|/|@", inline.group("tail")):
            cut = len(body[:inline.start("tail")].rstrip())  # the space before it goes with it: "... RM80. xoxo, ..."
            return body[:cut], body[cut:]
        return body, ""
    return body[:m.start()], body[m.start():]


_INLINE_SIGNOFF = re.compile(r"(?i)(?:^|(?<=[.!?]\s)|(?<=[.!?]\s\s))(?P<tail>(?:xoxo|love|cheers|regards|warm regards|best|"
                             r"salam(?: mesra| sayang)?|salamat|thân|ด้วยรัก)\s*,\s*[^\n.!?]{1,30})\s*$")


def _closing_link_line(main: str) -> int | None:
    """Where the body's last line starts when that line is a bare link ("shopee.ph/lolabenings") after other text."""
    m = re.search(r"\n[ \t]*(\S+)[ \t]*$", main.rstrip())
    if m is None or not main[:m.start()].strip() or not _LINKISH.search(m.group(1)) or "/" not in m.group(1):
        return None
    return m.start() + 1


# "App > Me > To Pay", "แอป > ฉัน > ที่ต้องชำระ": where in the app the reader goes, an action of its own
_MENU_PATH = re.compile(r"\S[^>\n]{0,30}\s>\s[^>\n]{1,30}\s>\s\S")


def _trailing_link(main: str) -> int | None:
    """Where a bare link that closes the body's last line starts, when it follows a sentence's end or an emoji rather
    than a lead-in of its own ("... okay lang 😊 shopee.ph/x", not "Order na: shopee.ph/x")."""
    m = re.search(r"(?<=\s)(\S+)[ \t]*$", main.rstrip())
    if m is None or not _LINKISH.search(m.group(1)) or "/" not in m.group(1) or "@" in m.group(1):
        return None
    before = main[:m.start()].rstrip()
    return m.start() if before and re.search(f"[.!?{_EMOJI_CHARS}]$", before) else None


def _closing_link(main: str) -> int | None:
    """A closing link, on its own line or after the last sentence: a new call to action goes before it."""
    line = _closing_link_line(main)
    return line if line is not None else _trailing_link(main)


def _ends_with_action(d: _Draft) -> str | None:
    """What closes the body already, if it is something a reader acts on or must see last."""
    main = _before_signoff(d.body)[0]
    start = _last_sentence(main)
    if start is None:
        return None
    last = main[start:]
    if _FOOTER.search(last):
        return "an opt-out, permit or terms line"
    reading = d.facts.read("", last)
    if any(t.kind in ("url", "keyword", "phone") for t in reading.terms):
        return "a link, a keyword to text or a number to call"
    if hits(d.facts.lang, "cta", last) or exhorts(last, d.facts.lang):
        return "its own call to action"
    if _MENU_PATH.search(last):
        return "a path in the app to follow"
    return None


def _fix_tone(d: _Draft, lex: Lexicon | None, *, required: bool) -> None:
    """A neutral register where it is sure: repeated "!!!" and emoji once, shouted sentences in sentence case,
    slang and stiff formulas swapped where the tables have the plain word (a greeting for "Dear Valued Customer")."""
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
        loud = _shouted(f"{out[0]}\n{out[1]}")
        return _unshout(out[0], reading, "title", lang, loud), _unshout(out[1], reading, "body", lang, loud)

    f = features(d.title, d.body, lang)
    if f.casual or f.formal or f.shouting or required:
        if not d.edit("neutral register: no shouting, repeated marks or stiff formulas", calm, required=required) \
                and required:
            d.unable.append("misaligned tone: no sure rewording in this language's tables")


def _shouted(text: str) -> bool:
    words = [w for w in re.findall(r"[^\W\d_]{2,}", text) if w.isascii()]
    return len(words) >= 4 and sum(w.isupper() for w in words) >= 0.4 * len(words)


def _unshout(text: str, reading: terms.Reading, field_name: str, lang: str = "en", loud: bool = False) -> str:
    """Shouted sentences in sentence case (every sentence when the message as a whole shouts): names in Title
    Case; codes, links and acronyms that are no common word kept."""
    spans = [(t.start, t.end, t.kind) for t in reading.terms if t.field == field_name]

    def case(m: re.Match, offset: int) -> str:
        w = m.group()
        term = next((t for t in reading.terms if t.field == field_name and t.start <= m.start() + offset < t.end), None)
        kind = term.kind if term else None
        common = w.lower() in _COMMON_CAPS or terms.is_common(w)
        acronym = len(w) <= 2 and w.isascii() and not common
        if not w.isupper() or kind in ("code", "url", "placeholder", "phone", "keyword") or acronym:
            return w
        if kind == "name" and not term.text.isupper():
            return w  # "TechCase MY": a name written in mixed case keeps its capitals
        before = re.search(r"([^\W\d_]+)\s+$", text[:m.start() + offset])
        if len(w) <= 3 and before and not before.group(1).isupper() and re.search(r"[a-z][A-Z]", before.group(1)):
            return w
        return w.capitalize() if kind == "name" and not loud and not common else w.lower()

    def calm(sentence: re.Match) -> str:
        chunk = sentence.group()
        words = re.findall(r"[^\W\d_]{2,}", chunk)
        if not words or (not loud and (len(words) < 2 or sum(w.isupper() for w in words) < 0.6 * len(words))):
            return chunk
        lead = re.match(r"\s*", chunk).end()
        chunk = re.sub(r"(?<![\w'’])[^\W\d_](?:[^\W\d_]|['’](?=[^\W\d_]))+(?![\w])",
                       lambda m: case(m, sentence.start()), chunk)
        return chunk[:lead] + re.sub(r"^(\W*)([a-z])", lambda m: m.group(1) + m.group(2).upper(), chunk[lead:])

    out, start = [], 0
    for end in [*terms.sentence_ends(text), len(text)]:
        if end > start:
            out.append(calm(_Span(text[start:end], start)))
            start = end
    return "".join(out)


@dataclass(frozen=True)
class _Span:
    """A sentence with the start and group() of a match, for `_unshout`."""

    text: str
    begin: int

    def group(self) -> str:
        return self.text

    def start(self) -> int:
        return self.begin


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
        protected = bytearray(len(body) + 1)  # 1 under every term: a clause holding one is kept
        for t in reading.terms:
            protected[t.start:t.end] = b"\x01" * max(0, t.end - t.start)
        candidates = []
        for i, (s, e) in enumerate(clauses):
            chunk = body[s:e]
            if 1 in protected[s:e] or _KEEP_CLAUSE.search(chunk) or hits(lang, "cta", chunk):
                continue
            candidates.append((-(e - s), i))
        total = len(body)
        for neg, i in sorted(candidates):
            if total <= limit:
                break
            keep[i] = False
            total += neg
        out: list[str] = []
        tail = ""  # the end of what is kept: all _rejoin looks at (joining onto the whole text was quadratic)
        for (s, e), k in zip(clauses, keep):
            if k:
                piece = _rejoin(tail, body[s:e])[len(tail):]
                out.append(piece)
                tail = (tail + piece)[-64:]
        return title, "".join(out)

    d.edit(f"dropped filler to fit {limit} characters", cut, required=False)


def _rejoin(before: str, chunk: str) -> str:
    """The kept text and the next kept clause: a space between them, and a capital where a sentence now starts
    ("...selesa dipakai!" + "pos percuma ..." is "...selesa dipakai! Pos percuma ...")."""
    if not before or not chunk:
        return before + chunk
    if not before[-1].isspace() and not chunk[0].isspace():
        chunk = " " + chunk
    i = len(chunk) - len(chunk.lstrip())
    word = re.match(r"\S+", chunk[i:])
    if re.search(r"[.!?]\s*$", before) and chunk[i:i + 1].islower() and not (word and _LINKISH.search(word.group())):
        chunk = chunk[:i] + chunk[i].upper() + chunk[i + 1:]
    return before + chunk


def _fit(d: _Draft, lex: Lexicon | None, goal: EditGoal) -> None:
    max_title, max_body = limits_for(goal.channel, goal.limits)
    if goal.channel == "sms":  # an SMS that took four parts may take four again: nothing is cut to fit three
        max_body = max(max_body, sms_capacity(d.facts.body))
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


_LINKISH = re.compile(r"[./@#]\w|^www|://")


def _cut(text: str, start: int, end: int) -> str:
    """Remove text[start:end]; if that removes a sentence's start, the rest of it starts with a capital."""
    end -= len(text[start:end]) - len(text[start:end].rstrip())  # the break after the cut is the text's, not the cut's
    before, after = text[:start], text[end:]
    if before.strip() and not after.strip():  # the text's last words went: no blank lines are left after it
        return before.rstrip()
    if before.strip() and not re.search(r"[.!?\n]\s*$", before):
        return before + after
    lead = re.match(r"^[\s,;:!?.-]+", after)
    if lead and "\n" in lead.group():  # the break that followed the cut stays (a paragraph stays a paragraph)
        before = before.rstrip(" \t")
        room = 2 - (len(before) - len(before.rstrip("\n"))) if before.strip() else 0
        after = "\n" * max(0, min(lead.group().count("\n"), room)) + after[lead.end():]
    elif lead:
        after = (" " if before else "") + after[lead.end():]
    i = len(after) - len(after.lstrip())
    word = re.match(r"\S+", after[i:])
    if (after[i:i + 1].islower() and not re.match(r"[a-z]+[A-Z]", after[i:])
            and not (word and _LINKISH.search(word.group()))):  # "shopee.ph/x" is a link, not a sentence
        after = after[:i] + after[i].upper() + after[i + 1:]
    gap = " " if before and not before[-1].isspace() and after and not after[0].isspace() else ""
    return before + gap + after


def _footer_start(body: str) -> int | None:
    """Where a closing footer starts: an opt-out, a permit number or a T&C line ending the message."""
    last = _last_sentence(body)
    if last is None or not _FOOTER.search(body[last:]):
        return None
    return last


def _last_sentence(body: str) -> int | None:
    core = body.rstrip(f" \t\n{_EMOJI_CHARS}")
    if not core:
        return None
    ends = [m.end() for m in re.finditer(r"[.!?\n](?=\s)", core)]
    return ends[-1] if ends else 0


def _append_sentence(body: str, sentence: str, before_footer: bool = False) -> str:
    cut = _footer_start(body) if before_footer else None
    if before_footer and not cut:  # "... Yuk intip! shopee.co.id/x": the link stays last, the sentence before it
        links = terms.read("", body).of_kind("url")
        if links and links[-1].end >= len(body.rstrip()):
            last = _last_sentence(body[:links[-1].start])
            lead = body[last or 0:links[-1].start]
            # a lead-in that points at the link ("Tengok sini:", "Order here →") stays with it
            points = re.search(r"(?:[:→👉]|->)\s*$", lead)
            cut = (last or 0) if not _words(lead) or exhorts(lead, None) or points else links[-1].start
            cut = cut or None
    if cut:  # "... Get RM5 off. Text STOP to 2882." keeps its footer last, and a paragraph break stays one
        gap = re.search(r"\s*$", body[:cut]).group()
        return _append_sentence(body[:cut], sentence) + (gap if "\n" in gap else " ") + body[cut:].lstrip()
    body = body.rstrip()
    trailing = re.search(f"([{_EMOJI_CHARS}\\s]+)$", body)
    tail = trailing.group() if trailing else ""
    core = body[: len(body) - len(tail)].rstrip()
    if core and core[-1] not in ".!?。" and not re.search(r"[\u0E00-\u0E7F]$", core):
        core += "."  # Thai ends a sentence with a space, not a full stop
    return f"{core} {sentence}{tail}".strip()


_WORD = re.compile(r"[^\s.,!?;:()\[\]{}\"'“”‘’]*[^\W\d_][^\s.,!?;:()\[\]{}\"'“”‘’]*")


def _words(text: str) -> list[str]:
    """Words as a reader counts them: letters between spaces or punctuation (a Thai word's vowel marks included)."""
    return _WORD.findall(text)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]*\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    # never join digits: "0 .5" or "0..0" must not become a new number
    text = re.sub(r"\s+([,.!?;:])(?!\d)", r"\1", text)
    text = re.sub(r"([,;:])\s*([.!?])(?!\d)", r"\2", text)
    # "!." and "?," collapse, an ellipsis ("tu... 👀") stays
    text = re.sub(r"(?<!\d)(?<!\.)([.!?])[.,;:]+(?!\d)", lambda m: m.group() if re.fullmatch(r"\.{3,}", m.group())
                  else m.group(1), text)
    text = re.sub(r"^[\s,.;:!?-]+", "", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"(?i)\b(is|are|ay|adalah)\s+(?:and|at|dan)\s+(?=\1\b)", "", text)  # "is [valid until X] and is"
    return re.sub(r"[,;:]\s*$", "", text.strip(" \t"))
