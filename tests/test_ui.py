"""The UI end to end: a real dagster-webserver runs a month, one month x segment and the month's results,
launched over GraphQL; headless Chromium renders the asset graph, the catalog and Table 1's chart entry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import duckdb
import pytest

from dagster_helpers import ROOT, start_webserver

LOCATION = "crmagent_dagster.definitions"  # dagster-webserver -m names the location after the module


def gql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    assert "errors" not in out, out["errors"]
    return out["data"]


LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidStepError { invalidStepKey }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def launch(port: int, job: str, partition: str) -> str:
    tags = [{"key": "dagster/partition", "value": partition}]
    if "|" in partition:
        month, segment = partition.split("|")
        tags += [{"key": "dagster/partition/month", "value": month}, {"key": "dagster/partition/segment", "value": segment}]
    params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job},
              "executionMetadata": {"tags": tags}}
    result = gql(port, LAUNCH, {"p": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    deadline = time.monotonic() + 400
    while True:
        status = gql(port, STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            assert status == "SUCCESS", f"{job} {partition}: {status}"
            return run_id
        assert time.monotonic() < deadline, f"{job} {partition} still {status}"
        time.sleep(1)


@pytest.fixture
def webserver(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # No daemon in the test: runs start at once instead of waiting in the queue.
    (home / "dagster.yaml").write_text("run_coordinator:\n  module: dagster._core.run_coordinator\n"
                                       "  class: DefaultRunCoordinator\ntelemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CRMAGENT_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
           "CRMAGENT_LANDING_DIR": str(tmp_path / "landing"), "CRMAGENT_SYNTHETIC_LOGS": "20000", "HF_HUB_OFFLINE": "1",
           "CRMAGENT_SYNTHETIC": "1"}  # demo mode: months without a landing folder are generated
    proc, port = start_webserver(env)
    yield port, tmp_path
    proc.terminate()
    proc.wait(timeout=30)


def test_materialize_through_the_ui_api_and_render_the_asset_graph(webserver):
    port, tmp = webserver
    launch(port, "monthly_logs_job", "2025-04")
    launch(port, "segment_job", "2025-04|new_buyers")
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        weak = c.execute("SELECT count(*) FROM core.labelled_templates WHERE performance_label = 'weak'").fetchall()[0][0]
        settled = c.execute("SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status IN "
                            "('unchanged', 'rejected') AND error IS NOT NULL), count(*) FROM agents.template_rewrites"
                            ).fetchall()[0]
    # rewritten, or left as it was with the reason
    assert weak > 0 and settled[0] > 0 and settled[0] + settled[1] == settled[2] == weak
    launch(port, "monthly_results_job", "2025-04")  # one segment done is enough to see the tables
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        tables = c.execute("SELECT (SELECT count(*) FROM results.table1), (SELECT count(*) FROM results.table3)").fetchall()[0]
    assert tables == (2, 2)  # new_buyers + Overall; offline Table 3's two configurations

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by `make test`"
    shot = tmp / "asset-graph.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'chrome'}", "--window-size=1400,900", "--virtual-time-budget=20000"]
    def render(path: str) -> str:
        url = f"http://127.0.0.1:{port}/{path}"
        subprocess.run([chromium, *flags, f"--screenshot={tmp / (path + '.png')}", url], capture_output=True, timeout=120)
        return subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout

    # The lineage page draws the graph by asset group; the catalog lists every asset.
    graph, catalog = render("asset-groups"), render("assets")
    events = render("assets/results/table1?view=events")
    for path in ("asset-groups", "assets"):
        shot = tmp / f"{path}.png"
        assert shot.exists() and shot.stat().st_size > 20_000, path  # a rendered page, not a blank one
    for group in ("segments", "retrieval", "rewrites", "evaluation", "audits"):
        assert group in graph, f"group {group} not in the rendered lineage graph"
    for name in ("exemplar_matches", "template_rewrites", "template_audits"):  # the list is virtualised: first screen
        assert name in catalog, f"asset {name} not in the rendered catalog"
    # Table 1's latest materialization lists its chart (markdown with the PNG, opened by [Show Markdown]).
    entries = re.findall(r"familyMono[^>]*>([a-z_/]+)</span>", events)
    assert {"dagster/row_count", "table", "plot", "report"} <= set(entries), entries
    assert events.count("[Show Markdown]") >= 2
