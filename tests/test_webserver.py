"""The real Dagster webserver serves the project's asset graph (what `make dev` / `dagster dev` shows)."""

from __future__ import annotations

import json
import os
import urllib.request

from dagster_helpers import start_webserver

def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_webserver_serves_the_asset_graph(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CRMAGENT_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}
    proc, port = start_webserver(env)
    try:
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
