"""`crmagent rewrite` streams (issue 22, point 2): each chunk of lines reaches the disk as it finishes, so a crash
or a kill leaves every finished line there, whole; a run that ends writes one record per input line, in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmagent_dagster import adhoc
from crmagent_dagster.llm import LLMResource

BIN = Path(sys.executable).parent


def lines(n: int) -> list[str]:
    return [json.dumps({"segment": "lapsing_buyers", "title": f"We miss you {i}",
                        "body": f"Come back for {i % 50 + 5}% off with code BACK{i}.", "send_date": "2025-06-01"})
            for i in range(n)]


def read_records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_a_crash_keeps_every_finished_chunk_on_disk(tmp_path, monkeypatch, reliability):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(["not json", *lines(3 * adhoc.CHUNK_LINES)]) + "\n", encoding="utf-8")
    real, calls = adhoc._rewrite_chunk, []

    def crash_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the machine went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(adhoc, "_rewrite_chunk", crash_on_the_third)
    with pytest.raises(RuntimeError):
        adhoc.rewrite_file(src, dst, LLMResource())
    records = read_records(dst)
    # the bad line at once, then two whole chunks
    assert [r["line"] for r in records] == [1, *range(2, 2 + 2 * adhoc.CHUNK_LINES)]
    assert records[0]["status"] == "error" and all(r["status"] != "error" for r in records[1:])
    reliability.record("bad_input", rows_lost=0, finished_lines_kept=len(records))


def test_a_killed_run_leaves_whole_records_of_the_lines_it_finished(tmp_path, reliability):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    total = 3_000
    src.write_text("\n".join(lines(total)) + "\n", encoding="utf-8")
    proc = subprocess.Popen([BIN / "crmagent", "rewrite", "--in", str(src), "--out", str(dst)],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (dst.exists() and dst.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    records = read_records(dst)  # every line on disk is a whole record
    numbers = [r["line"] for r in records]
    assert 0 < len(numbers) < total and len(set(numbers)) == len(numbers)
    assert len(numbers) % adhoc.CHUNK_LINES == 0  # whole chunks only
    reliability.record("bad_input", rows_lost=0, finished_lines_kept=len(numbers))


def test_a_finished_run_writes_every_line_in_input_order(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    mixed = lines(40)
    mixed[5] = "{broken"
    mixed[30] = json.dumps({"segment": "new_buyers", "title": "Hi", "body": "Shop now."})
    src.write_text("\n".join(mixed) + "\n", encoding="utf-8")
    counts = adhoc.rewrite_file(src, dst, LLMResource())
    assert [r["line"] for r in read_records(dst)] == list(range(1, 41)) and sum(counts.values()) == 40
    assert not list(tmp_path.glob(".*sorting"))
