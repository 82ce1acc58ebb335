"""The real Dagster webserver serves the project's asset graph (what `make dev` / `dagster dev` shows)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_webserver_serves_the_asset_graph(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CRMAGENT_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}
    proc = subprocess.Popen([BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(port),
                             "-m", "crmagent_dagster.definitions"], env=env, cwd=Path(__file__).parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "webserver did not start in 120 s"
                time.sleep(1)
        data = graphql(port, "{ assetNodes { assetKey { path } groupName partitionDefinition { type } } }")
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert nodes["core/quartile_labels"]["groupName"] == "segments"
        assert nodes["core/quartile_labels"]["partitionDefinition"]["type"] == "MULTIPARTITIONED"
        assert nodes["raw/delivery_logs"]["partitionDefinition"]["type"] == "TIME_WINDOW"
        # Serving the UI connected to nothing: no DuckDB file was created.
        assert not (tmp_path / "wh.duckdb").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
