"""Which language a message is written in, read from its own title and body.

Lingua is built for short and mixed-language text, which is what CRM copy is. Two corrections follow
what the merchants of this platform write:
- Taglish. English words carry most Philippine copy, so lingua often ranks English first. When Tagalog is a
  close second, or the text uses several Tagalog function words, the message is Tagalog ("tl").
- Malay and Indonesian are close enough that short copy can go either way; a few words only one of them uses
  ("troli", "percuma" vs "keranjang", "gratis ongkir") and the currency (RM vs Rp) break near ties. The
  guardrail still treats the pair as one language group.
"""

from __future__ import annotations

import re
from functools import lru_cache

LANGUAGES = ("en", "ms", "id", "tl", "th", "vi", "zh")
LANGUAGE_NAMES = {"en": "English", "ms": "Malay", "id": "Indonesian", "tl": "Tagalog (Taglish is fine)", "th": "Thai",
                  "vi": "Vietnamese", "zh": "Chinese"}
SIMILAR = frozenset({"ms", "id"})
_TAGALOG = frozenset({"ang", "ng", "mga", "sa", "ka", "mo", "po", "lang", "naman", "yung", "niyo", "nyo", "ba",
                      "din", "rin", "ay", "natin", "namin", "ninyo", "ko", "kayo", "tayo", "dito", "ngayon",
                      "hanggang", "para", "wag", "huwag", "kung", "pa", "na", "ito", "iyong", "inyong", "lamang",
                      "agad", "bili", "bumili", "makakuha", "libre", "araw"})
_MALAY_ONLY = frozenset({"troli", "percuma", "anda", "sahaja", "kedai", "baucar", "akaun", "diskaun", "sehingga",
                         "penghantaran", "belanja", "dapatkan", "jom", "tempahan", "pelanggan", "kami", "nikmati"})
_INDONESIAN_ONLY = frozenset({"keranjang", "kamu", "ongkir", "yuk", "aja", "diskon", "kode", "pakai", "sampai",
                              "sekarang", "toko", "belanjaan", "buruan", "kak", "gratis", "kirim", "hemat", "sih"})
# Vietnamese typed without diacritics, as bulk SMS often is: lingua reads it as English.
_VIETNAMESE_ASCII = frozenset({"tu", "den", "cua", "ban", "duoc", "tai", "tat", "ca", "cho", "don", "giam", "tang",
                               "mua", "chi", "tiet", "soan", "gui", "thanh", "vien", "hang", "trong", "thoi", "gian",
                               "nay", "khong", "ngay", "voi", "cac", "nhan", "uu", "dai", "khach", "tren", "se", "dien",
                               "thoai", "gop", "lai", "suat", "them", "khi", "toan", "qua", "nhap", "hoac", "sieu",
                               "thi", "gan", "nhat", "tri", "an"})
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(
        Language.ENGLISH, Language.MALAY, Language.INDONESIAN, Language.TAGALOG, Language.THAI,
        Language.VIETNAMESE, Language.CHINESE).build()


def _code(language) -> str:
    return language.iso_code_639_1.name.lower()


@lru_cache(maxsize=8192)
def detect(text: str) -> str:
    """ISO 639-1 code of `text` among LANGUAGES; "en" for text with no letters at all."""
    words = [w.lower() for w in _WORD.findall(text or "")]
    if not words:
        return "en"
    ranked = [(_code(c.language), c.value) for c in _detector().compute_language_confidence_values(text)]
    if not ranked:
        return "en"
    conf = dict(ranked)
    top = ranked[0][0]
    if top in ("en", "id", "ms", "tl") and len(set(words) & _VIETNAMESE_ASCII) >= 6:
        return "vi"
    tagalog = len(set(words) & _TAGALOG)
    tl = conf.get("tl", 0)
    # Taglish: English carries the copy, Tagalog function words give it away.
    if top == "en" and (tagalog >= 3 or (tagalog >= 2 and tl >= 0.1) or (tagalog >= 1 and tl >= 0.3)):
        return "tl"
    if top in SIMILAR and tagalog >= 3 and tl >= 0.2:
        return "tl"
    if top in SIMILAR:
        # The money settles it: ringgit is Malaysian copy, rupiah Indonesian. Else words only one of them uses.
        ringgit, rupiah = bool(re.search(r"\bRM\s?\d", text)), bool(re.search(r"\bRp\.?\s?\d", text))
        if ringgit != rupiah:
            return "ms" if ringgit else "id"
        ms, id_ = len(set(words) & _MALAY_ONLY), len(set(words) & _INDONESIAN_ONLY)
        if ms != id_ and abs(conf.get("ms", 0) - conf.get("id", 0)) < 0.25:
            return "ms" if ms > id_ else "id"
    return top


def of_message(title: str | None, body: str | None, declared: str | None = None) -> str:
    """The message's language: the declared one when it is one we know, else detected from title + body."""
    if declared and declared.lower() in LANGUAGES:
        return declared.lower()
    return detect(f"{title or ''}\n{body or ''}".strip())


def same(a: str, b: str) -> bool:
    return a == b or {a, b} <= SIMILAR
