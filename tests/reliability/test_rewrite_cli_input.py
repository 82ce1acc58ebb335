"""`crmagent rewrite` on hostile lines: each bad line becomes one error record naming the line and the field, the
good lines around it are rewritten, and nothing takes long (issue 22, points 2-3). The real command, offline."""

from __future__ import annotations

import json
import time

from crmagent_dagster.adhoc import rewrite_file
from crmagent_dagster.llm import LLMResource

GOOD = {"segment": "lapsing_buyers", "title": "We miss you", "body": "Come back for 10% off with code BACK10.",
        "send_date": "2025-06-01"}
BAD = {  # what each line is, and a word its error must name
    "[" * 100_000: "nested",
    '{"a":' * 20_000 + "1" + "}" * 20_000: "nested",
    json.dumps({**GOOD, "voucher_type": "percentage_off", "discount_value": 1e400}).replace("Infinity", "1e400"):
        "discount_value",
    json.dumps({**GOOD, "voucher_type": "fixed_amount_off", "currency": "RM"})[:-1] + ', "discount_value": Infinity}':
        "discount_value",
    json.dumps({**GOOD, "voucher_type": "fixed_amount_off", "currency": "RM", "discount_value": 5,
                "min_spend": float("inf")}).replace("Infinity", "Infinity"): "min_spend",
    json.dumps({**GOOD, "title": "", "body": "   "}): "empty",
    json.dumps({**GOOD, "voucher_type": "percentage_off", "discount_value": 10, "expires_at": "1970-01-01T00:00:00"}):
        "expires_at",
    json.dumps({**GOOD, "body": "Hi\x00 there \u202eevil"}): "U+0000",
    json.dumps({**GOOD, "body": "x" * 1_000_000}): "bytes",
    '{"segment": "lapsing_buyers", "title": "A", "body": "B", "body": "C"}': "body",
}


def test_every_bad_line_is_one_error_record_and_the_good_ones_go_through(tmp_path, reliability):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps(GOOD)] + list(BAD) + [json.dumps(GOOD)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.perf_counter()
    counts = rewrite_file(src, dst, LLMResource())
    took = time.perf_counter() - started
    records = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(lines), counts
    by_line = {r["line"]: r for r in records}
    for n, word in enumerate(BAD.values(), start=2):
        assert by_line[n]["status"] == "error" and f"line {n}" in by_line[n]["error"], by_line[n]
        assert word in by_line[n]["error"], (word, by_line[n]["error"])
    assert by_line[1]["status"] != "error" and by_line[len(lines)]["status"] != "error"
    assert took < 60, took  # the 1 MB line and the 100k-deep nesting are refused at once, not parsed for minutes
    reliability.record("bad_input", rows_lost=0, bad_lines=len(BAD), seconds=round(took, 1))
