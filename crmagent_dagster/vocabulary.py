"""The shared vocabulary of CRM copy: what a segment is for, how an offer is stated, the phrases that mark
a call to action, urgency, a wrong assumption about the reader or a tone.

The agents read messages with it and the synthetic generator (`synthetic/`) writes with it; the agents
never import the generator. Phrase lists are lower-case; `phrases_for` matches them on word boundaries,
except in Thai, which has no spaces between words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# segment -> campaign intent: what a message to that audience is for.
INTENT_OF_SEGMENT: dict[str, str] = {
    "potential_new_customers": "acquire",
    "new_followers": "acquire",
    "new_buyers": "second_order",
    "lapsing_buyers": "winback",
    "abandoned_cart_buyers": "cart",
    "unpaid_order_buyers": "unpaid",
    "post_purchase": "after",
    "price_drop": "price",
    "active_old_followers": "loyal",
    "frequent_buyers": "loyal",
    "repeat_buyers": "loyal",
}
EMOJI_BY_INTENT: dict[str, tuple[str, ...]] = {
    "acquire": ("✨", "🎉", "👋", "🛍️"),
    "second_order": ("🛍️", "🎁", "✨"),
    "winback": ("💌", "🎁", "👀"),
    "cart": ("🛒", "⏰", "👀"),
    "unpaid": ("⏰", "💳", "📦"),
    "after": ("📦", "💝", "⭐"),
    "price": ("📉", "🔥", "💸"),
    "loyal": ("💎", "🎁", "🙌"),
}
MONTH_ABBR = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "ms": ["Jan", "Feb", "Mac", "Apr", "Mei", "Jun", "Jul", "Ogo", "Sep", "Okt", "Nov", "Dis"],
    "id": ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"],
    "tl": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],  # Taglish dates are English
    "th": ["ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค."],
    "vi": [f"/{m}" for m in range(1, 13)],  # Vietnamese writes the day then /month: 30/6
}
# How each language states a voucher: {v} percent, {a} amount, {m} minimum spend, {c} cap.
INCENTIVE_FORMATS: dict[str, dict[str, str]] = {
    "en": {"pct": "{v}% off", "pct_min": "{v}% off with min. spend {m}", "pct_cap": "{v}% off (capped at {c})",
           "fixed": "{a} off", "fixed_min": "{a} off when you spend {m}", "ship": "free shipping",
           "ship_min": "free shipping on orders over {m}", "short_pct": "{v}% off", "short_fixed": "{a} off",
           "short_ship": "Free shipping"},
    "ms": {"pct": "diskaun {v}%", "pct_min": "diskaun {v}% dengan belanja min. {m}", "pct_cap": "diskaun {v}% (maks. {c})",
           "fixed": "potongan {a}", "fixed_min": "potongan {a} dengan belanja {m}", "ship": "penghantaran percuma",
           "ship_min": "penghantaran percuma untuk pesanan melebihi {m}", "short_pct": "Diskaun {v}%",
           "short_fixed": "Potongan {a}", "short_ship": "Penghantaran percuma"},
    "id": {"pct": "diskon {v}%", "pct_min": "diskon {v}% dengan min. belanja {m}", "pct_cap": "diskon {v}% (maks. {c})",
           "fixed": "potongan {a}", "fixed_min": "potongan {a} dengan min. belanja {m}", "ship": "gratis ongkir",
           "ship_min": "gratis ongkir untuk belanja di atas {m}", "short_pct": "Diskon {v}%",
           "short_fixed": "Potongan {a}", "short_ship": "Gratis ongkir"},
    "tl": {"pct": "{v}% off", "pct_min": "{v}% off sa min. spend na {m}", "pct_cap": "{v}% off (hanggang {c})",
           "fixed": "{a} off", "fixed_min": "{a} off sa min. spend na {m}", "ship": "libreng shipping",
           "ship_min": "libreng shipping sa orders na {m} pataas", "short_pct": "{v}% off", "short_fixed": "{a} off",
           "short_ship": "Libreng shipping"},
    "th": {"pct": "ลด {v}%", "pct_min": "ลด {v}% เมื่อช้อปครบ {m}", "pct_cap": "ลด {v}% (สูงสุด {c})",
           "fixed": "ลด {a}", "fixed_min": "ลด {a} เมื่อช้อปครบ {m}", "ship": "ส่งฟรี",
           "ship_min": "ส่งฟรีเมื่อช้อปครบ {m}", "short_pct": "ลด {v}%", "short_fixed": "ลด {a}", "short_ship": "ส่งฟรี"},
    "vi": {"pct": "giảm {v}%", "pct_min": "giảm {v}% cho đơn từ {m}", "pct_cap": "giảm {v}% (tối đa {c})",
           "fixed": "giảm {a}", "fixed_min": "giảm {a} cho đơn từ {m}", "ship": "miễn phí vận chuyển",
           "ship_min": "miễn phí vận chuyển cho đơn từ {m}", "short_pct": "Giảm {v}%", "short_fixed": "Giảm {a}",
           "short_ship": "Freeship"},
}

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "cta": ("shop now", "buy now", "order now", "check out", "checkout", "tap to", "grab", "claim", "pay now",
                "complete your", "complete payment", "get yours", "add to cart", "redeem", "use code", "book now",
                "order today", "shop today", "buy today", "grab yours", "start shopping", "see the deal",
                "confirm your order", "apply now", "sign up", "register now", "load now", "top up now", "download",
                "visit", "call now", "subscribe now", "renew now", "upgrade now", "reserve now", "book today",
                "pay today", "claim now", "redeem now"),
        "weak_close": ("whenever you like", "just letting you know", "hope you like it", "take a look sometime",
                       "let us know what you think", "if you want", "no rush", "stay tuned", "coming soon ok",
                       "have a look whenever you like", "maybe take a look sometime"),
        "promo": ("offer", "deal", "deals", "promotion", "promo", "discount", "sale", "savings", "reward", "gift",
                  "voucher", "something special", "special", "treat", "surprise"),
        "urgency": ("ends", "until", "today only", "last chance", "hurry", "limited time", "expires", "before it's gone",
                    "before they're gone", "tonight", "while stocks last", "don't miss", "valid until", "only until"),
        "prior_relationship": ("missed you", "miss you", "welcome back", "been a while", "since your last",
                               "last saw you", "old friend", "all these years", "again", "come back",
                               "see you again"),
        "following": ("thanks for following", "thank you for following"),
        "treats_as_new": ("new here", "never shopped", "first time", "introduce ourselves", "get to know us"),
        "purchase_done": ("thanks for your purchase", "thank you for your purchase", "thanks for your order",
                          "thank you for your order"),
        "first_order": ("for your first order", "on your first order", "first-order", "first purchase?", "new-user",
                        "new user", "starter deal", "welcome gift", "off your first order", "off your first purchase"),
        # a first order mentioned at all: wrong for people who have bought many times, natural for new buyers
        "first_mention": ("your first order", "your first purchase", "first-time buyer", "first time buyer"),
        "loyalty": ("loyalty", "regulars", "vip", "long-time", "reorder", "usual favourites", "usual favorites",
                    "members-only"),
        "casual": ("omg", "bestie", "lol", "bruh", "yo!!", "rn", "heyyy", "cutie", "insane!!!", "ghost us"),
        "formal": ("hereby", "kindly be advised", "kindly be advised that", "pursuant", "dear valued customer",
                   "we wish to inform", "we hereby wish to inform you of the following",
                   "we wish to inform you of the following", "please note the following",
                   "pursuant to your account status"),
        "free_shipping": ("free shipping", "free delivery"),
    },
    "ms": {
        "cta": ("beli sekarang", "tekan untuk", "dapatkan", "checkout sekarang", "bayar sekarang", "tebus",
                "guna kod", "pesan sekarang", "lengkapkan", "tempah sekarang", "daftar sekarang", "jom beli"),
        "weak_close": ("bila-bila masa", "sekadar makluman", "harap anda suka", "kalau mahu", "just nak bagitau je",
                       "nak bagitau je", "sekadar info"),
        "promo": ("tawaran", "promosi", "diskaun", "potongan", "jualan", "hadiah", "ganjaran", "baucar", "istimewa",
                  "offer"),
        "urgency": ("tamat", "sehingga", "cepat", "hari ini sahaja", "peluang terakhir", "jangan terlepas", "sebelum"),
        "prior_relationship": ("rindu anda", "selamat kembali", "sudah lama", "kawan lama", "lawatan terakhir",
                               "lama tak jumpa", "rindu"),
        "following": ("terima kasih kerana follow", "terima kasih follow"),
        "treats_as_new": ("baru di sini", "belum pernah", "perkenalkan diri", "kali pertama"),
        "purchase_done": ("terima kasih atas pembelian", "terima kasih atas pesanan"),
        "first_order": ("untuk pesanan pertama", "pengguna baharu", "pembelian pertama", "pesanan pertama"),
        "loyalty": ("kesetiaan", "pelanggan tetap", "vip", "ahli"),
        "casual": ("omg", "geng", "korang", "weh", "lol"),
        "formal": ("dengan segala hormatnya", "sukacita dimaklumkan", "pelanggan yang dihormati", "yang dihormati",
                   "dimaklumkan bahawa", "sekian, terima kasih", "dengan segala hormatnya dimaklumkan perkara berikut",
                   "sukacita dimaklumkan bahawa"),
        "free_shipping": ("penghantaran percuma",),
    },
    "id": {
        "cta": ("belanja sekarang", "klik untuk", "ambil sekarang", "checkout sekarang", "bayar sekarang", "klaim",
                "pakai kode", "pesan sekarang", "selesaikan", "yuk cek", "cek sekarang", "daftar sekarang",
                "beli sekarang"),
        "weak_close": ("lihat-lihat saja", "sekadar info", "semoga suka", "kalau mau", "kapan-kapan", "cuma mau info aja",
                       "mau info aja", "pantengin terus ya"),
        "promo": ("penawaran", "promo", "diskon", "potongan", "hadiah", "voucher", "keuntungan", "spesial"),
        "urgency": ("berakhir", "sampai", "buruan", "hari ini saja", "kesempatan terakhir", "jangan sampai",
                    "sebelum", "s/d", "berlaku"),
        "prior_relationship": ("kangen kamu", "selamat datang kembali", "sudah lama", "teman lama",
                               "kunjungan terakhir", "kangen", "udah lama"),
        "following": ("makasih udah follow", "terima kasih sudah follow"),
        "treats_as_new": ("baru di sini", "belum pernah", "kenalan dulu", "pertama kali"),
        "purchase_done": ("terima kasih atas pembelian", "terima kasih atas pesanan"),
        "first_order": ("untuk pesanan pertama", "untuk pesanan pertamamu", "pengguna baru", "pembelian pertama",
                        "pembelian pertamamu", "pesanan pertama", "order pertama"),
        "loyalty": ("loyalitas", "pelanggan tetap", "vip", "member"),
        "casual": ("omg", "sis", "woy", "wkwk", "lol", "gaes"),
        "formal": ("yang terhormat", "dengan ini kami sampaikan", "bersama ini kami beritahukan", "yth.",
                   "bersama surel ini kami sampaikan", "hormat kami", "dengan ini kami sampaikan hal berikut",
                   "bersama ini kami beritahukan bahwa", "bersama surel ini kami sampaikan bahwa"),
        "free_shipping": ("gratis ongkir",),
    },
    "tl": {
        "cta": ("bili na", "bumili na", "order na", "mag-order na", "i-claim", "kunin na", "gamitin ang code",
                "i-redeem", "mag-shop na", "shop na", "i-checkout", "magbayad na", "i-register", "i-download",
                "mag-load na", "i-dial", "tap para", "i-check out", "i-avail", "mag-avail na"),
        "weak_close": ("kung gusto mo lang", "sabihan mo lang kami", "pag may time ka", "check mo na lang",
                       "silipin mo lang"),
        "promo": ("promo", "alok", "deal", "sale", "diskwento", "regalo", "special treat", "espesyal", "voucher",
                  "bawas"),
        "urgency": ("hanggang", "ngayong araw lang", "huling araw", "bilisan", "dali na", "huwag palampasin",
                    "wag palampasin", "bago maubos"),
        "prior_relationship": ("miss ka na namin", "namiss ka namin", "na-miss ka namin", "balik ka ulit ha",
                               "balik ka ulit", "balik ka na", "balik ka", "matagal na",
                               "ang tagal"),
        "following": ("salamat sa pag-follow", "salamat sa follow"),
        "treats_as_new": ("bago ka dito", "first time mo", "unang beses", "kilalanin kami"),
        "purchase_done": ("salamat sa pagbili", "salamat sa order mo", "salamat sa iyong order"),
        "first_order": ("first order mo", "unang order", "first purchase mo", "unang bili", "new user"),
        "loyalty": ("suki", "loyal", "vip", "member"),
        "casual": ("grabe", "besh", "lodi", "petmalu", "charot", "sana all", "omg", "legit 'to", "awit", "promise talaga"),
        "formal": ("mangyaring", "ipinapaalam namin", "nais naming ipaalam", "lubos na gumagalang"),
        "free_shipping": ("libreng shipping", "libreng delivery", "libre ang shipping"),
    },
    "th": {
        "cta": ("ช้อปเลย", "ซื้อเลย", "สั่งเลย", "สั่งซื้อเลย", "กดรับ", "รับเลย", "ใช้โค้ด", "ชำระเลย", "ชำระเงินเลย",
                "กดเลย", "คลิกเลย", "สมัครเลย", "เติมเงินเลย", "จองเลย", "ดูเลย", "กดสั่ง", "ช้อปได้ที่", "ชำระง่ายๆ",
                "สมัครง่ายๆ", "รีบกด"),
        "weak_close": ("แค่อยากแจ้ง", "ไว้ว่างๆ", "ถ้าสนใจ", "แล้วแต่สะดวก", "ลองดูนะ"),
        "promo": ("โปร", "โปรโมชั่น", "ส่วนลด", "ลด", "ดีล", "ข้อเสนอพิเศษ", "ของขวัญ", "ของแถม", "สิทธิพิเศษ"),
        "urgency": ("ถึง", "วันนี้วันเดียว", "วันสุดท้าย", "เท่านั้น", "รีบ", "ด่วน", "หมดเขต", "ภายใน", "ก่อน"),
        "prior_relationship": ("คิดถึง", "กลับมา", "ไม่ได้เจอกันนาน", "นานแล้ว", "ยินดีต้อนรับกลับ"),
        "following": ("ขอบคุณที่ติดตาม", "ขอบคุณที่กดติดตาม"),
        "treats_as_new": ("ยังไม่เคยซื้อ", "มาทำความรู้จัก"),
        "purchase_done": ("ขอบคุณที่สั่งซื้อ", "ขอบคุณสำหรับคำสั่งซื้อ", "ขอบคุณที่ช้อป"),
        "first_order": ("ครั้งแรก", "ออเดอร์แรก", "สั่งครั้งแรก", "ลูกค้าใหม่"),
        "loyalty": ("ลูกค้าประจำ", "สมาชิก", "vip", "ขาประจำ"),
        "casual": ("555", "ค่าาา", "น้าา", "ปังมาก", "จึ้ง", "ตัวแม่", "เริ่ด", "!!"),
        "formal": ("เรียน", "ขอเรียนให้ทราบ", "จึงเรียนมาเพื่อทราบ", "ขอแจ้งให้ทราบ"),
        "free_shipping": ("ส่งฟรี",),
    },
    "vi": {
        "cta": ("mua ngay", "đặt ngay", "đặt hàng ngay", "nhận ngay", "săn ngay", "thanh toán ngay", "dùng mã",
                "nhập mã", "xem ngay", "chốt đơn", "đăng ký ngay", "nạp ngay", "tải app", "mua ngay nha"),
        "weak_close": ("khi nào rảnh", "nếu bạn muốn", "báo để bạn biết", "tham khảo nhé", "ghé xem khi rảnh"),
        "promo": ("ưu đãi", "khuyến mãi", "giảm giá", "deal", "quà", "quà tặng", "voucher", "sale", "đặc biệt"),
        "urgency": ("đến hết", "chỉ hôm nay", "duy nhất", "cuối cùng", "nhanh tay", "sắp hết", "hạn", "kẻo lỡ",
                    "trước", "chỉ còn", "chỉ tới"),
        "prior_relationship": ("nhớ bạn", "lâu rồi", "quay lại", "quay trở lại", "chào mừng trở lại",
                               "chào mừng bạn quay trở lại", "lâu không gặp"),
        "following": ("cảm ơn bạn đã theo dõi", "cảm ơn đã follow"),
        "treats_as_new": ("lần đầu ghé", "làm quen"),
        "purchase_done": ("cảm ơn bạn đã mua", "cảm ơn bạn đã đặt", "cảm ơn đã đặt hàng"),
        "first_order": ("đơn đầu tiên", "đơn hàng đầu tiên", "lần đầu mua", "khách hàng mới", "người dùng mới"),
        "loyalty": ("khách quen", "thành viên", "vip", "tri ân", "khách hàng thân thiết"),
        "casual": ("nha bà", "thui", "xỉu", "đỉnh chóp", "hết nấc", "omg", "quá trời"),
        "formal": ("kính gửi", "trân trọng thông báo", "quý khách", "xin trân trọng"),
        "free_shipping": ("miễn phí vận chuyển", "freeship", "free ship", "miễn phí giao hàng"),
    },
}
UNSPACED = frozenset({"th", "zh"})  # no spaces between words: phrases match anywhere


def _compile(lang: str, phrases: tuple[str, ...]) -> re.Pattern:
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    if lang in UNSPACED:
        return re.compile(f"({body})", re.I)
    return re.compile(rf"(?<![\w])({body})(?![\w])", re.I)


PATTERNS: dict[str, dict[str, re.Pattern]] = {
    lang: {name: _compile(lang, phrases) for name, phrases in lists.items()} for lang, lists in PHRASES.items()
}


def phrase_language(language: str | None) -> str:
    """The phrase table for a language; languages without one read with the English lists."""
    return language if language in PHRASES else "en"


def hits(language: str | None, name: str, text: str) -> list[re.Match]:
    """Matches of one phrase list in a text; English lists also apply, since Asian copy mixes in English."""
    lang = phrase_language(language)
    found = list(PATTERNS[lang][name].finditer(text)) if name in PATTERNS[lang] else []
    if lang != "en":
        found += [m for m in PATTERNS["en"][name].finditer(text)
                  if not any(m.start() < f.end() and f.start() < m.end() for f in found)]
    return found


THANKS = re.compile(r"(?i)thank|terima kasih|makasih|salamat|cảm ơn|ขอบคุณ")


def offers_first_order(language: str | None, text: str) -> bool:
    """A first-order phrase outside a thank-you: "your first order" in an offer, not "thanks for your first order"."""
    for m in hits(language, "first_order", text):
        left = max(text.rfind(c, 0, m.start()) for c in ".!?\n") + 1
        if not THANKS.search(text[left:m.start()]):
            return True
    return False


def has(language: str | None, name: str, text: str) -> bool:
    lang = phrase_language(language)
    own = PATTERNS[lang].get(name)
    return bool(own and own.search(text)) or (lang != "en" and bool(PATTERNS["en"][name].search(text)))


# --- stating an offer ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VoucherFacts:
    voucher_type: str  # percentage_off | fixed_amount_off | free_shipping
    value: float  # percent for percentage_off, currency amount for fixed_amount_off, 0 for free shipping
    min_spend: float | None
    max_discount: float | None
    currency: str  # ISO 4217
    expires_on: date | None


def format_amount(amount: float, currency: str) -> str:
    """Market-style money: RM5, S$3, ₱150, Rp10.000, ฿99, 50.000đ."""
    whole = amount == int(amount)
    if currency in ("IDR", "VND"):
        digits = f"{int(round(amount)):,}".replace(",", ".")
        return f"Rp{digits}" if currency == "IDR" else f"{digits}đ"
    if currency == "PHP":
        return "₱" + (f"{int(amount):,}" if whole else f"{amount:,.2f}")
    prefix = {"MYR": "RM", "SGD": "S$", "THB": "฿", "USD": "US$"}.get(currency, currency + " ")
    return prefix + (f"{int(amount)}" if whole else f"{amount:.2f}")


def incentive_phrases(v: VoucherFacts, language: str) -> tuple[str, str]:
    """(long phrase, short title phrase) stating exactly what the voucher gives."""
    fmt = INCENTIVE_FORMATS[language if language in INCENTIVE_FORMATS else "en"]
    money = lambda x: format_amount(x, v.currency)  # noqa: E731
    if v.voucher_type == "percentage_off":
        pct = f"{v.value:g}"
        if v.max_discount:
            long = fmt["pct_cap"].format(v=pct, c=money(v.max_discount))
        elif v.min_spend:
            long = fmt["pct_min"].format(v=pct, m=money(v.min_spend))
        else:
            long = fmt["pct"].format(v=pct)
        return long, fmt["short_pct"].format(v=pct)
    if v.voucher_type == "fixed_amount_off":
        a = money(v.value)
        long = fmt["fixed_min"].format(a=a, m=money(v.min_spend)) if v.min_spend else fmt["fixed"].format(a=a)
        return long, fmt["short_fixed"].format(a=a)
    long = fmt["ship_min"].format(m=money(v.min_spend)) if v.min_spend else fmt["ship"]
    return long, fmt["short_ship"]


def format_expiry(d: date, language: str) -> str:
    if language == "vi":
        return f"{d.day}/{d.month}"
    months = MONTH_ABBR.get(language, MONTH_ABBR["en"])
    return f"{d.day} {months[d.month - 1]}"
