"""How this simulated world's recipients respond to *any* text: the generator's judge of rewrites.

The generator writes templates from its copy banks and draws engagement from the features it chose
(`engagement.event_probabilities`). A deployed rewrite was written by someone else (the rule engine or an
LLM), so the world must first *read* it: `read_message` turns a title + body into the same features the
generator used, and `response_probabilities` turns those into event probabilities. This reading is part of
the generator, the simulation's assumption about its recipients; it is not the project's auditor (nothing
here imports `crmagent_dagster.agents`) and it reads more than the auditor does (bank phrases, the
voucher's and product's real facts, length, several defects at once).

Reading (after lower-casing, NFKC, emoji -> clause break, collapsed whitespace). A defect is present while
its phrase is (the generator's bank phrase for the text's language or English, exact; or a cue of the same
fault), or while what it lacked is still lacking:
  weak_call_to_action        a weak close, or no call to action at all;
  vague_incentive            a vague promise, an offer promised without its value, or a bound voucher whose
                             value is not stated (unless a wrong-audience offer holds that slot);
  misaligned_tone            slang or stiff formulas, or shouting ("!!!");
  audience_assumption_error  a relationship the segment does not have ("we missed you" to strangers,
                             "thanks for your purchase" before one, "new here?" to customers);
  irrelevant_offer           a first-order deal to people who have ordered, a regulars' perk to non-regulars
                             (who is who mirrors compose.py: price-drop viewers count as customers).
- call to action: the generator's CTA phrases or a broader list of imperatives in en/ms/id. A sentence that
  is one of the generator's own non-CTA slots (hook, opener, product line, incentive or urgency line, filled
  with this message's facts) is no call to action mid-text ("Grab the Serum now." is the product line, as the
  generator meant it), but the closing clause is what the reader acts on, whatever it is (the generator
  always closes with its CTA or weak close, so its own texts read as written);
- incentive stated: the voucher's own value, as `format_amount`/`incentive_phrases` write it or in common
  variants (RM 5, Rp 10rb, 10 %, gratis ongkir ...); another amount is not this voucher's;
- urgency: needs a voucher with an expiry; the expiry's date in the text, or an urgency word where the text
  names no other date (a deadline the voucher does not back is no urgency);
- product named: the bound product's name or its last word ("Serum").

Response: `engagement.event_probabilities` for the main effects, so a text read as the generator wrote it
gets exactly the generator's probabilities, times this world's extra multipliers. They are assumptions of
the simulation, not measurements, and moderate on purpose:

| reading                                    | multiplier                                               |
|--------------------------------------------|----------------------------------------------------------|
| main defect (the most harmful one present) | engagement.DEFECT_EFFECTS, squared where SENSITIVE       |
| each further defect                        | its DEFECT_EFFECTS ** 0.5 (faults overlap)               |
| product bound but not named                | product-card click x0.6                                  |
| title + body over 300 characters           | read x0.95 per full 40 characters over, floor x0.7       |
| incentive, urgency, emoji                  | as engagement.event_probabilities (x1.5, x1.15, x1.08)   |

The length threshold sits above the generator's own longest texts (about 265 characters). One known
difference from the generator: month.py lets copy written without a product be reused for a product-bound
plan (about 2.5% of logs) and draws its product clicks at full rate; this world reads such a text as not
naming its product. Shop popularity and campaign noise are the caller's, as in the generator.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from crmagent_dagster.segments import EVENT_TYPES, EVENT_WEIGHTS, SEGMENT_BY_KEY
from crmagent_dagster.synthetic.catalog import DEFECTS
from crmagent_dagster.synthetic.copy_bank import BANKS
from crmagent_dagster.synthetic.engagement import BASE_RATES, DEFECT_EFFECTS, SENSITIVE, event_probabilities
from crmagent_dagster.vocabulary import (
    INTENT_OF_SEGMENT,
    MONTH_ABBR,
    VoucherFacts,
    format_amount,
    format_expiry,
    incentive_phrases,
)

# --- the assumptions' numbers (see the table above) --------------------------------------------------
EXTRA_DEFECT_POWER = 0.5
PRODUCT_NOT_NAMED = 0.6
LONG_TEXT_FROM = 300
LONG_TEXT_STEP = 40
LONG_TEXT_READ = 0.95
LONG_TEXT_FLOOR = 0.7


@dataclass(frozen=True)
class WorldReading:
    defects: frozenset[str]  # DEFECTS still present in the text, as this world reads it
    incentive_stated: bool  # the voucher's concrete value is in the text
    has_cta: bool
    has_urgency: bool  # a deadline or urgency line that the voucher's expiry backs
    has_emoji: bool
    product_named: bool  # the bound product's name (or its last word) appears
    length: int  # characters of title + body


# --- normalising ------------------------------------------------------------------------------------
_EMOJI_RANGES = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF"
_EMOJI = re.compile(f"[{_EMOJI_RANGES}\ufe0f\u200d]+")
_HAS_EMOJI = re.compile(f"[{_EMOJI_RANGES}]")
BREAK = "|"  # clause break: the title/body seam and every emoji (push copy uses emoji as punctuation)


def normalise(text: str) -> str:
    """Lower case, emoji as clause breaks, straight quotes, single spaces: the form every phrase is matched in."""
    text = unicodedata.normalize("NFKC", _EMOJI.sub(f" {BREAK} ", text))
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    return re.sub(r"\s+", " ", text).strip()


def _phrase(text: str) -> str:
    """A bank phrase as matched: normalised, without its closing punctuation (a rewrite may change it)."""
    return re.sub(r"[\s.!?,;:]+$", "", normalise(text))


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _spans(text: str, phrase: str) -> Iterable[tuple[int, int]]:
    """Occurrences of `phrase` on word boundaries."""
    i = text.find(phrase) if phrase else -1
    while i >= 0:
        j = i + len(phrase)
        left = i == 0 or not (_is_word(text[i - 1]) and _is_word(phrase[0]))
        right = j == len(text) or not (_is_word(text[j]) and _is_word(phrase[-1]))
        if left and right:
            yield i, j
        i = text.find(phrase, i + 1)


_CLAUSE_END = re.compile(r"[!?" + re.escape(BREAK) + r"]|\.(?!\d)")  # not the point in "Rp10.000"
_CLAUSE_LEFT = ".!?:;" + BREAK
_CLAUSE_RIGHT = ".!?,;:" + BREAK


def _clause_spans(text: str, phrase: str) -> Iterable[tuple[int, int]]:
    """Occurrences that are a whole clause: the phrase *is* the sentence, not part of a longer one."""
    for i, j in _spans(text, phrase):
        before, after = text[:i].rstrip(), text[j:].lstrip()
        if (not before or before[-1] in _CLAUSE_LEFT) and (not after or after[0] in _CLAUSE_RIGHT):
            yield i, j


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Blank spans out with clause breaks, keeping positions, so no cue is read inside them or across them."""
    chars = list(text)
    for i, j in spans:
        chars[i:j] = BREAK * (j - i)
    return "".join(chars)


def _cue_pattern(cues: Iterable[str]) -> re.Pattern:
    body = "|".join(re.escape(c) for c in sorted(set(cues), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


# --- the generator's own phrases ------------------------------------------------------------------
def _bank(language: str) -> dict:
    return BANKS[language] if language in BANKS else BANKS["en"]


def _languages(language: str) -> tuple[str, ...]:
    """Banks and cue lists a text is read with: its own, and English (regional copy mixes English in)."""
    return (language, "en") if language in BANKS and language != "en" else ("en",)


def _flat(value: object) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _flat(v)]
    return list(value)  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def _static_frame(language: str) -> tuple[str, ...]:
    """Fixed non-CTA slots (hooks and openers without a product) of the languages a text is read with."""
    out = []
    for lang in _languages(language):
        bank = _bank(lang)
        out += [_phrase(h) for h in _flat(bank["hooks"]) if "{product}" not in h]
        out += [_phrase(o) for o in _flat(bank["openers"])]
    return tuple(sorted(set(out), key=len, reverse=True))


def _fact_frame(language: str, product: str | None, voucher: VoucherFacts | None) -> list[str]:
    """Non-CTA slots filled with this message's facts: product hooks and lines, incentive and urgency lines."""
    out = []
    for lang in _languages(language):
        bank = _bank(lang)
        if product:
            out += [_phrase(h.format(product=product)) for h in _flat(bank["hooks"]) if "{product}" in h]
            out += [_phrase(p.format(product=product)) for p in bank["product_line"]]
        if voucher is not None and voucher.voucher_type in bank["incentive"]:
            long, _ = incentive_phrases(voucher, lang)
            out += [_phrase(p.format(incentive=long)) for p in bank["incentive"][voucher.voucher_type]]
        if voucher is not None and voucher.expires_on is not None:
            expiry = format_expiry(voucher.expires_on, lang)
            out += [_phrase(p.format(expiry=expiry)) for p in bank["urgency"]]
    return out


@lru_cache(maxsize=None)
def _bank_phrases(language: str, key: str) -> tuple[str, ...]:
    return tuple(sorted({_phrase(p) for lang in _languages(language) for p in _flat(_bank(lang)[key])},
                        key=len, reverse=True))


# --- cues beyond the banks (a rewrite does not reuse bank phrases verbatim) -------------------------
CTA_CUES: dict[str, tuple[str, ...]] = {
    "en": ("shop now", "shop today", "shop the", "shop our", "buy now", "buy today", "buy the", "order now",
           "order today", "order yours", "place your order", "check out", "checkout", "tap", "click", "grab",
           "claim", "redeem", "use code", "use the code", "pay now", "pay today", "pay for your order",
           "complete your order", "complete payment", "complete your purchase", "complete checkout",
           "finish your order", "finish checking out", "get yours", "get it now", "add to cart", "start shopping",
           "book now", "apply now", "sign up", "visit our", "visit us", "swipe up", "don't wait", "act now",
           "secure yours"),
    "ms": ("beli sekarang", "beli hari ini", "jom", "tekan", "klik", "dapatkan", "tebus", "bayar", "checkout",
           "daftar sekarang", "guna kod", "pesan sekarang", "tempah", "lengkapkan", "rebut", "jangan tunggu",
           "sahkan pesanan"),
    "id": ("beli sekarang", "belanja sekarang", "yuk", "ayo", "klik", "ambil sekarang", "checkout", "bayar",
           "pesan sekarang", "klaim", "dapatkan", "tebus", "pakai kode", "selesaikan", "cek sekarang",
           "jangan tunggu", "konfirmasi pesanan"),
}
# An imperative verb then "now"/"today" within a few words: "Claim your RM5 off now", "Bayar pesananmu sekarang".
CTA_VERBS: dict[str, tuple[str, ...]] = {
    "en": ("shop", "buy", "order", "get", "grab", "claim", "redeem", "use", "pay", "check", "complete", "finish",
           "book", "try", "tap", "click", "pick", "start", "add", "apply", "reserve", "confirm", "visit", "browse",
           "explore", "discover", "come", "see", "save"),
    "ms": ("beli", "belanja", "dapatkan", "tebus", "guna", "bayar", "tempah", "daftar", "lengkapkan", "rebut",
           "pesan", "sahkan", "semak", "lihat", "terokai", "singgah"),
    "id": ("beli", "belanja", "ambil", "klaim", "pakai", "bayar", "pesan", "selesaikan", "cek", "dapatkan",
           "coba", "cobain", "konfirmasi", "tebus", "lihat", "temukan", "mampir"),
}
_NOW = ("now", "today", "sekarang", "hari ini", "skrg", "segera")
URGENCY_CUES: dict[str, tuple[str, ...]] = {
    "en": ("hurry", "ends", "ending", "until", "till", "today only", "last chance", "last day", "limited time",
           "expires", "expiring", "don't miss", "before it's gone", "before they're gone", "while stocks last",
           "valid until", "tonight only"),
    "ms": ("tamat", "sehingga", "hingga", "cepat", "hari ini sahaja", "peluang terakhir", "jangan terlepas",
           "sebelum", "terhad", "sah sehingga"),
    "id": ("berakhir", "sampai", "hingga", "buruan", "hari ini saja", "kesempatan terakhir", "jangan sampai",
           "sebelum", "terbatas", "s/d", "berlaku sampai"),
}
# An offer promised without its value (read where no value is stated).
PROMO_CUES: dict[str, tuple[str, ...]] = {
    "en": ("special offer", "offer", "offers", "deal", "deals", "promotion", "promo", "discount", "discounts",
           "something special", "surprise", "great savings", "special treat"),
    "ms": ("tawaran", "promosi", "promo", "diskaun", "istimewa", "kejutan"),
    "id": ("penawaran", "promo", "diskon", "spesial", "kejutan"),
}
CASUAL_CUES: dict[str, tuple[str, ...]] = {
    "en": ("omg", "bestie", "lol", "bruh", "rn", "heyyy", "cutie", "ghost us", "yo!!", "lmao", "fam"),
    "ms": ("omg", "geng", "korang", "weh", "lol"),
    "id": ("omg", "wkwk", "wkwkwk", "woy", "gaes", "lol"),
}
FORMAL_CUES: dict[str, tuple[str, ...]] = {
    "en": ("dear valued customer", "hereby", "kindly be advised", "pursuant", "we wish to inform",
           "please be informed", "please note the following"),
    "ms": ("pelanggan yang dihormati", "dengan segala hormatnya", "sukacita dimaklumkan", "dimaklumkan bahawa"),
    "id": ("yang terhormat", "dengan ini kami sampaikan", "bersama ini kami beritahukan", "dengan hormat", "yth."),
}
_SHOUT = re.compile(r"[!?]{3,}")
# Relationship phrases, by what they assume about the reader.
ASSUMES: dict[str, dict[str, tuple[str, ...]]] = {
    "known": {"en": ("missed you", "miss you", "welcome back", "old friend", "been a while", "since we last",
                     "all these years"),
              "ms": ("rindu", "selamat kembali", "kawan lama", "sudah lama", "lama tak jumpa"),
              "id": ("kangen", "selamat datang kembali", "teman lama", "sudah lama", "lama tidak")},
    "purchased": {"en": ("thanks for your purchase", "thank you for your purchase", "thanks for your order",
                         "thank you for your order", "thanks for buying", "thank you for buying"),
                  "ms": ("terima kasih atas pembelian", "terima kasih atas pesanan"),
                  "id": ("terima kasih atas pembelian", "terima kasih atas pesanan", "terima kasih sudah membeli")},
    "new": {"en": ("new here", "never shopped", "introduce ourselves", "for the first time", "first time here"),
            "ms": ("baru di sini", "belum pernah", "perkenalkan diri", "kali pertama"),
            "id": ("baru di sini", "belum pernah", "kenalan dulu", "pertama kali")},
    "following": {"en": ("thanks for following", "thank you for following"),
                  "ms": ("terima kasih kerana follow", "terima kasih follow"),
                  "id": ("terima kasih sudah follow", "makasih udah follow")},
}
OFFERS: dict[str, dict[str, tuple[str, ...]]] = {
    "first_order": {"en": ("for your first order", "on your first order", "off your first order", "first purchase?",
                           "first-order", "new-user", "new user", "welcome gift", "starter deal", "first-time buyer",
                           "first time buyer"),
                    "ms": ("untuk pesanan pertama", "pengguna baharu", "pengguna baru", "hadiah alu-aluan",
                           "untuk pembelian pertama"),
                    "id": ("untuk pesanan pertama", "pengguna baru", "hadiah sambutan", "untuk pembelian pertama",
                           "order pertama")},
    "loyalty": {"en": ("loyalty", "regulars", "vip", "members-only", "long-time fans", "usual favourites",
                       "usual favorites"),
                "ms": ("kesetiaan", "pelanggan tetap", "vip"),
                "id": ("loyalitas", "pelanggan tetap", "vip")},
}


@lru_cache(maxsize=None)
def _cues(language: str, table_id: str) -> re.Pattern:
    table = {"cta": CTA_CUES, "urgency": URGENCY_CUES, "promo": PROMO_CUES, "casual": CASUAL_CUES,
             "formal": FORMAL_CUES}[table_id]
    extra = [_phrase(p) for lang in _languages(language) for p in _flat(_bank(lang)["cta"])
             + _flat(_bank(lang)["cta_by_intent"])] if table_id == "cta" else []
    return _cue_pattern([c for lang in _languages(language) for c in table.get(lang, ())] + extra)


@lru_cache(maxsize=None)
def _verb_now(language: str) -> re.Pattern:
    verbs = "|".join(sorted({v for lang in _languages(language) for v in CTA_VERBS.get(lang, ())}, key=len,
                            reverse=True))
    token = r"(?:[^\s|.!?]|[.,](?=\d))+"  # a word, numbers like Rp10.000 included; never across a clause
    return re.compile(rf"(?<!\w)(?:{verbs})(?!\w)(?:\s+{token}){{0,4}}?\s+(?:{'|'.join(_NOW)})(?!\w)")


@dataclass(frozen=True)
class _Wrong:
    """What is wrong to say to one audience: ASSUMES kinds and OFFERS kinds (each also a bank key)."""

    relations: tuple[str, ...]  # known | purchased | new | following
    offers: tuple[str, ...]  # first_order | loyalty


_BANK_KEY = {"known": "assume_known", "purchased": "assume_purchased", "new": "assume_new",
             "first_order": "offer_first_order", "loyalty": "offer_loyalty"}


@lru_cache(maxsize=None)
def _wrong_for(segment: str) -> _Wrong:
    """Mirrors compose.py: strangers have no history with the shop, cart and unpaid audiences have not bought
    yet, customers are not new; first-order deals are wrong for customers who have bought, perks for regulars
    wrong for anyone else."""
    familiar, intent = SEGMENT_BY_KEY[segment].familiar, INTENT_OF_SEGMENT[segment]
    pending = intent in ("cart", "unpaid")
    relations = {"new"} if familiar else {"known", "purchased"}
    if pending:
        relations.add("purchased")
    if segment == "potential_new_customers":  # they do not follow the shop either
        relations.add("following")
    offers = set() if intent == "loyal" else {"loyalty"}
    if familiar and not pending:
        offers.add("first_order")
    return _Wrong(tuple(sorted(relations)), tuple(sorted(offers)))


# --- reading a value, a date, a product -----------------------------------------------------------
_CURRENCY_WORDS: dict[str, tuple[str, ...]] = {
    "MYR": ("rm", "myr"), "SGD": ("s$", "sgd", "$"), "PHP": ("₱", "php", "p"), "IDR": ("rp", "idr"),
    "USD": ("us$", "usd", "$"), "THB": ("฿", "thb"), "VND": ("vnd",),
}
FREE_SHIPPING = ("free shipping", "free delivery", "free ship", "freeship", "free postage", "gratis ongkir",
                 "gratis ongkos kirim", "free ongkir", "bebas ongkir", "ongkir gratis", "penghantaran percuma",
                 "pos percuma", "penghantaran free", "free penghantaran")


def _numbers(amount: float) -> list[str]:
    """How an amount is written: 10000 -> 10000, 10.000, 10,000; 5 -> 5, 5.00; 5.5 -> 5.50, 5.5."""
    if amount != int(amount):
        return [f"{amount:.2f}", f"{amount:g}", f"{amount:.2f}".replace(".", ",")]
    n = int(amount)
    out = [str(n), f"{n}.00", f"{n},00"]
    if n >= 1000:
        out += [f"{n:,}", f"{n:,}".replace(",", ".")]
    return out


@lru_cache(maxsize=4096)
def _value_pattern(voucher: VoucherFacts) -> re.Pattern:
    """The voucher's own value in the ways a message writes it."""
    if voucher.voucher_type == "free_shipping":
        return _cue_pattern(FREE_SHIPPING)
    end = r"(?![\d]|[.,]\d)"
    if voucher.voucher_type == "percentage_off":
        v = re.escape(f"{voucher.value:g}")
        return re.compile(rf"(?<![\d.,]){v}\s?(?:%|percent\b|per cent\b|peratus\b|persen\b)")
    nums = "|".join(re.escape(n) for n in sorted(_numbers(voucher.value), key=len, reverse=True))
    words = _CURRENCY_WORDS.get(voucher.currency, (voucher.currency.lower(),))
    prefix = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    own = re.escape(normalise(format_amount(voucher.value, voucher.currency)))
    forms = [rf"(?<![\w$]){own}{end}", rf"(?<![\w$])(?:{prefix})\s?(?:{nums}){end}",
             rf"(?<![\d.,])(?:{nums})\s?(?:{prefix}|ringgit|rupiah|pesos?|dollars?)(?!\w)"]
    if voucher.value >= 1000 and voucher.value % 1000 == 0:  # Rp10rb, 10 ribu, 10K
        k = int(voucher.value // 1000)
        forms.append(rf"(?<![\d.,]){k}\s?(?:rb|ribu|k)(?!\w)")
    return re.compile("|".join(forms))


def _month_words() -> dict[str, int]:
    words: dict[str, int] = {}
    full = {"en": ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                   "october", "november", "december"],
            "ms": ["januari", "februari", "mac", "april", "mei", "jun", "julai", "ogos", "september", "oktober",
                   "november", "disember"],
            "id": ["januari", "februari", "maret", "april", "mei", "juni", "juli", "agustus", "september",
                   "oktober", "november", "desember"]}
    for lang in ("en", "ms", "id"):
        for m, name in enumerate(MONTH_ABBR[lang], start=1):
            words[name.lower()] = m
        for m, name in enumerate(full[lang], start=1):
            words[name] = m
    return words


_MONTHS = _month_words()
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH = re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_ALT})\.?(?!\w)")
_MONTH_DAY = re.compile(rf"(?<!\w)({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?![\d/])")
_NUMERIC = re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})(?:/\d{2,4})?(?![\d/])")


def _dates(text: str) -> set[tuple[int, int]]:
    """(day, month) of every date written in the text."""
    out = {(int(d), _MONTHS[m]) for d, m in _DAY_MONTH.findall(text)}
    out |= {(int(d), _MONTHS[m]) for m, d in _MONTH_DAY.findall(text)}
    out |= {(int(d), int(m)) for d, m in _NUMERIC.findall(text)}
    return {(d, m) for d, m in out if 1 <= d <= 31 and 1 <= m <= 12}


def _names_product(text: str, product: str | None) -> bool:
    if not product or not product.strip():
        return False
    words = normalise(product).split()
    return any(next(iter(_spans(text, p)), None) is not None for p in (" ".join(words), words[-1]) if p)


# --- reading -----------------------------------------------------------------------------------------
def read_message(title: str, body: str, *, segment: str, language: str, voucher: VoucherFacts | None,
                 product: str | None) -> WorldReading:
    """What this world's recipient of `segment` takes from a title + body with these bound facts."""
    text = normalise(f"{title} {BREAK} {body}")
    defect_spans, defects = _defect_phrases(text, segment, language)
    frame = [s for p in (*_static_frame(language), *_fact_frame(language, product, voucher))
             for s in _clause_spans(text, p)]
    residual = _mask(text, [*defect_spans, *frame])
    closing = _closing_clause(text, _mask(text, defect_spans))

    has_cta = any(_cues(language, "cta").search(t) or _verb_now(language).search(t) for t in (residual, closing))
    stated = voucher is not None and bool(_value_pattern(voucher).search(text))
    if not has_cta:
        defects.add("weak_call_to_action")
    if _vague(residual, language, voucher, stated, defects):
        defects.add("vague_incentive")
    if _SHOUT.search(text) or _cues(language, "casual").search(text) or _cues(language, "formal").search(text):
        defects.add("misaligned_tone")
    return WorldReading(
        defects=frozenset(defects),
        incentive_stated=stated,
        has_cta=has_cta,
        has_urgency=_urgent(text, residual, language, voucher),
        has_emoji=bool(_HAS_EMOJI.search(title) or _HAS_EMOJI.search(body)),
        product_named=_names_product(text, product),
        length=len(title) + len(body),
    )


def _closing_clause(text: str, masked: str) -> str:
    """The message's last clause (emoji aside) with defect phrases blanked: the reader acts on whatever closes
    the message, so a slot sentence there ("Grab the Serum now.") does work as its call to action."""
    end = len(text.rstrip(" .!?" + BREAK))
    start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, end)), default=0)
    return masked[start:end]


def _defect_phrases(text: str, segment: str, language: str) -> tuple[list[tuple[int, int]], set[str]]:
    """Spans of the generator's defect phrases and of wrong-audience cues, and the defects they show."""
    wrong, langs = _wrong_for(segment), _languages(language)
    banked = [_BANK_KEY[kind] for kind in wrong.relations if kind in _BANK_KEY]  # "following" has no bank slot
    wrong_assume = [p for key in banked for p in _bank_phrases(language, key)]
    wrong_assume += [c for kind in wrong.relations for lang in langs for c in ASSUMES[kind].get(lang, ())]
    wrong_offer = [p for kind in wrong.offers for p in _bank_phrases(language, _BANK_KEY[kind])]
    wrong_offer += [c for kind in wrong.offers for lang in langs for c in OFFERS[kind].get(lang, ())]
    groups = {
        "weak_call_to_action": list(_bank_phrases(language, "weak_close")),
        "vague_incentive": list(_bank_phrases(language, "vague_incentive")),
        "misaligned_tone": [*_bank_phrases(language, "tone_casual"), *_bank_phrases(language, "tone_formal")],
        "audience_assumption_error": wrong_assume,
        "irrelevant_offer": wrong_offer,
    }
    spans, found = [], set()
    for defect, phrases in groups.items():
        hit = [s for p in phrases for s in _spans(text, p)]
        if hit:
            found.add(defect)
            spans += hit
    # Every defect phrase of the bank is masked for the cue search, right for this audience or not.
    for key in _BANK_KEY.values():
        spans += [s for p in _bank_phrases(language, key) for s in _clause_spans(text, p)]
    return spans, found


def _vague(residual: str, language: str, voucher: VoucherFacts | None, stated: bool, defects: set[str]) -> bool:
    """An offer promised without its value, or a bound voucher left unstated (unless a wrong offer took its place)."""
    if "vague_incentive" in defects:
        return True
    if stated:
        return False
    if _cues(language, "promo").search(residual):
        return True
    return voucher is not None and "irrelevant_offer" not in defects


def _urgent(text: str, residual: str, language: str, voucher: VoucherFacts | None) -> bool:
    if voucher is None or voucher.expires_on is None:
        return False
    dates = _dates(text)
    expiry: date = voucher.expires_on
    if (expiry.day, expiry.month) in dates:
        return True
    return not dates and bool(_cues(language, "urgency").search(residual))


# --- responding --------------------------------------------------------------------------------------
_WEIGHTS = np.array([EVENT_WEIGHTS[e] for e in EVENT_TYPES], dtype=float)


def expected_score(p: np.ndarray, keep: float = 1.0) -> np.ndarray:
    """Expected Appendix A score per row: clicks follow a read (p[:, 1:4] are conditional on it), an
    unsubscribe does not; `keep` is the chance an event survives to scoring (late arrival, bad rows)."""
    p = np.atleast_2d(np.asarray(p, dtype=float))
    read = p[:, 0]
    return keep * (_WEIGHTS[0] * read + read * (p[:, 1:4] @ _WEIGHTS[1:4]) + _WEIGHTS[4] * p[:, 4])


def _defect_multiplier(defect: str, segment: str) -> np.ndarray:
    eff = np.array(DEFECT_EFFECTS[defect])
    return eff**2 if segment in SENSITIVE[defect] else eff


@lru_cache(maxsize=None)
def _harm_order(segment: str) -> tuple[str, ...]:
    """Defects from most to least harmful for this segment (by expected score), ties in DEFECTS order."""
    base = np.array(BASE_RATES[segment])
    score = {d: float(expected_score(base * _defect_multiplier(d, segment))[0]) for d in DEFECTS}
    return tuple(sorted(DEFECTS, key=lambda d: (score[d], DEFECTS.index(d))))


def _main_defect(defects: frozenset[str], segment: str) -> str:
    return next((d for d in _harm_order(segment) if d in defects), "none")


def length_factor(length: int) -> float:
    """Read multiplier for a long text (an assumption: long copy is skipped more often)."""
    steps = max(0, length - LONG_TEXT_FROM) // LONG_TEXT_STEP
    return max(LONG_TEXT_FLOOR, LONG_TEXT_READ**steps)


def _flags(readings: Sequence[WorldReading], name: str) -> np.ndarray:
    return np.array([getattr(r, name) for r in readings], dtype=bool)


def response_probabilities(readings: Sequence[WorldReading], segments: Sequence[str], has_product: Sequence[bool],
                           has_voucher: Sequence[bool]) -> np.ndarray:
    """(n, 5) probabilities in EVENT_TYPES order for texts as read; the generator's model plus this world's
    extra multipliers (further defects, product not named, length)."""
    seg = np.array([str(s) for s in segments], dtype=str)
    product, voucher = np.array(has_product, dtype=bool), np.array(has_voucher, dtype=bool)
    main = [_main_defect(r.defects, s) for r, s in zip(readings, seg)]
    p = event_probabilities(
        segment=seg, defect=np.array(main, dtype=str),
        incentive_stated=_flags(readings, "incentive_stated") & voucher,
        has_urgency=_flags(readings, "has_urgency"), has_emoji=_flags(readings, "has_emoji"),
        has_product=product, has_voucher=voucher,
    )
    extra = np.ones((len(readings), len(EVENT_TYPES)))
    for i, (r, m) in enumerate(zip(readings, main)):
        for d in sorted(r.defects - {m}):  # a fixed order: the product is then the same in every process
            extra[i] *= np.array(DEFECT_EFFECTS[d]) ** EXTRA_DEFECT_POWER
        if product[i] and not r.product_named:
            extra[i, 2] *= PRODUCT_NOT_NAMED
        extra[i, 0] *= length_factor(r.length)
    return np.clip(p * extra, 0.0, 0.95)

