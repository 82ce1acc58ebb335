"""Shared by tests: the asset lists of a month and a segment, and a real dagster-webserver on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from assets import audits, diagnosis, engagement, evaluation, raw, retrieval, rewrites, segments, staging

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
MONTHLY = [raw.raw_month, staging.staged_month, engagement.log_engagement, engagement.engagement_aggregates]
SEGMENT_ASSETS = [segments.quartile_labels, segments.labelled_templates, retrieval.strong_template_index,
                  retrieval.exemplar_matches, diagnosis.content_agent, rewrites.template_rewrites,
                  evaluation.evaluate_agent, evaluation.faithfulness_scores, evaluation.original_scores,
                  audits.template_audits, diagnosis.writing_guidance]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_webserver(env: dict) -> tuple[subprocess.Popen, int]:
    """dagster-webserver for crmagent_dagster.definitions, returned once it answers (120 s at most)."""
    port = free_port()
    proc = subprocess.Popen([BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-m",
                             "crmagent_dagster.definitions"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return proc, port
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "webserver did not start in 120 s"
            time.sleep(1)
