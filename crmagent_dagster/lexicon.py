"""Each language's words, as data: `crmagent_dagster/lexicons/<code>.toml`, one file per language.

A file holds what the agents read and write in that language: the phrase lists that mark a call to action,
urgency or a wrong assumption about the reader (`[phrases]`), the cues of each message kind (`[kinds]`), the
words that say what a date or a number is for (`[roles]`: a deadline or a travel day, a discount or a minimum
spend), the common words that are copy and not a brand name (`[names]`), the words that tell it from a close
neighbour (`[detect]`), how it states a voucher (`[incentive]`), its
month abbreviations, and the rule editor's phrasing (`[rewrite]`). Adding a language means adding a file: the
language detector, the kind classifier, the auditor and the rule editor pick it up from here. A file may
leave sections out; the agents then read that language with the English lists and say what they could not do.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Where the language files are: the package's own, or a folder of your own (a copy plus the language you add).
LEXICON_DIR = Path(os.environ.get("CRMAGENT_LEXICONS") or Path(__file__).resolve().parent / "lexicons")


@dataclass(frozen=True)
class LanguageLexicon:
    code: str  # ISO 639-1
    name: str  # as a prompt says it: "Write in Indonesian"
    lingua: str  # the lingua.Language member that detects it
    unspaced: bool = False  # no spaces between words (Thai, Chinese): phrases match anywhere
    scripts: tuple[str, ...] = ()  # Unicode script names beyond its words' ("CJK"): text in others is not this language
    month_abbr: tuple[str, ...] = ()
    month_names: tuple[str, ...] = ()  # written out: "Agustus", "Hulyo"
    incentive: dict[str, str] = field(default_factory=dict)
    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    detect: dict[str, tuple[str, ...]] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rewrite: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> "LanguageLexicon":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"lexicon {path}: {e}") from None
        missing = {"code", "name", "lingua"} - set(data)
        if missing:
            raise ValueError(f"lexicon {path}: missing {sorted(missing)}")
        if data["code"] != path.stem:
            raise ValueError(f"lexicon {path}: code {data['code']!r} must match the file name")
        lists = lambda section: {k: tuple(v) for k, v in (data.get(section) or {}).items()}  # noqa: E731
        return cls(code=data["code"], name=data["name"], lingua=data["lingua"], unspaced=bool(data.get("unspaced")),
                   scripts=tuple(data.get("scripts") or ()),
                   month_abbr=tuple(data.get("month_abbr") or ()), month_names=tuple(data.get("month_names") or ()),
                   incentive=dict(data.get("incentive") or {}),
                   phrases=lists("phrases"), kinds=lists("kinds"), detect=lists("detect"), roles=lists("roles"), names=lists("names"),
                   rewrite=dict(data.get("rewrite") or {}))


@lru_cache(maxsize=1)
def lexicons() -> dict[str, LanguageLexicon]:
    """Every language file, English first (the lists every other language falls back on)."""
    found = {p.stem: LanguageLexicon.from_file(p) for p in sorted(LEXICON_DIR.glob("*.toml"))}
    if "en" not in found:
        raise FileNotFoundError(f"{LEXICON_DIR / 'en.toml'} is missing: English is every language's fallback")
    return {"en": found.pop("en"), **found}


def lexicon(code: str | None) -> LanguageLexicon:
    """A language's lexicon, or English's when it has none."""
    return lexicons().get(code or "en") or lexicons()["en"]
