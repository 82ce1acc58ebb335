"""Validate bench/real_messages/merchant_{dev,holdout,fresh,fresh2,fresh3}.jsonl (stdlib only).

Usage: python bench/real_messages/validate_merchant.py [file.jsonl ...]
"""
import json
import re
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = [HERE / f"merchant_{s}.jsonl" for s in ("dev", "holdout", "fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6")]
SEGMENTS = {"potential_new_customers", "new_followers", "new_buyers", "lapsing_buyers",
            "abandoned_cart_buyers", "unpaid_order_buyers", "post_purchase", "price_drop",
            "active_old_followers", "frequent_buyers", "repeat_buyers"}
CHANNELS = {"push", "im", "email"}
CURRENCIES = {"RM", "₱", "Rp", "฿", "đ", "S$"}
VOUCHERS = {"percentage_off", "fixed_amount_off", "free_shipping"}
LANGS = {"en", "ms", "id", "tl", "th", "vi"}
KINDS = {"promotional_offer", "announcement", "reminder_bill", "transactional"}
ERRORS = {"audience_assumption_error", "irrelevant_offer", "vague_incentive",
          "weak_call_to_action", "misaligned_tone", "none"}


def check(rec, where):
    errs = []
    def bad(msg): errs.append(f"{where} {rec.get('id')}: {msg}")
    for k in ("id", "segment", "channel", "title", "body", "send_date", "currency",
              "voucher_type", "discount_value", "category_l1", "category_l2", "expect"):
        if k not in rec:
            bad(f"missing {k}")
    if errs:
        return errs
    m = re.fullmatch(r"mt-([a-z]{2})-[a-z]?(\d{2})", rec["id"])
    ex = rec["expect"]
    if not m: bad("bad id")
    elif m.group(1) != ex.get("language"): bad("id language != expect.language")
    if rec["segment"] not in SEGMENTS: bad(f"segment {rec['segment']}")
    if rec["channel"] not in CHANNELS: bad(f"channel {rec['channel']}")
    if rec["currency"] not in CURRENCIES: bad(f"currency {rec['currency']}")
    if rec["voucher_type"] not in VOUCHERS: bad(f"voucher_type {rec['voucher_type']}")
    for k in ("discount_value", "min_spend", "max_discount"):
        if k in rec and not (isinstance(rec[k], (int, float)) and rec[k] >= 0):
            bad(f"{k} not a number")
    send = date.fromisoformat(rec["send_date"])
    if send.year not in (2025, 2026): bad("send_date not in 2025 or 2026")
    if "expires_at" in rec:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T23:59:59", rec["expires_at"]): bad("expires_at format")
        elif date.fromisoformat(rec["expires_at"][:10]) < send: bad("voucher expires before send_date")
    if ex.get("language") not in LANGS: bad("language")
    if ex.get("kind") not in KINDS: bad("kind")
    if ex.get("error_type") not in ERRORS: bad("error_type")
    if not isinstance(ex.get("note"), str) or not ex["note"]: bad("note")
    text = rec["title"] + "\n" + rec["body"]
    for key in ("terms", "stale", "personal"):
        vals = ex.get(key, [])
        if not isinstance(vals, list):
            bad(f"{key} not a list")
            continue
        for s in vals:
            if s not in text: bad(f"{key} {s!r} not a substring of title/body")
    for s in ex.get("stale", []):
        if any(s in t or t in s for t in ex.get("terms", [])): bad(f"stale {s!r} overlaps a term")
    for s in ex.get("personal", []):
        if any(s in t for t in ex.get("terms", [])): bad(f"personal {s!r} inside a term")
    if rec["channel"] == "push":
        if len(rec["title"]) > 65: bad(f"push title {len(rec['title'])} > 65")
        if len(rec["body"]) > 240: bad(f"push body {len(rec['body'])} > 240")
    if rec["channel"] == "im" and len(rec["body"]) > 500: bad(f"im body {len(rec['body'])} > 500")
    return errs


def main(paths):
    errs, seen, n = [], set(), 0
    for p in paths:
        for i, line in enumerate(Path(p).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                errs.append(f"{p}:{i} blank line"); continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                errs.append(f"{p}:{i} invalid JSON: {e}"); continue
            n += 1
            if rec.get("id") in seen: errs.append(f"{p}:{i} duplicate id {rec.get('id')}")
            seen.add(rec.get("id"))
            errs += check(rec, f"{Path(p).name}:{i}")
    for e in errs:
        print(e)
    print(f"{n} records, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEFAULT))
