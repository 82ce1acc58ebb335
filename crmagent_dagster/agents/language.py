"""Which language a message is written in, read from its own title and body.

Lingua is built for short and mixed-language text, which is what CRM copy is; the languages it chooses among,
and the words below, come from the language files (`crmagent_dagster/lexicons/`). Three corrections follow what
the merchants of this platform write:
- Taglish. English words carry most Philippine copy, so lingua often ranks English first. When Tagalog is a
  close second, or the text uses several Tagalog function words, the message is Tagalog ("tl"), and `taglish`
  says it mixes in English, so a writer is asked to keep the mix.
- Malay and Indonesian are close enough that short copy can go either way. The currency (RM vs Rp) settles it,
  else the words only one of them uses ("percuma", "baucar", "sila" vs "pulsa", "ketik", "gratis", "kamu"), each
  language file's `[detect] distinctive` list.
- Vietnamese typed without diacritics, as bulk SMS often is, which lingua reads as English.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from crmagent_dagster.lexicon import lexicons

LANGUAGES = tuple(lexicons())
# Text mostly in a script none of LANGUAGES is written in (Arabic, Hebrew, Cyrillic, Devanagari, Hangul...): its
# language is said to be unknown, never guessed as the nearest one we know (lingua called Arabic "zh").
UNKNOWN = "unknown"
LANGUAGE_NAMES = {code: lex.name for code, lex in lexicons().items()}
SIMILAR = frozenset({"ms", "id"})
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _detect_list(code: str, name: str) -> tuple[frozenset[str], re.Pattern | None]:
    """A language's `[detect]` words: single words as a set, anything with punctuation ("s.d.") as a pattern."""
    words = lexicons()[code].detect.get(name, ()) if code in lexicons() else ()
    plain = frozenset(w for w in words if _WORD.fullmatch(w))
    other = [w for w in words if not _WORD.fullmatch(w)]
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(w) for w in other) + r")(?![\w])", re.I) if other else None
    return plain, pattern


@lru_cache(maxsize=None)
def _lists() -> dict[str, tuple[frozenset[str], re.Pattern | None]]:
    return {"tl": _detect_list("tl", "function_words"), "ms": _detect_list("ms", "distinctive"),
            "id": _detect_list("id", "distinctive"), "vi": _detect_list("vi", "ascii_words")}


def _found(code: str, words: set[str], text: str) -> set[str]:
    plain, pattern = _lists()[code]
    hits = words & plain
    if pattern is not None:
        hits |= {m.group().lower() for m in pattern.finditer(text)}
    return hits


def distinctive_words(code: str, text: str) -> set[str]:
    """The words of `text` that only `code` (of Malay and Indonesian) uses."""
    return _found(code, {w.lower() for w in _WORD.findall(text or "")}, text or "")


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(*(getattr(Language, lex.lingua) for lex in lexicons().values())).build()


def _code(language) -> str:
    return language.iso_code_639_1.name.lower()


@lru_cache(maxsize=8192)
def _ranked(text: str) -> tuple[tuple[str, float], ...]:
    return tuple((_code(c.language), c.value) for c in _detector().compute_language_confidence_values(text))


def _script(char: str) -> str:
    return unicodedata.name(char, "?").split(" ")[0]  # "LATIN", "THAI", "CJK", "HANGUL", "ARABIC"...


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


@lru_cache(maxsize=1)
def _our_scripts() -> frozenset[str]:
    """The scripts the language files' own words are written in: a file for Korean adds Hangul."""
    found = {"LATIN"}
    for lex in lexicons().values():
        found |= set(lex.scripts)
        for field in ("phrases", "kinds", "detect", "roles", "names", "rewrite", "incentive"):
            found |= {_script(c) for text in _strings(getattr(lex, field)) for c in text if c.isalpha()}
    return frozenset(found)


def _foreign_script(letters: list[str]) -> bool:
    """Most letters are in a script none of our language files uses."""
    ours = _our_scripts()
    return sum(_script(c) in ours for c in letters) < 0.5 * len(letters)


@lru_cache(maxsize=8192)
def detect(text: str) -> str:
    """ISO 639-1 code of `text` among LANGUAGES; "en" for text with no letters at all; UNKNOWN for text in a
    script none of them uses."""
    words = {w.lower() for w in _WORD.findall(text or "")}
    if not words:
        return "en"
    letters = [c for c in text if c.isalpha()]
    if _foreign_script(letters):
        return UNKNOWN
    if sum("\u0e00" <= c <= "\u0e7f" for c in letters) >= 0.2 * len(letters):
        return "th"  # Thai script is Thai, however much shouted English surrounds it
    ranked = _ranked(text)
    if not ranked:
        return "en"
    conf = dict(ranked)
    top = ranked[0][0]
    if top in ("en", "id", "ms", "tl") and len(_found("vi", words, text)) >= 6:
        return "vi"
    tagalog = len(_found("tl", words, text))
    tl = conf.get("tl", 0)
    # the money, or the shop's link (".com.my", ".co.id"), says which market the copy is for
    ringgit = bool(re.search(r"\bRM\s?\d|\.com\.my\b", text))
    rupiah = bool(re.search(r"\bRp\.?\s?\d|\.co\.id\b", text))
    if top == "tl" and not tagalog and (ringgit or rupiah or _found("ms", words, text) or _found("id", words, text)):
        # slangy Malay ("Korang dah follow ... RM8 off") can look Tagalog to lingua, but without one Tagalog
        # function word it is not: the money or the words only Malay or Indonesian use decide
        ms, id_ = len(_found("ms", words, text)), len(_found("id", words, text))
        return "ms" if ringgit > rupiah or (ringgit == rupiah and ms >= id_) else "id"
    # Taglish: English carries the copy, Tagalog function words give it away.
    if top == "en" and (tagalog >= 3 or (tagalog >= 2 and tl >= 0.1) or (tagalog >= 1 and tl >= 0.3)):
        return "tl"
    if top in SIMILAR and tagalog >= 3 and tl >= 0.2:
        return "tl"
    if top in SIMILAR:
        # The money settles it: ringgit is Malaysian copy, rupiah Indonesian. Else words only one of them uses.
        if ringgit != rupiah:
            return "ms" if ringgit else "id"
        ms, id_ = len(_found("ms", words, text)), len(_found("id", words, text))
        if abs(ms - id_) >= 2 or (ms != id_ and abs(conf.get("ms", 0) - conf.get("id", 0)) < 0.5):
            return "ms" if ms > id_ else "id"
    elif top == "en" and max(conf.get("ms", 0), conf.get("id", 0)) >= 0.3:
        ms, id_ = len(_found("ms", words, text)), len(_found("id", words, text))
        if abs(ms - id_) >= 2:  # English-looking copy full of one of them ("Info hub 188, ketik REG")
            return "ms" if ms > id_ else "id"
    return top


def taglish(text: str) -> bool:
    """Tagalog copy that carries English along: a writer keeps the mix, not pure Tagalog or pure English."""
    words = [w.lower() for w in _WORD.findall(text or "")]
    if not words or len(_found("tl", set(words), text)) < 1:
        return False
    english = sum(w in _english_words() for w in words)
    return english >= max(2, 0.2 * len(words)) or dict(_ranked(text)).get("en", 0) >= 0.2


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    from crmagent_dagster.agents.terms import ENGLISH_COMMON

    return ENGLISH_COMMON


_MARKET_LANGUAGE = {"MYR": "ms", "IDR": "id"}


def of_message(title: str | None, body: str | None, declared: str | None = None, currency: str | None = None) -> str:
    """The message's language: the declared one when it is one we know, else detected from title + body. Between
    Malay and Indonesian, where the text itself does not settle it, the campaign's currency does (a ringgit voucher
    is Malaysian copy)."""
    if declared and declared.lower() in LANGUAGES:
        return declared.lower()
    text = f"{title or ''}\n{body or ''}".strip()
    found = detect(text)
    market = _MARKET_LANGUAGE.get((currency or "").upper())
    if found in SIMILAR and market and market != found and not _money_says(found, text):
        own, other = len(distinctive_words(found, text)), len(distinctive_words(market, text))
        if own - other < 2:  # "diskon ... kamu ... kode" stays Indonesian whatever the currency
            return market
    return found


def _money_says(code: str, text: str) -> bool:
    """The text's own money or shop link names this language's market."""
    return bool(re.search(r"\bRM\s?\d|\.com\.my\b" if code == "ms" else r"\bRp\.?\s?\d|\.co\.id\b", text))


def writing_instruction(code: str, text: str) -> str:
    """What a writer is told about the language: its name, and Taglish as Taglish."""
    if code == "tl" and taglish(text):
        return "Taglish (Tagalog and English mixed, as the original mixes them; not pure Tagalog, not pure English)"
    if code in SIMILAR:
        other = LANGUAGE_NAMES["ms" if code == "id" else "id"]
        return f"{LANGUAGE_NAMES[code]} (not {other}: keep the original's {LANGUAGE_NAMES[code]} words and spelling)"
    if code == UNKNOWN:
        return "the original's own language (one this project does not read: keep it; do not translate)"
    return LANGUAGE_NAMES.get(code, code)


def same(a: str, b: str) -> bool:
    return a == b or {a, b} <= SIMILAR
