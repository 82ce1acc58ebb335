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


def test_dg_the_command_make_dev_runs_finds_the_project_definitions(tmp_path):
    """`make dev` serves the UI with `dg dev`; the project's [tool.dg] settings must lead it to our Definitions."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CRMAGENT_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
           "VIRTUAL_ENV": str(bin_dir.parent), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([bin_dir / "dg", "list", "defs", "--json"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = json.loads(done.stdout)
    keys = {a["asset_key"] for a in listed["assets"]}
    assert {"agents/deployments", "agents/realized_uplift", "agents/rewrite_reviews",
            "results/realized_uplift_summary"} <= keys
    assert {"experiments_job", "segment_job", "deployments_job"} <= {j["name"] for j in listed["jobs"]}
    assert not (tmp_path / "wh.duckdb").exists()
