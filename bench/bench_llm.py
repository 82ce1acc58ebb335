"""Bench: LLM-layer throughput against a local OpenAI-compatible server with a fixed latency.

For concurrency C the ideal throughput is C / latency requests per second; we print achieved / ideal
for C in 1, 8, 32, 128, then the time of a fully cached re-run over the uncached run (and its
request count, which must be 0). All measured side by side in one run.

    .venv/bin/python bench/bench_llm.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the local server lives with the tests

from crmagent_dagster.llm import LLMRequest, LLMResource  # noqa: E402
from crmagent_dagster.llm.replies import Rewrite  # noqa: E402
import urllib.request  # noqa: E402

def reqs(n: int, tag: str) -> list[LLMRequest]:
    return [LLMRequest(f"{tag}-{i}", "template", ({"role": "user", "content": f"{tag} {i}"},), Rewrite) for i in range(n)]


class Server:
    """The local server in its own process, so client and server do not share one interpreter lock."""

    def __init__(self, latency: float):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"), "--latency", str(latency)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url + "/_stats") as r:
            return json.loads(r.read())

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.5, help="seconds the server waits per request")
    ap.add_argument("--rounds", type=int, default=8, help="requests per concurrency slot")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crmagent-llm-bench-"))
    conn = duckdb.connect(str(work / "bench.duckdb"))
    print(f"\nLLM layer bench: server latency {args.latency:.2f} s, {args.rounds} requests per slot")
    print(f"  {'C':>4} {'requests':>9} {'seconds':>8} {'achieved/s':>11} {'ideal/s':>8} {'achieved/ideal':>15}")
    with Server(args.latency) as server:
        # Warm-up: lazy imports, the first connection and the cache tables are one-time costs, not throughput.
        LLMResource(base_url=server.base_url, api_key="bench").run(reqs(2, "warm"), conn=conn, scope="warm",
                                                                     log=lambda m: None)
        for c in (1, 8, 32, 128):
            llm = LLMResource(base_url=server.base_url, api_key="bench", concurrency=c, timeout_s=30)
            n = args.rounds * c
            start = time.perf_counter()
            run = llm.run(reqs(n, f"c{c}"), conn=conn, scope=f"bench-c{c}", log=lambda m: None)
            elapsed = time.perf_counter() - start
            assert all(r.ok for r in run.results)
            achieved, ideal = n / elapsed, c / args.latency
            print(f"  {c:>4} {n:>9} {elapsed:>8.2f} {achieved:>11.1f} {ideal:>8.1f} {achieved / ideal:>14.0%}")

        n, c = 256, 32
        llm = LLMResource(base_url=server.base_url, api_key="bench", concurrency=c, timeout_s=30)
        start = time.perf_counter()
        llm.run(reqs(n, "cache"), conn=conn, scope="bench-cache", log=lambda m: None)
        uncached = time.perf_counter() - start
        before = server.stats()["requests"]
        start = time.perf_counter()
        again = llm.run(reqs(n, "cache"), conn=conn, scope="bench-cache", log=lambda m: None)
        cached = time.perf_counter() - start
        made = server.stats()["requests"] - before
    hits = again.metadata()["llm_cache_hits"]
    print(f"  cached re-run of {n} items: {cached:.3f} s vs {uncached:.2f} s uncached = {cached / uncached:.3f}x, "
          f"{made} requests, {hits} cache hits")
    if made:
        raise SystemExit("the cached re-run made requests")


if __name__ == "__main__":
    main()
