"""Bench: is `crmagent rewrite`'s time per line linear in the line's size? (issue 22, point 2)

Times the offline rewrite of one line whose body is 2,500 to 20,000 characters of mixed real-style copy (amounts,
codes, dates, part markers, links, STOP lines, Malay and Indonesian words), side by side in one run, and prints each
size's seconds per 1,000 characters as a ratio to the smallest size's: 1.0 is linear, 8.0 at 8x the size would be
quadratic. A body over 20,000 characters is an error record at once (adhoc.MAX_TEXT).

    .venv/bin/python bench/bench_long_lines.py
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crmagent_dagster.adhoc import MAX_TEXT, rewrite_file  # noqa: E402
from crmagent_dagster.llm import LLMResource  # noqa: E402

WORDS = ("Get RM5 off 10% code SAVE10 until 30/6 7/15 - 8/30/24 1/3 Rp25rb P25K ₱100 http://shop.example.com/x STOP "
         "to 12345 Shop now! promo diskon sale hurry today only special surprise waiting for you. Hi there, kami ada "
         "tawaran!").split()
SIZES = (2_500, 5_000, 10_000, MAX_TEXT)


def body(size: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    text = ""
    while len(text) < size:
        text += rng.choice(WORDS) + (" " if rng.random() > 0.1 else ". ")
    return text[:size]


def seconds(size: int, folder: Path, repeats: int = 2) -> float:
    src, dst = folder / f"in{size}.jsonl", folder / f"out{size}.jsonl"
    src.write_text(json.dumps({"segment": "lapsing_buyers", "title": "Hi", "body": body(size),
                               "send_date": "2025-06-01"}) + "\n", encoding="utf-8")
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        rewrite_file(src, dst, LLMResource())
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seconds(SIZES[0], Path(tmp), repeats=1)  # warm the language detector and the phrase tables
        times = {size: seconds(size, Path(tmp)) for size in SIZES}
    base = times[SIZES[0]] / SIZES[0]
    print(f"{'body chars':>10} {'seconds':>8} {'s per 1k chars':>15} {'ratio to 2.5k':>14}")
    for size, t in times.items():
        print(f"{size:>10,} {t:>8.2f} {1000 * t / size:>15.3f} {(t / size) / base:>14.2f}")


if __name__ == "__main__":
    main()
