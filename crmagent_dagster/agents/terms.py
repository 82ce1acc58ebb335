"""The offer terms a message states, read from its own text: what a faithful rewrite must keep.

A term is anything a reader could act on or hold the merchant to: amounts with their currency ("RM 5",
"₱1,299", "P25K", "Rp50rb", "50K"), percentages with "up to", codes, dates and date ranges as merchants write
them ("30 Apr", "4/30", "7/15 - 8/30/24", "s/d 30 Juni", "31 ธ.ค. 67", "11.11"), durations ("14 days"), URLs,
phone numbers and shortcodes, placeholders ("{first_name}") and brand and product names. Each gets a `key`
that is the same however it is written, so "RM5" in the original and "RM 5.00" in a rewrite are one term.

Besides the terms, a reading finds what a template for a whole segment should not hold: personal data (a
person's name after a greeting, an account number, a personal code or phone) and deadlines already past.

Libraries do the parts they are built for: price-parser reads numbers ("1.299,00", "50.000"), dateparser
reads dates in every language here, phonenumbers finds phone numbers, urlextract finds links, and
`crmagent_dagster.currency` maps currency aliases. Regexes here only find the spans to hand them.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from crmagent_dagster.currency import code_of
from crmagent_dagster.lexicon import lexicon, lexicons
from crmagent_dagster.vocabulary import PHRASES

# Every word of the shared phrase lists is copy, not a name: "PERTAMA" shouted is still "first".
COPY_WORDS = frozenset(w for lists in PHRASES.values() for phrases in lists.values() for p in phrases
                       for w in re.findall(r"[^\W\d_]+", p.lower()) if len(w) > 2)

# --- spans ---------------------------------------------------------------------------------------
_NUM = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_MULT = r"(?:k|K|rb|ribu|jt|juta|tr|triệu|nghìn|ngàn|mil)"
MULTIPLIERS = {"k": 1_000, "rb": 1_000, "ribu": 1_000, "nghìn": 1_000, "ngàn": 1_000, "jt": 1_000_000,
               "juta": 1_000_000, "tr": 1_000_000, "triệu": 1_000_000, "mil": 1_000_000}
_PREFIX_CUR = r"US\$|S\$|SG\$|RM|MYR|Rp\.?|IDR|₱|PHP|Php|php|P(?=\d)|\$|SGD|฿|THB|₫|VND|USD"
_SUFFIX_CUR = r"ringgit|rupiah|pesos?|baht|บาท|đồng|VNĐ|vnđ|VND|vnd|đ|₫|MYR|IDR|PHP|SGD|THB|USD|\.-"
_UPTO = (r"(?P<upto>up\s?to|upto|as much as|hingga|sehingga|sampai|s\.?/?d\.?|hanggang|lên\s(?:đến|tới)|đến|tới|"
         r"สูงสุด|ถึง|max\.?|maks\.?|tối đa)\s*")
_AMOUNT_PRE = re.compile(rf"(?:{_UPTO})?(?<![\w$₱฿₫])(?P<cur>{_PREFIX_CUR})\s?(?P<num>{_NUM})(?:\s?(?P<mult>{_MULT})(?![\w]))?")
_AMOUNT_POST = re.compile(rf"(?:{_UPTO})?(?<![\w,])(?<!\d\.)(?P<num>{_NUM})(?:\s?(?P<mult>{_MULT}))?\s?(?P<cur>{_SUFFIX_CUR})(?![^\W\d_\u0E00-\u0E7F])")
_AMOUNT_BARE = re.compile(rf"(?:{_UPTO})?(?<![\w,])(?<!\d\.)(?P<num>{_NUM})\s?(?P<mult>{_MULT})(?![\w])")
_PERCENT = re.compile(rf"(?:{_UPTO})?(?<![\w,])(?<!\d\.)(?P<num>\d+(?:[.,]\d+)?)\s?(?:%|percent|persen|peratus|porsyento)")
_CODE_KEYWORD = re.compile(r"(?i:promo\s?code|voucher\s?code|coupon|code|kod|kode|mã(?:\sgiảm\sgiá)?|โค้ด)"
                           r"\s*[:：]?\s*[\"'“‘]?(?P<code>[A-Z0-9][A-Z0-9_-]{2,19})(?![\w-])")
_CODE_SHAPE = re.compile(r"(?<![\w-])(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,20}(?![\w-])")
_PLACEHOLDER = re.compile(r"\{\{\s*[\w.]+(?:\s*\|[^}]*)?\s*\}\}|\{[A-Za-z_][\w.]*\}|%[A-Z][A-Z_]*%|\*\|[A-Z_]+\|\*|"
                          r"\[(?:FIRST|LAST|FULL)?_?\s?NAME\]|<<\s*\w+\s*>>")
_DURATION = re.compile(r"(?i)(?<![\w.,])(?P<n>\d{1,3}(?:\s?[-x]\s?\d{1,3})?)\s?(?P<unit>(?:days?|hari|araw|ngày|hours?|hrs?|jam|"
                       r"oras|giờ|months?|mos?\.?|bulan|buwan|tháng|weeks?|minggu|linggo|tuần|minutes?|mins?|minit|menit|"
                       r"phút|years?|yrs?|tahun|taon|năm)(?![^\W\d_])|วัน|นาที|ชั่วโมง|เดือน|สัปดาห์|ปี)")
_QUANTITY = re.compile(r"(?i)(?<![\w.,])(?P<n>\d{1,3}(?:[.,]\d{3})*)\s?(?P<unit>(?:pcs|pieces?|helai|pasang|biji|units?|points?|"
                       r"poin|pts|điểm|slots?|items?|sets?|pax|botol|bottles?|cups?|ly|cái|chiếc)(?![^\W\d_])|ชิ้น|แต้ม|คะแนน)")
_SHORTCODE = re.compile(r"(?i:text|txt|sms|send|dial|call|i-text|i-dial|tawag|tumawag|hubungi|hub|info|cs|ketik|kirim|"
                        r"balas|reply|taip|hantar|soạn|nhắn|gửi|gọi|โทร|hotline|tel\.?)"
                        r"\s*(?::\s*)?(?:[A-Z][A-Z0-9]{1,11}(?:\s[A-Z0-9]{1,8})?\s+(?:to|sa|ke|đến|gửi|kirim ke)\s+)?"
                        r"(?P<code>[*#]?\d[\d*# -]{1,14}\d#?|[*#]\d+#)")
_KEYWORD = re.compile(r"(?i:text|txt|sms|send|ketik|kirim|balas|reply|taip|hantar|soạn|nhắn|i-text|type)\s+"
                      r"(?P<kw>[A-Z][A-Z0-9]{0,11}(?:\s[A-Z0-9]{1,8})?)\s+(?i:to|sa|ke|kirim ke|đến|gửi|send to)\s+\d")
_USSD = re.compile(r"(?<![\w*#])[*#]\d+(?:\*\d+)*#?(?![\w*#])")
_TIME = re.compile(r"(?<![\w.:])(?:[01]?\d|2[0-3])[:.h][0-5]\d(?:\s?(?:am|pm|AM|PM|น\.))?(?:\s?-\s?(?:[01]?\d|2[0-3])[:.h][0-5]\d"
                   r"(?:\s?(?:am|pm|AM|PM))?)?(?![\w:])|(?<![\w.:])(?:1[0-2]|0?[1-9])\s?(?:am|pm|AM|PM)(?!\w)")
_NUMBER = re.compile(r"(?<![\w.,:/])(?:\d{1,3}(?:[.,]\d{3})+|\d{3,})(?![\w.,:/]*\w)")
_FREE_SHIPPING = re.compile(r"(?i:free\s?(?:shipping|delivery|ship)|freeship|gratis\s?ongkir|penghantaran\s+percuma|"
                            r"hantar\s+percuma|libreng?\s+(?:shipping|delivery)|free\s+sf|miễn\s+phí\s+(?:vận\s+chuyển|"
                            r"giao\s+hàng|ship)|ส่งฟรี)")
# A multi-part SMS marker: "1/3" or "(2/2)" opening or closing a message, or bracketed. Not a date (`_parts`).
_PART = re.compile(r"(?<![\w/.,:])[(\[]?(?P<n>[1-9])\s?/\s?(?P<m>[1-9])[)\]]?(?![\w/.,:%])")
_DAY_WORD_BEFORE = re.compile(r"(?i)(?:\bon|\bsale|\bthis|\bsa|\bpada|\btgl|\btanggal|ngày|วันที่|\buntil|\bbefore|\bby|"
                              r"\bhanggang|\bs/d|\bs\.d\.|\bsampai|\bhingga|\bfrom|\bmulai)[\s:,(-]*$")
# Data and speed quantities in telco copy: "1GB", "3.6Mbps", "500 MB", "100 SMS".
# (money is no quantity: "Rp20.000 min. belanja" is an amount and a minimum spend, not 20,000 minutes)
_DATA_QUANTITY = re.compile(r"(?i)(?<![\d.,])(?<!rp)(?<!rm)(?<!₱)(?<!\$)(?<!฿)(?<!rp\s)(?<!rm\s)(?P<n>\d+(?:[.,]\d+)?)\s?(?P<unit>[GMKT]B|[GMK]bps|sms|texts?|mins?)(?![\w])")
_DATA_UNITS = {"texts": "sms", "text": "sms", "mins": "min"}
_DOUBLE_DAY = re.compile(r"(?<![\w.,/])(?P<d>1[0-2]|[1-9])\.(?P=d)(?![\w.,/])")

# --- dates ---------------------------------------------------------------------------------------
_MONTH_WORDS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    "januari|februari|mac|mei|julai|ogos|ogo|oktober|disember|dis|maret|juni|juli|agustus|agu|agt|ags|okt|"
    "desember|des|enero|pebrero|febrero|marso|abril|mayo|hunyo|hulyo|agosto|setyembre|septiyembre|oktubre|"
    "nobyembre|disyembre"
)
_THAI_MONTHS = (r"ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\.|"
                r"มกราคม|กุมภาพันธ์|มีนาคม|เมษายน|พฤษภาคม|มิถุนายน|กรกฎาคม|สิงหาคม|กันยายน|ตุลาคม|พฤศจิกายน|ธันวาคม")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:20\d\d|25\d\d|'\d\d)"
_THAI_YEAR = r"(?:25\d\d|20\d\d|\d\d)"
_DMY_WORD = rf"{_DAY}\s*(?:-\s*{_DAY}\s+)?(?:{_MONTH_WORDS})\.?(?:,?\s+{_YEAR}|(?<=[^\W\d_])\d\d(?!\d))?"  # "30Juni16" too
_MDY_WORD = rf"(?:{_MONTH_WORDS})\.?\s+{_DAY}(?:\s*-\s*{_DAY})?(?:,?\s+{_YEAR})?"
_THAI = rf"{_DAY}\s*(?:-\s*{_DAY}\s*)?(?:{_THAI_MONTHS})\s*(?:{_THAI_YEAR})?"
_VI = rf"{_DAY}\s+tháng\s+\d{{1,2}}(?:\s+năm\s+\d{{4}})?"
_DM = r"(?:[12]\d|3[01]|0?[1-9])"
_NUMERIC = rf"{_DM}[/.]{_DM}(?:[/.](?:20\d\d|25\d\d|\d\d))?|{_DM}-{_DM}-(?:20\d\d|\d\d)"
_ISO_DATE = r"20\d\d-\d\d-\d\d"
_ONE_DATE = rf"(?:{_ISO_DATE}|{_THAI}|{_VI}|{_DMY_WORD}|{_MDY_WORD}|{_NUMERIC})"
_DATE = re.compile(rf"(?<![\w/.,])(?i:{_ONE_DATE})(?![\w/])")
_AFTER_DASH = re.compile(r"\d-$")
_NUMERIC_RANGE_START = re.compile(r"\d{1,2}/\d{1,2}\s?-$")  # "8/15-10/31/24": the end of a range, not a fragment
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|to|until|till|hingga|sehingga|sampai|s/d|s\.d\.|hanggang|đến|ถึง|~)\s*$", re.I)
_DAY_RANGE = re.compile(rf"^(?P<d1>{_DAY})\s*-\s*(?P<d2>{_DAY})\s+(?P<rest>.+)$", re.I)
_MONTH_DAY_RANGE = re.compile(rf"^(?P<m>(?:{_MONTH_WORDS})\.?)\s+(?P<d1>{_DAY})\s*-\s*(?P<d2>{_DAY})(?P<rest>.*)$", re.I)
_THAI_MONTH_NUMBER = {name: i for i, names in enumerate([
    ("ม.ค.", "มกราคม"), ("ก.พ.", "กุมภาพันธ์"), ("มี.ค.", "มีนาคม"), ("เม.ย.", "เมษายน"), ("พ.ค.", "พฤษภาคม"),
    ("มิ.ย.", "มิถุนายน"), ("ก.ค.", "กรกฎาคม"), ("ส.ค.", "สิงหาคม"), ("ก.ย.", "กันยายน"), ("ต.ค.", "ตุลาคม"),
    ("พ.ย.", "พฤศจิกายน"), ("ธ.ค.", "ธันวาคม")], 1) for name in names}

# --- personal data -------------------------------------------------------------------------------
# A title before a name ("Kuya", "Pak", "Puan", "Chị"): neither a name a rewrite must keep nor a reader's name
_HONORIFIC_WORDS = ("Bapak", "Ibu", "Pak", "Bu", "Kak", "Ka", "Mr", "Ms", "Mrs", "Mdm", "Encik", "Cik", "Puan", "Tuan",
                    "Sis", "Bro", "Kuya", "Ate", "Tita", "Tito", "anh", "chị", "em", "Anh", "Chị", "Em", "Ma'am", "Maam",
                    "Madam", "Sir")
_HONORIFIC = "(?:" + "|".join(w + (r"\.?" if w in ("Mr", "Ms", "Mrs", "Mdm") else "") for w in _HONORIFIC_WORDS) + ")"
HONORIFICS = frozenset(w.lower() for w in _HONORIFIC_WORDS)
HONORIFIC_PATTERN = _HONORIFIC
_GREETING = re.compile(r"(?:^|(?<=[.!?:;,(\n]\s)|(?<=[.!?:;,(\n]))(?:Dạ\s+)?(?:(?:Hi|Hello|Hey|Dear|Hai|Halo|Helo|Hallo|Yth\.?|"
                       r"Welcome(?:\s+\w+){0,3}?,|Salamat(?:\s+\w+){0,3}?,|Yang\s+Dihormati|[Cc]hào|[Xx]in\s+chào|Kumusta)\s+"
                       rf"(?:{_HONORIFIC}\s+)?|(?:Salam|Assalamu['’]?alaikum)\s+{_HONORIFIC}\s+|{_HONORIFIC}\s+)(?P<name>[^\W\d_]+(?:\s[^\W\d_]+){{0,2}})(?=[\s,!.:;?)]|$)")
_ADDRESSED = re.compile(r"(?P<name>[A-Z][a-z]{2,}),\s+(?:your|you|ang|anda|kamu|ikaw|bạn)\b")  # "Rachel, your treat"
# after a space or a greeting's polite particle ("สวัสดีค่ะคุณวรรณวิสา")
_THAI_NAME = re.compile(r"(?:^|(?<=[\s:,.])|(?<=ค่ะ)|(?<=คะ)|(?<=ครับ)|(?<=สวัสดี))คุณ(?P<name>[\u0E00-\u0E7F]{2,10}?)(?=\s|,|!|$)")
_ORDER_NUMBER = re.compile(r"(?i:order|pesanan|pemesanan|booking|invoice|resit|receipt|đơn hàng|คำสั่งซื้อ)"
                           r"(?:\s+(?i:no\.?|number|nombor|nomor|số|kamu|anda|mo|ID))?\s*[:#]?\s*#?"
                           r"(?P<id>(?=[A-Z0-9/-]*\d)[A-Z0-9][A-Z0-9/-]{5,})")
_MASKED = re.compile(r"(?:[*•xX]{3,}|(?i:virtual\s+account|VA)\s+)(?P<digits>\d{3,})")
NOT_NAMES = frozenset({"there", "everyone", "all", "shopper", "shoppers", "customer", "customers", "valued", "friend",
                       "friends", "guys", "beautiful", "po", "kaibigan", "bestie", "dear", "team", "member", "members",
                       "sis", "bro", "kak", "semua", "pelanggan", "anda", "kamu", "bạn", "khách", "fam", "mga",
                       "suki", "besh", "lovely", "again", "welcome", "new", "you"}) | HONORIFICS
_ACCOUNT = re.compile(r"(?i:account|acct|card|a/c|akaun|kad|rekening|kartu|tài khoản|thẻ|บัญชี|บัตร|policy|polisi)"
                      r"[^.\n\d]{0,30}?(?i:ending(?:\sin)?|ends?\swith|berakhir(?:an)?|berakhiran|no\.?|number|nombor|"
                      r"nomor|số|ลงท้าย(?:ด้วย)?|xxxx|\*{2,}|•{2,}|x{2,})(?:\s+(?:dengan|with|in|sa|ng))?\s*[:#]?\s*"
                      r"(?P<digits>[*•xX]*\d{3,})")
_PERSONAL_CODE = re.compile(r"(?i:your|ur|yung|ang|iyong|anda|kamu|bạn|của bạn|ของคุณ)\s+(?i:personal\s|unique\s|own\s|"
                            r"exclusive\s)?(?i:referral|invite|invitation|rujukan|undangan|referal|giới thiệu|แนะนำ)"
                            r"\s+(?i:code|kod|kode|mã|โค้ด)\s*[:：]?\s*(?P<code>[A-Z0-9][A-Z0-9_-]{3,19})|"
                            r"(?:โค้ดแนะนำ|mã giới thiệu)(?:ของคุณ|của bạn)\s*[:：]?\s*(?P<code2>[A-Z0-9][A-Z0-9_-]{3,19})")
_PERSONAL_PHONE_LEAD = re.compile(r"(?:(?i:your|ur|registered|mo|anda|kamu|bạn|ของคุณ)\s+(?i:mobile\s|phone\s|cell\s|"
                                  r"number\s|no\.?\s|nombor\s|nomor\s|số\s)*|(?i:SĐT|sdt|số điện thoại của bạn)\s*:?\s*)$")

# --- names ---------------------------------------------------------------------------------------
# Common words of each language's copy (the language files' `[names] common`): capitalised mid-sentence they are
# copy or honorifics ("Anda", "Quý khách", "Paket"), not names.
ENGLISH_COMMON = frozenset(lexicons()["en"].names.get("common", ()))
COMMON_WORDS = frozenset(w for lex in lexicons().values() for w in lex.names.get("common", ()))


@dataclass(frozen=True)
class Term:
    """One stated term: `key` is the same however the term is written; `text` is as written."""

    kind: str  # amount | percent | code | date | duration | quantity | url | phone | placeholder | name | part | ...
    text: str
    key: str
    start: int
    end: int
    field: str = "body"  # title | body
    upto: bool = False
    stale: bool = False
    role: str = ""  # what it is for: a date's until/book/start/travel/pay/event/record, a number's benefit/...
    injected: bool = False  # inside text that addresses a model ("SYSTEM: ...", "ignore previous instructions")

    @property
    def deadline(self) -> bool:
        """A date a reader must act by: an offer's end or a booking's last day (not a travel or event day)."""
        return self.kind == "date" and self.role in DEADLINE_ROLES


@dataclass(frozen=True)
class Personal:
    kind: str  # person_name | account_number | personal_code | personal_phone
    text: str
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class Injected:
    """A stretch of a message that addresses a model instead of a reader."""

    field: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Reading:
    """What one message states: terms to keep, deadlines already past, personal data, injected text."""

    terms: tuple[Term, ...] = ()
    personal: tuple[Personal, ...] = ()
    as_of: date | None = None
    injected: tuple[Injected, ...] = ()

    @property
    def kept_terms(self) -> tuple[Term, ...]:
        """Terms a rewrite must keep: all but stale dates and what sits inside injected text."""
        return tuple(t for t in self.terms if not t.stale and not t.injected)

    @property
    def stale(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.stale)

    def of_kind(self, *kinds: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind in kinds)


@dataclass(frozen=True)
class Market:
    """Where a message is sent: its currency, phone region and numeric date order."""

    currency: str | None = None
    region: str | None = None
    month_first: bool = False  # 7/15 (Philippines, US) rather than 15/7
    language: str | None = None  # whose role words apply (English's always do)

    @classmethod
    def of(cls, language: str | None, currency: str | None) -> "Market":
        code = code_of(currency) if currency else None
        region = ({"MYR": "MY", "PHP": "PH", "IDR": "ID", "SGD": "SG", "THB": "TH", "VND": "VN", "USD": "US"}.get(code or "")
                  or {"ms": "MY", "id": "ID", "tl": "PH", "th": "TH", "vi": "VN"}.get(language or ""))
        return cls(currency=code, region=region, month_first=region in ("PH", "US"), language=language)


# --- numbers and amounts ---------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def number(text: str) -> Decimal | None:
    """A number as merchants write it: '1,299.00', '50.000', '1,5' -> Decimal (price-parser's separators)."""
    from price_parser import Price

    amount = Price.fromstring(text).amount
    if amount is None:
        return None
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", text):  # '50.000' and '1.500.000': thousands in id/vi/ms copy
        return Decimal(text.replace(".", ""))
    return amount


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value.normalize())


def money_key(currency: str | None, value: Decimal) -> str:
    return f"amount:{currency or '?'}:{_fmt(value)}"


def _amount_value(num: str, mult: str | None) -> Decimal | None:
    value = number(num)
    if value is None:
        return None
    if mult:
        value *= MULTIPLIERS[mult.lower()]
    return value


# --- the reader ------------------------------------------------------------------------------------
class _Spans:
    """Character spans already claimed by a term, so one stretch of text is one term."""

    def __init__(self) -> None:
        self.taken = bytearray()  # 1 where a character is claimed: a lookup costs the span's length, not the terms'

    def free(self, start: int, end: int) -> bool:
        if end <= start:  # an empty span is taken only strictly inside a claimed one
            return not (0 < start < len(self.taken) and self.taken[start - 1] and self.taken[start])
        return 1 not in self.taken[start:end]

    def claim(self, start: int, end: int) -> None:
        if end > len(self.taken):
            self.taken.extend(bytes(end - len(self.taken)))
        self.taken[start:end] = b"\x01" * max(0, end - start)


def read(title: str | None, body: str | None, *, language: str | None = None, currency: str | None = None,
         as_of: date | None = None, names: tuple[str, ...] = ()) -> Reading:
    """Every term and every piece of personal data in a message. `names`: brand or product names known from
    the facts (kept when the text states them). Dates before `as_of` are stale."""
    market = Market.of(language, currency)
    terms: list[Term] = []
    personal: list[Personal] = []
    injected: list[Injected] = []
    for field_name, text in (("title", title or ""), ("body", body or "")):
        spans = _Spans()
        found_personal = _personal(text, field_name, market, spans)
        personal += found_personal
        found = _with_stale_companions(_read_field(text, field_name, market, as_of, spans, names), text)
        here = _injected(text, field_name)
        injected += here
        terms += [replace(t, injected=True) if any(i.start <= t.start < i.end for i in here) else t for t in found]
    return Reading(tuple(terms), tuple(personal), as_of, tuple(injected))


def companions(gap: str) -> bool:
    """Is `gap` what separates a deadline's date from its time or label ("23:59 ngày 28/05", "HSD: 31/5")?"""
    return len(gap) <= 8 and bool(re.fullmatch(r"[\s,:;\-–(]*(?:ngày|vào|at|pukul|jam|เวลา|on)?[\s,:;\-–(]*", gap))


def _with_stale_companions(found: list[Term], text: str) -> list[Term]:
    """A passed deadline takes its time and its label with it: "28 Mei, 11:59PM", "HSD: 31/5", "23h59 ngày 5/6"."""
    stale = [t for t in found if t.stale]
    if not stale:
        return found

    def beside(t: Term) -> bool:
        return any(companions(text[t.end:s.start] if t.end <= s.start else text[s.end:t.start]) for s in stale)

    return [replace(t, stale=True) if not t.stale and (t.kind == "time" or (t.kind == "name" and len(t.text) <= 4))
            and beside(t) else t for t in found]


def _read_field(text: str, field_name: str, market: Market, as_of: date | None, spans: _Spans,
                names: tuple[str, ...]) -> list[Term]:
    out: list[Term] = []

    def add(kind: str, start: int, end: int, key: str, upto: bool = False, stale: bool = False) -> None:
        spans.claim(start, end)
        out.append(Term(kind, text[start:end], key, start, end, field_name, upto, stale))

    for start, end, n, m in _parts(text):
        if spans.free(start, end):
            add("part", start, end, key=f"part:{n}/{m}")
    for m in _PLACEHOLDER.finditer(text):
        if spans.free(*m.span()):
            add("placeholder", *m.span(), key=f"placeholder:{m.group()}")
    for start, end, url in _urls(text):
        if spans.free(start, end):
            add("url", start, end, key=f"url:{url.lower().rstrip('/')}")
    for start, end, e164 in _phones(text, market):
        if spans.free(start, end):
            add("phone", start, end, key=f"phone:{e164}")
    for m in _USSD.finditer(text):
        if spans.free(*m.span()):
            add("phone", *m.span(), key=f"phone:{m.group()}")
    for m in _KEYWORD.finditer(text):
        if spans.free(*m.span("kw")):
            add("keyword", *m.span("kw"), key=f"keyword:{m.group('kw').upper()}")
    for m in _FREE_SHIPPING.finditer(text):
        if spans.free(*m.span()):
            add("offer", *m.span(), key="offer:free_shipping")
    for m in _DATA_QUANTITY.finditer(text):
        if spans.free(*m.span()):
            value = number(m.group("n"))
            if value is not None:
                unit = m.group("unit").lower()
                add("quantity", *m.span(), key=f"quantity:{_fmt(value)}{_DATA_UNITS.get(unit, unit)}")
    for m in _PERCENT.finditer(text):
        start = m.start("upto") if m.group("upto") else m.start("num")
        if spans.free(start, m.end()):
            value = number(m.group("num"))
            if value is not None:
                add("percent", start, m.end(), key=f"percent:{_fmt(value)}", upto=bool(m.group("upto")))
    for pattern in (_AMOUNT_PRE, _AMOUNT_POST, _AMOUNT_BARE):
        for m in pattern.finditer(text):
            start = m.start("upto") if m.group("upto") else m.start("num") if pattern is not _AMOUNT_PRE else m.start("cur")
            if not spans.free(start, m.end()):
                continue
            written = m.groupdict().get("cur")
            if written and written.lower() in ("p",) and market.region not in (None, "PH"):
                continue  # a bare P is the peso only in Philippine copy
            cur = code_of(written.rstrip("."), market.currency) if written else market.currency
            value = _amount_value(m.group("num"), m.group("mult"))
            if value is None or (pattern is _AMOUNT_BARE and m.group("mult").lower() == "k" and not _k_is_money(text, m)):
                continue
            add("amount", start, m.end(), key=money_key(cur, value), upto=bool(m.group("upto")))
    for m in _TIME.finditer(text):
        if spans.free(*m.span()):
            add("time", *m.span(), key=f"time:{re.sub(r'[^0-9apm]', '', m.group().lower())}")
    for m in _CODE_KEYWORD.finditer(text):
        if spans.free(*m.span("code")) and not m.group("code").isdigit():
            add("code", *m.span("code"), key=f"code:{m.group('code')}")
    for start, end, days, stale_end in _dates(text, market, as_of):
        if spans.free(start, end):
            for when in days:  # "1-31 Des" names two dates in one span
                out.append(Term("date", text[start:end], f"date:{when.isoformat()}", start, end, field_name,
                                stale=stale_end))
            spans.claim(start, end)
    for m in _DOUBLE_DAY.finditer(text):
        if spans.free(*m.span()):
            day = int(m.group("d"))
            past = as_of is not None and date(as_of.year, day, day) < as_of
            add("date", *m.span(), key=f"sale_day:{day}.{day}", stale=past)
    for m in _DURATION.finditer(text):
        if spans.free(*m.span()):
            unit = _unit(m.group("unit"))
            add("duration", *m.span(), key=f"duration:{m.group('n').replace(' ', '')}{unit}")
    for m in _QUANTITY.finditer(text):
        if spans.free(*m.span()):
            add("quantity", *m.span(), key=f"quantity:{m.group('n')}{m.group('unit').lower()}")
    for m in _CODE_SHAPE.finditer(text):
        if spans.free(*m.span()):
            add("code", *m.span(), key=f"code:{m.group()}")
    for m in _NUMBER.finditer(text):
        if spans.free(*m.span()):
            value = number(m.group())
            if value is not None:
                add("number", *m.span(), key=f"number:{_fmt(value)}")
    for start, end in _names(text, names, spans):
        if spans.free(start, end):
            add("name", start, end, key=f"name:{text[start:end].casefold()}")
    return _with_roles(text, sorted(out, key=lambda t: t.start), market)


def _parts(text: str) -> list[tuple[int, int, int, int]]:
    """(start, end, n, m) of multi-part markers: "1/3" opening or closing the message, or in brackets. "3/3" after
    "on"/"sale"/"until" is a day, not a part."""
    out = []
    for m in _PART.finditer(text):
        n, total = int(m.group("n")), int(m.group("m"))
        if n > total:
            continue
        bracketed = m.group().startswith(("(", "[")) and m.group().endswith((")", "]"))
        opens = not re.sub(r"[\W_]", "", text[:m.start()])
        closes = not re.sub(r"[\W_]", "", text[m.end():])
        if (bracketed or opens or closes) and not (not bracketed and _DAY_WORD_BEFORE.search(text[:m.start()])):
            out.append((m.start(), m.end(), n, total))
    return out


# --- roles: what a date or a number is for ------------------------------------------------------------
DEADLINE_ROLES = frozenset({"until", "book"})  # an offer's last day, a booking's last day: reasons to act now
_SENTENCE_END = re.compile(r"[!?\n]|\.(?=\s|$)")


@lru_cache(maxsize=16)
def role_words(*names: str) -> tuple[str, ...]:
    """The role words of these lists in every language file, longest first ("áp dụng đến", "valid until", "s.d.")."""
    return tuple(sorted({w.lower() for lex in lexicons().values() for n in names for w in lex.roles.get(n, ())},
                        key=len, reverse=True))


def _role_patterns(language: str | None) -> dict[str, tuple[re.Pattern, re.Pattern]]:
    """Per role list (the language file's `[roles]`, plus English's): a pattern found anywhere in a window, and the
    same anchored at the window's start (for the words right after a number: "RM5 off", "P350 lang")."""
    words: dict[str, set[str]] = {}
    for code in dict.fromkeys([language or "en", "en"]):
        for name, listed in lexicon(code).roles.items():
            words.setdefault(name, set()).update(w.lower() for w in listed)
    unspaced = lexicon(language).unspaced
    out = {}
    for name, listed in words.items():
        body = "|".join(re.escape(w) for w in sorted(listed, key=len, reverse=True))
        edge_l, edge_r = ("", "") if unspaced else (r"(?<![^\W\d_])", r"(?![^\W\d_])")
        out[name] = (re.compile(f"{edge_l}(?:{body}){edge_r}", re.I), re.compile(rf"\s*(?:{body}){edge_r}", re.I))
    return out


_ABBREVIATED = frozenset({"min", "max", "maks", "no", "disc", "hrs", "hr", "tel", "yth", "bpk", "pt", "st", "mr", "ms",
                          "mrs", "dr", "vs", "etc", "approx", "incl", "excl", "sdn", "bhd", "inc", "co", "jl", "ext",
                          "pls", "tgl", "hub", "ref", "rp", "php", "sgd", "rm"})


def sentence_ends(text: str) -> list[int]:
    """Where sentences end: !, ?, a new line, or a full stop that does not close an abbreviation ("s.d.", "min.")."""
    out = []
    for m in _SENTENCE_END.finditer(text):
        # the word before the stop, from a bounded window: searching the whole prefix made long texts quadratic
        word = re.search(r"([^\W\d_]+)\.$", text[max(0, m.end() - 64):m.end()])
        if m.group() == "." and word and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATED):
            continue
        out.append(m.end())
    return out


def _window_before(text: str, start: int, limit: int) -> str:
    """The clause before a term, at most `limit` characters: role words do not reach across sentences."""
    before = text[max(0, start - limit):start]
    ends = sentence_ends(before)
    return before[ends[-1]:] if ends else before


def _nearest(patterns: dict[str, tuple[re.Pattern, re.Pattern]], names: tuple[str, ...], window: str
             ) -> tuple[str, int] | None:
    """The role list whose match ends nearest the window's end (the longest on a tie), and the gap after it."""
    best = None
    for name in names:
        if name not in patterns:
            continue
        for m in patterns[name][0].finditer(window):
            key = (m.end(), len(m.group()))
            if best is None or key > best[0]:
                best = (key, name)
    return (best[1], len(window) - best[0][0]) if best else None


def _date_role(text: str, t: Term, patterns) -> str:
    found = _nearest(patterns, ("until", "start", "book", "travel", "pay", "event"), _window_before(text, t.start, 45))
    if _records_a_past_event(text, t.start, t.end) and (found is None or found[0] == "event"):
        return "record"
    return found[0] if found else "date"


def _number_role(text: str, t: Term, patterns) -> str:
    """benefit (what the reader gets), threshold (a minimum spend), cap, price, account (a balance, a limit, a bill)
    or plain amount."""
    before, after = _window_before(text, t.start, 32), text[t.end:t.end + 24]
    if t.upto and re.match(r"(?i)max|maks|tối đa|สูงสุด", t.text):
        return "cap"
    near = _nearest(patterns, ("cap_before", "threshold_before"), before)
    if near and near[1] <= 3:  # "max RM25 off", "min. spend RM80": the word beside the number wins
        return near[0].removesuffix("_before")
    for name, role in (("benefit_after", "benefit"), ("threshold_after", "threshold"), ("price_after", "price")):
        if name in patterns and patterns[name][1].match(after):
            return role
    if "account" in patterns and (patterns["account"][0].search(before) or patterns["account"][0].search(after)):
        return "account"
    near = _nearest(patterns, ("benefit_before", "threshold_before", "cap_before", "price_before"), before)
    return near[0].removesuffix("_before") if near else "amount"


def _with_roles(text: str, found: list[Term], market: Market) -> list[Term]:
    """Each date and number with its role. A range's ends share the role of the words before it (travel, book),
    or else run from a start to an until. A past date is stale whatever its role (the message is out of date); what
    may be done about it depends on the role: only an offer's passed deadline may simply come out."""
    patterns = _role_patterns(market.language)
    out = []
    for t in found:
        if t.kind == "date":
            out.append(replace(t, role=_date_role(text, t, patterns)))
        elif t.kind in ("amount", "percent"):
            out.append(replace(t, role=_number_role(text, t, patterns)))
        else:
            out.append(t)
    dates = [i for i, t in enumerate(out) if t.kind == "date"]
    for a, b in zip(dates, dates[1:]):
        first, second = out[a], out[b]
        if first.end <= second.start and _RANGE_JOIN.match(text[first.end:second.start]):
            lead = first.role if first.role in ("travel", "book", "event", "pay") else None
            out[a], out[b] = replace(first, role=lead or "start"), replace(second, role=lead or "until")
    return out


# --- injected text -------------------------------------------------------------------------------------
_INJECTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|"
    r"system)\s+(?:instructions?|prompts?|rules?|messages?)|(?<![\w])(?:system|assistant|developer)\s*:|"
    r"</?\s*(?:merchant_text|system|assistant|im_start|im_end)\b[^>]*>|<\|im_(?:start|end)\|>|\byou are now\b|"
    r"\bas an ai\b|\b(?:rate|score)\s+(?:this|it|the message|both)\b|\brespond (?:only )?with\b|\badmin mode\b|"
    r"\bnew instructions?\b|\bjailbreak\b")


def _injected(text: str, field_name: str) -> list[Injected]:
    """Sentences that address a model rather than a reader. Terms inside them are none of the merchant's offer."""
    out: list[Injected] = []
    for m in _INJECTION.finditer(text):
        ends = sentence_ends(text)
        left = max((e for e in ends if e <= m.start()), default=0)
        right = next((e for e in ends if e > m.end()), len(text))
        if out and left <= out[-1].end:
            left = out[-1].start
            out.pop()
        out.append(Injected(field_name, left, right, text[left:right].strip()))
    return out


def _k_is_money(text: str, m: re.Match) -> bool:
    """'299K' is money in price copy; '4K TV' or '10K steps' is not: money has a money word nearby."""
    window = text[max(0, m.start() - 25): m.end() + 25].lower()
    return bool(re.search(r"off|save|spend|worth|voucher|cashback|discount|giảm|đơn|từ|mua|tặng|diskon|potongan|"
                          r"belanja|ลด|ซื้อ|min|only|just|for|now|price|harga|presyo|giá|rebate|credit|₫|đ", window))


def _unit(word: str) -> str:
    w = word.lower().rstrip(".")
    for unit, forms in (("d", ("day", "days", "hari", "araw", "วัน", "ngày")),
                        ("h", ("hour", "hours", "hr", "hrs", "jam", "oras", "giờ", "ชั่วโมง")),
                        ("w", ("week", "weeks", "minggu", "linggo", "tuần", "สัปดาห์")),
                        ("min", ("minute", "minutes", "min", "mins", "minit", "menit", "phút", "นาที")),
                        ("y", ("year", "years", "yr", "yrs", "tahun", "taon", "năm", "ปี"))):
        if w in forms:
            return unit
    return "mo"


# A link written not to be clickable, as banks do: "citi[.]asia/phwsre", "bdo(dot)com(dot)ph".
_DEFANGED = re.compile(r"(?i)(?<![\w.])[a-z0-9-]+(?:(?:\[\.\]|\(\.\)|\[dot\]|\(dot\))[a-z0-9-]+)+(?:/[^\s]*)?")


def _urls(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _DEFANGED.finditer(text):
        trimmed = m.group().rstrip(".,!?;:)}'\"")
        out.append((m.start(), m.start() + len(trimmed), re.sub(r"(?i)\[\.\]|\(\.\)|\[dot\]|\(dot\)", ".", trimmed)))
    for url, (start, end) in _url_extractor().find_urls(text, get_indices=True):
        if any(a <= start < b for a, b, _ in out):
            continue
        trimmed = url.rstrip(".,!?;:)]}'\"")
        end -= len(url) - len(trimmed)
        if re.fullmatch(r"[\d.,]+", trimmed) or "@" in trimmed or not _looks_like_a_link(trimmed):
            continue
        out.append((start, end, re.sub(r"^https?://", "", trimmed)))
    for m in _OFF_LIST_LINK.finditer(text):  # a scheme, or a reserved or onion TLD, the IANA list does not name
        if any(a <= m.start() < b for a, b, _ in out):
            continue
        trimmed = m.group().rstrip(".,!?;:)]}'\"")
        out.append((m.start(), m.start() + len(trimmed), re.sub(r"(?i)^https?://", "", trimmed)))
    return out


# Links the extractor's TLD list misses: any http(s) address, and the reserved and special-use names (RFC 2606,
# 6761, 7686: .example, .test, .invalid, .localhost, .local, .onion) and private ones (.internal, .lan, .corp, .home)
_OFF_LIST_LINK = re.compile(r"(?i)\bhttps?://[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+(?:example|test|invalid|localhost|local|onion|"
                            r"internal|lan|corp|home)\b(?:[/?#][^\s<>\"']*)?")


_SHOUTED_TLDS = frozenset("com net org ph my id sg th vn co io app shop store online link page ly me gov edu".split())


def _looks_like_a_link(url: str) -> bool:
    """A link as written, not two sentences glued at a full stop ("skrg.Promo", "terbatas.Info") or a dotted brand
    ("MR.DIY"): a scheme, "www." or a path settles it; else the domain is lower-case, or shouted with a common TLD."""
    if re.match(r"(?i)https?://|www\.", url) or "/" in url:
        return True
    domain = url.split(":")[0]
    if domain.islower() or not re.search(r"[A-Za-z]", domain):
        return True
    return domain.isupper() and domain.rsplit(".", 1)[-1].lower() in _SHOUTED_TLDS


@lru_cache(maxsize=1)
def _url_extractor():
    from urlextract import URLExtract

    extractor = URLExtract(extract_email=False)
    extractor.ignore_list = set()
    return extractor


_PHONE_LIKE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")


def _phones(text: str, market: Market) -> list[tuple[int, int, str]]:
    return list(_phones_cached(text, market.region))


@lru_cache(maxsize=8192)
def _phones_cached(text: str, region_hint: str | None) -> tuple[tuple[int, int, str], ...]:
    """Phone numbers (E.164) in the market's region first, then the platform's other markets; shortcodes after
    'text', 'dial', 'call'. Read once per text: both the terms and the personal-data pass ask."""
    import phonenumbers

    out = []
    regions = dict.fromkeys([region_hint or "PH", "PH", "MY", "ID", "SG", "TH", "VN"]) if _PHONE_LIKE.search(text) else {}
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if any(not (m.end <= s or m.start >= e) for s, e, _ in out):
                continue
            out.append((m.start, m.end, phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)))
        if out:
            break
    for m in _SHORTCODE.finditer(text):
        s, e = m.span("code")
        digits = re.sub(r"[ -]", "", m.group("code"))
        if not any(not (e <= a or s >= b) for a, b, _ in out) and len(re.sub(r"\D", "", digits)) >= 3:
            out.append((s, e, digits))
    return tuple(out)


# --- dates ---------------------------------------------------------------------------------------
def _dates(text: str, market: Market, as_of: date | None) -> list[tuple[int, int, list[date], bool]]:
    """(start, end, date, stale) for every date; a range's ends are stale only when the range has ended."""
    found = []
    for m in _DATE.finditer(text):
        before = text[max(0, m.start() - 8):m.start()]
        ends_a_range = bool(found) and re.fullmatch(r"\s?[-–]\s?", text[found[-1][1]:m.start()]) is not None
        if _AFTER_DASH.search(before) and not _NUMERIC_RANGE_START.search(before) and not ends_a_range:
            continue  # a piece of "2024-05-22" or "1-31"; "31พ.ค.67-27มิ.ย.67" ends a range the date before opened
        if re.fullmatch(r"\d{1,2}\.\d{1,2}", m.group()) and _DOUBLE_DAY.fullmatch(m.group()):
            continue  # "11.11" is a sale day, read below
        if re.fullmatch(r"\d{1,2}[.,]\d{1,3}", m.group()) and market.region not in ("VN", "TH") and not re.search(
                r"(?i)ngày|tháng|từ|đến|tới|hsd|hạn|tgl|tanggal", text[max(0, m.start() - 12):m.start()]):
            continue  # "1.5" is a number, not a date, except where dates are written d.m
        end = m.end() - (1 if re.search(r"[A-Za-z]\.$", m.group()) else 0)  # "25 Mei." ends a sentence
        found.append([m.start(), end, text[m.start():end]])
    # A numeric date that can only be read one way sets the order of the ambiguous ones beside it: "6/30/25" says
    # that "10/9/24" in the same message is 9 October, whatever the market's usual order.
    orders = set()
    for _, _, span in found:
        numeric = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-]\d{2,4})?", span)
        if numeric and (int(numeric.group(1)) > 12) != (int(numeric.group(2)) > 12):
            orders.add(int(numeric.group(2)) > 12)
    if len(orders) == 1:
        market = replace(market, month_first=orders.pop())
    # A range's later end lends its year to the earlier one ("7/15 - 8/30/24").
    parsed: list[tuple[int, int, list[date]]] = []
    for i, (start, end, span) in enumerate(found):
        year_hint = None
        if i + 1 < len(found) and _RANGE_JOIN.match(text[end:found[i + 1][0]]):
            year_hint = _year_of(found[i + 1][2])
        days = _parse_span(span, market, as_of, year_hint)
        if days:
            parsed.append((start, end, days))
    out = []
    for i, (start, end, days) in enumerate(parsed):
        last = days[-1]
        if i + 1 < len(parsed) and _RANGE_JOIN.match(text[end:parsed[i + 1][0]]):
            last = parsed[i + 1][2][-1]  # the range ends at the next date
        past = as_of is not None and last < as_of and not _records_a_past_event(text, start, end)
        out.append((start, end, list(dict.fromkeys(days)), past))
    return out


_DONE = re.compile(r"(?i)\b(?:berjaya|berhasil|successful(?:ly)?|processed|diproses|completed|received|paid on|"
                   r"dated|bertarikh|placed on|ordered on)\b|đã\s|สำเร็จ")
_DEADLINE = re.compile(r"(?i)\b(?:until|till|valid|ends?|expires?|before|by|sehingga|hingga|sampai|s/d|berlaku|sah|"
                       r"tamat|berakhir(?!\s+dengan)|sebelum|hanggang|bago|only|lang|sahaja|saja)\b|đến|hạn|trước|ถึง|ภายใน|ก่อน")


def _records_a_past_event(text: str, start: int, end: int) -> bool:
    """A past date in a sentence that reports something done ('processed on 31/05') is a record, not a
    deadline that has passed."""
    left = max(text.rfind(c, 0, start) for c in ".!?\n") + 1
    rights = [i for i in (text.find(c, end) for c in ".!?\n") if i >= 0]
    sentence = text[left: min(rights) if rights else len(text)]
    return bool(_DONE.search(sentence)) and not _DEADLINE.search(sentence)


def _year_of(span: str) -> int | None:
    m = re.search(r"(?:[/.-]|\s|,)'?(20\d\d|25\d\d|\d\d)\s*$", span)
    if not m or re.fullmatch(r"(?:[12]\d|3[01]|0?[1-9])", span.strip()):
        return None
    return _full_year(m.group(1), thai=bool(re.search(r"[\u0E00-\u0E7F]", span)))


def _full_year(y: str, thai: bool = False) -> int:
    year = int(y)
    if year < 100:
        year += 2500 if thai and year >= 43 else 2000
    return year - 543 if year >= 2400 else year


def _parse_span(span: str, market: Market, as_of: date | None, year_hint: int | None) -> list[date]:
    """One written date (or a same-month day range, '1-31 Des') -> the dates it names."""
    span = span.strip()
    m = _DAY_RANGE.match(span) or _MONTH_DAY_RANGE.match(span)
    if m:
        rest = m.group("rest")
        if "m" in m.groupdict():
            first, second = f"{m.group('m')} {m.group('d1')}{rest}", f"{m.group('m')} {m.group('d2')}{rest}"
        else:
            first, second = f"{m.group('d1')} {rest}", f"{m.group('d2')} {rest}"
        return [d for s in (first, second) for d in _parse_span(s, market, as_of, year_hint)]
    thai = re.search(rf"({_THAI_MONTHS})", span)
    if thai:
        day = int(re.match(r"\d+", span).group())
        year_m = re.search(r"(\d{2,4})\s*$", span[thai.end():])
        year = _full_year(year_m.group(1), thai=True) if year_m else year_hint
        return _dated(year, _THAI_MONTH_NUMBER[thai.group(1)], day, as_of)
    vi = re.match(r"(\d{1,2})\s+tháng\s+(\d{1,2})(?:\s+năm\s+(\d{4}))?", span)
    if vi:
        year = int(vi.group(3)) if vi.group(3) else year_hint
        return _dated(year, int(vi.group(2)), int(vi.group(1)), as_of)
    numeric = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?", span)
    if numeric:
        a, b = int(numeric.group(1)), int(numeric.group(2))
        month, day = (a, b) if (market.month_first and a <= 12) or b > 12 else (b, a)
        if month > 12:
            month, day = day, month
        year = _full_year(numeric.group(3)) if numeric.group(3) else year_hint
        return _dated(year, month, day, as_of)
    if re.fullmatch(r"20\d\d-\d\d-\d\d", span):
        return _safe(int(span[:4]), int(span[5:7]), int(span[8:]))
    return _parse_words(span, as_of, year_hint)


def _parse_words(span: str, as_of: date | None, year_hint: int | None) -> list[date]:
    """Month-name dates in en/ms/id/tl through dateparser, which knows each language's month names."""
    cleaned = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", span)
    cleaned = re.sub(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)", " ", cleaned)  # "30Juni16" -> "30 Juni 16"
    year_m = re.search(r"(?:,?\s+)'?(20\d\d|\d\d)$", cleaned)
    year = _full_year(year_m.group(1)) if year_m and not re.fullmatch(r"\D*\d{1,2}", cleaned) else None
    if year_m and year is not None:
        cleaned = cleaned[: year_m.start()]
    got = _dateparser(cleaned.strip(" .,"))
    if got is None:
        return []
    return _dated(year or year_hint, got[0], got[1], as_of)


@lru_cache(maxsize=4096)
def _dateparser(text: str) -> tuple[int, int] | None:
    """(month, day) of a month-name date with no year, or None."""
    import dateparser

    got = dateparser.parse(text, languages=["en", "ms", "id", "tl"],
                           settings={"REQUIRE_PARTS": ["day", "month"], "RELATIVE_BASE": datetime(2000, 1, 1),
                                     "PREFER_DATES_FROM": "current_period", "DATE_ORDER": "DMY"})
    return (got.month, got.day) if got else None


RECENTLY_PASSED_DAYS = 120  # a yearless date this far back is one that has passed, not next year's


def _dated(year: int | None, month: int, day: int, as_of: date | None) -> list[date]:
    """The date a text means: in its stated year, else its next occurrence from the send date, unless it passed
    within the last four months ("s.d. 5 Jan" sent on 20 Dec is next January; "until 30 May" sent on 1 June is the
    May just gone; "Ends 12 Dec" sent in June is this December)."""
    if year is not None:
        return _safe(year, month, day)
    base = as_of or date.today()
    found = sorted(d for y in (base.year - 1, base.year, base.year + 1) for d in _safe(y, month, day))
    recent = [d for d in found if base - timedelta(days=RECENTLY_PASSED_DAYS) <= d < base]
    coming = [d for d in found if d >= base]
    return (recent[-1:] or coming[:1] or found[-1:]) if found else []


def _safe(year: int, month: int, day: int) -> list[date]:
    try:
        return [date(year, month, day)]
    except ValueError:
        return []


# --- personal data -------------------------------------------------------------------------------
def _signs_off(text: str, start: int) -> bool:
    """A name in the closing lines, after "Terima kasih," or "Love,": the sender ("Kak Yah & the team"), not a
    reader."""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[:line_start].rstrip()
    after = text[start:].strip()
    return bool(line_start) and before.endswith(",") and after.count("\n") <= 1 and "\n" in text[:line_start]


def _personal(text: str, field_name: str, market: Market, spans: _Spans) -> list[Personal]:
    out = []
    for m in _GREETING.finditer(text):
        words = m.group("name").split()
        while words and not (words[-1][:1].isupper() and words[-1].lower() not in NOT_NAMES | COMMON_WORDS):
            words.pop()  # "Hi Scott, your" -> "Scott"
        if not words or words[0].lower() in NOT_NAMES or not words[0][:1].isupper() or _distinctive(words[0]):
            continue
        name = " ".join(words)
        out.append(Personal("person_name", name, field_name, m.start("name"), m.start("name") + len(name)))
        spans.claim(m.start(), m.start("name"))  # "Salam Puan" before the name is a greeting, not a brand
    m = _ADDRESSED.match(text)
    if m and m.group("name").lower() not in NOT_NAMES | COMMON_WORDS and not any(p.start == m.start("name") for p in out):
        out.append(Personal("person_name", m.group("name"), field_name, *m.span("name")))
    for m in _THAI_NAME.finditer(text):
        if m.group("name") not in ("ลูกค้า", "สมาชิก", "ทุกคน", "ลูกค้าใหม่"):
            out.append(Personal("person_name", m.group("name"), field_name, *m.span("name")))
    for m in _ORDER_NUMBER.finditer(text):
        out.append(Personal("order_number", m.group("id"), field_name, *m.span("id")))
    for m in _MASKED.finditer(text):
        if not any(p.start <= m.start("digits") < p.end for p in out):
            out.append(Personal("account_number", m.group("digits"), field_name, *m.span("digits")))
    for m in _ACCOUNT.finditer(text):
        out.append(Personal("account_number", m.group("digits"), field_name, *m.span("digits")))
    for m in _PERSONAL_CODE.finditer(text):
        group = "code" if m.group("code") else "code2"
        out.append(Personal("personal_code", m.group(group), field_name, *m.span(group)))
    for start, end, _ in _phones(text, market):
        if _PERSONAL_PHONE_LEAD.search(text[max(0, start - 40):start]):
            out.append(Personal("personal_phone", text[start:end], field_name, start, end))
    out = [p for i, p in enumerate(out) if not any(q.start <= p.start and p.end <= q.end and j != i and (q.start, q.end) != (p.start, p.end)
                                                      for j, q in enumerate(out))]
    out = [p for p in out if not (p.kind == "person_name" and _signs_off(text, p.start))]
    for p in out:
        spans.claim(p.start, p.end)
    return out


# --- names ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[^\W_][\w'’&+.-]*[\w+]|[^\W_]", re.UNICODE)
# A dot inside a token ends a sentence that was glued to the next one ("KB.Dapatkan", "terbatas.Promo", "11.Plg",
# "Mbps.tekan"); between capitals ("MR.DIY") or digits ("3.6") it does not.
_GLUED = re.compile(r"(?<=[a-z])\.(?=[A-Za-z])|(?<=[A-Za-z])\.(?=[A-Z][a-z])|(?<=\d)\.(?=[A-Za-z])|(?<=[A-Za-z]{2})\.(?=\d)")


@dataclass(frozen=True)
class _Tok:
    """A token of `_names`, with the span methods of a match."""

    text: str
    begin: int

    def group(self) -> str:
        return self.text

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.begin + len(self.text)

    def span(self) -> tuple[int, int]:
        return self.begin, self.end()


def _tokens(text: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        cut = 0
        for g in _GLUED.finditer(m.group()):
            piece = m.group()[cut:g.start()]
            if piece:
                out.append(_Tok(piece, m.start() + cut))
            cut = g.end()
        rest = m.group()[cut:]
        if rest and re.search(r"\w", rest):
            out.append(_Tok(rest.rstrip("."), m.start() + cut))
    return [t for t in out if t.text]


def is_common(word: str) -> bool:
    """A word of ordinary copy in any language here (not a brand or product name)."""
    return _is_common(word)


def _is_common(word: str) -> bool:
    w = word.lower().strip(".'’")
    return w in COMMON_WORDS or w in COPY_WORDS or w in HONORIFICS


def _distinctive(word: str, shouting: bool = False) -> bool:
    """A word that is a name by its shape: GFiber, iPhone, 50Mbps, S24, BDO (not a common word in capitals). In a
    shouted line every word is in capitals, so only a short acronym still stands out."""
    if re.fullmatch(r"\d+", word) or _is_common(word):
        return False
    if re.search(r"[a-z][A-Z]|^[A-Z]{2,}[a-z]", word) or (re.search(r"\d", word) and re.search(r"[A-Za-z]", word)):
        return True
    return len(word) >= 2 and word.isupper() and word.isalpha() and word.isascii() and len(word) <= (3 if shouting else 6)


def _names(text: str, known: tuple[str, ...], spans: _Spans | None = None) -> list[tuple[int, int]]:
    """Brand and product names: the facts' names where the text states them, then capitalised runs that hold a
    word that is not common copy ("Samsung Buds FE", "Voucher Pocket", "BDO Credit Card")."""
    out: list[tuple[int, int]] = []
    lowered = text.casefold()
    for name in known:
        if name and len(name) >= 3:
            i = lowered.find(name.casefold())
            if i >= 0:
                out.append((i, i + len(name)))
    tokens = [t for t in _tokens(text) if spans is None or spans.free(*t.span())]
    words = [t.group() for t in tokens]
    alpha = [w for w in words if w[:1].isalpha()]
    title_case = len(alpha) >= 4 and sum(w[:1].isupper() for w in alpha) >= 0.7 * len(alpha)
    # Shouting is read per sentence: one shouted line in otherwise normal copy is still shouted.
    loud = []
    every = [t.group() for t in tokens if len(t.group()) > 1 and t.group().isalpha()]
    if len(every) >= 4 and sum(w.isupper() for w in every) >= 0.4 * len(every):
        loud.append((0, len(text)))  # a text that mostly shouts shouts throughout: "PAKE KODE" is no brand
    starts = [t.start() for t in tokens]
    for sentence in re.finditer(r"[^.!?\n]+[.!?\n]*", text):
        inside = tokens[bisect_left(starts, sentence.start()):bisect_left(starts, sentence.end())]
        ws = [t.group() for t in inside if len(t.group()) > 1 and t.group().isalpha()]
        if len(ws) >= 2 and sum(w.isupper() for w in ws) >= 0.6 * len(ws):
            loud.append((sentence.start(), sentence.end()))
    shouting = False
    run: list[re.Match] = []
    opens_sentence = False

    def close() -> None:
        while len(run) > 1 and re.fullmatch(r"\d+x", run[-1].group()):
            run.pop()  # "buka Sneakers Langkah Canvas 3x": a count of times, not a model number
        if run:
            names = [t.group() for t in run]
            # In running text a capital mid-sentence marks a name even on a common word ("on Grab"); in Title
            # Case or shouted lines only a word's own shape does.
            # in a shouted text the words written in mixed case are the ones that were not shouted: names
            quiet = shouting and any(w[:1].isupper() and not w.isupper() and not _is_common(w) for w in names)
            keep = quiet or any(_distinctive(w, shouting) for w in names) or (not title_case and not shouting and (
                any(not _is_common(w) for w in names if w[:1].isupper())
                or (not opens_sentence and any(w.lower() in ENGLISH_COMMON and not w.isupper() for w in names))))
            if opens_sentence and len(run) > 1 and _is_common(run[0].group()) and not _distinctive(run[0].group()):
                run.pop(0)  # "Get Samsung Buds": the verb opening the sentence is not part of the name
            if keep:
                out.append((run[0].start(), run[-1].end()))
            run.clear()

    for i, tok in enumerate(tokens):
        word = tok.group()
        now_loud = any(a <= tok.start() < b for a, b in loud)
        if run and now_loud != shouting:
            close()
        shouting = now_loud
        gap = text[tokens[i - 1].end():tok.start()] if i else text[:tok.start()]
        sentence_start = i == 0 or bool(re.search(r"[.!?:\n|]|[^\w\s,&'’-]", gap))
        capital = word[:1].isupper() or _distinctive(word)
        connector = word.lower() in ("&", "of", "'n", "n", "x", "+") or re.fullmatch(r"\d+\w*", word) is not None
        # a name never runs across an emoji or a symbol: "Petite Paws SG 🐾 Follow us" names the shop, not "Follow"
        if run and (re.search(r"[.!?:\n|\[\](){}]|\s[&+/]\s|[^\w\s,&'’+/-]", gap) or not (capital or connector)):
            close()
        if (title_case or shouting) and _is_common(word) and not _distinctive(word):
            close()  # in a shouted or Title Case line a common word is no part of a name: "THANK YOU SUKI"
            continue
        if capital and (run or _distinctive(word) or not _is_common(word) or not sentence_start):
            nxt = tokens[i + 1].group() if i + 1 < len(tokens) else ""
            if nxt and re.search(r"[^\w\s,&'’+/-]", text[tok.end():tokens[i + 1].start()]):
                nxt = ""  # "Join #GalaxyUnpacked": a symbol between them, so no name runs on from the verb
            sender = re.match(r"\s*:", text[tok.end():]) or re.search(r"\[\s*$", gap)  # "Shopee: ...", "[Shopee]"
            if (sentence_start and not run and not _distinctive(word) and not sender
                    and not (nxt[:1].isupper() or _distinctive(nxt))):
                continue  # one capitalised word opening a sentence is just how sentences start
            if not run:
                opens_sentence = sentence_start
            run.append(tok)
        elif run and connector:
            run.append(tok)
    close()
    return out


# --- comparing two readings ----------------------------------------------------------------------
def covers(terms: tuple[Term, ...] | list[Term], text: str, term: Term) -> bool:
    """Does a text whose terms are `terms` still state `term`? Amounts match by value when one side has no
    currency; 'up to' must stay 'up to'; names and other literal terms match as text, ignoring case."""
    if term.kind in ("name", "placeholder", "duration", "quantity", "part", "keyword") or term.key.startswith("sale_day:"):
        if term.kind in ("placeholder", "part", "keyword"):
            return term.text in text
        if term.kind in ("duration", "quantity"):
            return any(t.key == term.key for t in terms) or term.text.casefold() in text.casefold()
        return term.text.casefold() in text.casefold()
    for t in terms:
        if t.kind != term.kind:
            continue
        if term.upto and not t.upto:
            continue
        if t.key == term.key:
            return True
        if term.kind == "amount":
            _, cur_a, val_a = term.key.split(":", 2)
            _, cur_b, val_b = t.key.split(":", 2)
            if val_a == val_b and "?" in (cur_a, cur_b):
                return True
    return term.kind in ("code", "url") and term.text in text


def missing(original: Reading, rewrite: Reading, rewrite_text: str) -> list[Term]:
    """Terms of the original (not stale) that the rewrite no longer states."""
    return [t for t in original.kept_terms if not covers(rewrite.terms, rewrite_text, t)]


@dataclass
class Allowed:
    """What a rewrite may state: the original's terms and the campaign's structured facts."""

    keys: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)  # amount values whatever the currency is written as
    currencies: set[str] = field(default_factory=set)
    literals: set[str] = field(default_factory=set)  # the original's own tokens, however a rewrite spaces them

    def add_text(self, text: str) -> None:
        """The original's words and digit runs: "hub:188" supports "hubungi 188", "Info:100" supports "Info: 100"."""
        self.literals |= {_literal(w) for w in re.findall(r"[*#\w][\w*#./-]*[\w#]|\w", text)}
        self.literals |= set(re.findall(r"\d{3,}", text))

    def add(self, term_or_key: Term | str) -> None:
        key = term_or_key.key if isinstance(term_or_key, Term) else term_or_key
        self.keys.add(key)
        if key.startswith("amount:"):
            _, cur, value = key.split(":", 2)
            self.values.add(value)
            if cur != "?":
                self.currencies.add(cur)


def invented(rewrite: Reading, allowed: Allowed) -> list[Term]:
    """Terms of the rewrite that neither the original nor the facts state (names excluded: new words are
    checked by the product and incentive guardrails)."""
    out = []
    for t in rewrite.terms:
        if t.kind in ("name", "duration", "placeholder", "quantity", "part") or t.key in allowed.keys:
            continue
        if t.kind in ("phone", "number", "code", "keyword", "url") and _literal(t.text) in allowed.literals:
            continue  # the original's own token in another spelling
        if t.kind == "amount":
            _, cur, value = t.key.split(":", 2)
            if value in allowed.values and (cur == "?" or cur in allowed.currencies or not allowed.currencies):
                continue
        if t.kind == "date" and t.key.startswith("sale_day:") and t.key in allowed.keys:
            continue
        out.append(t)
    return out


def _literal(text: str) -> str:
    return re.sub(r"[^\w*#]", "", text).casefold()


def fact_keys(*, voucher_type: str | None, discount_value: float | None, min_spend: float | None,
              max_discount: float | None, currency: str | None, voucher_code: str | None,
              expires_at: date | datetime | None) -> list[str]:
    """Term keys the structured facts support, in the same form as keys read from text."""
    cur = code_of(currency) if currency else None
    keys = []
    for v in (discount_value if voucher_type == "fixed_amount_off" else None, min_spend, max_discount):
        if v is not None:
            keys.append(money_key(cur, Decimal(str(v))))
    if voucher_type == "percentage_off" and discount_value is not None:
        keys.append(f"percent:{_fmt(Decimal(str(discount_value)))}")
    if voucher_code:
        keys.append(f"code:{voucher_code}")
    if expires_at is not None:
        day = expires_at.date() if isinstance(expires_at, datetime) else expires_at
        keys.append(f"date:{day.isoformat()}")
    return keys


def states_value(text: str) -> bool:
    """Does the text state a concrete benefit: a non-zero amount, a percentage, or free shipping? The same
    patterns as `read`, without the dates, phones and names it does not need."""
    if _FREE_SHIPPING.search(text) or _PERCENT.search(text):
        return True
    for pattern in (_AMOUNT_PRE, _AMOUNT_POST):
        for m in pattern.finditer(text):
            value = number(m.group("num"))
            if value:
                return True
    return any(number(m.group("num")) and _k_is_money(text, m) for m in _AMOUNT_BARE.finditer(text))
