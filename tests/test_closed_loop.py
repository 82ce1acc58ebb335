"""The loop over two months through Dagster and the console script: month 1's rewrites auto-approved by the policy
and deployed (table and sender file), month 2 generated with them (`crmagent generate --deploy-from`), measured
before anything else of month 2, and month 2's report opening with the realized uplift and the judges' record."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_helpers import MONTHLY, SEGMENT_ASSETS

from assets import deployments, engagement_judge, experiments, results
from crmagent_dagster.experiments.deploy import sender_file
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.review import store

BIN = Path(sys.executable).parent
SEGMENT = "new_buyers"
MONTH, NEXT = "2025-04", "2025-05"
AUTO = {"ops": {"agents__deployments": {"config": {"auto_approve": True}}}}


def _resources(tmp: Path) -> dict:
    return {"duckdb": CRMWarehouse(database=str(tmp / "wh.duckdb")), "llm": LLMResource(),
            "log_source": LogSource(landing_dir=str(tmp / "landing"), synthetic_logs=60_000, seed=7,
                                    synthetic_when_no_landing=True)}


def _key(month: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"month": month, "segment": SEGMENT})


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("closed_loop")
    res = _resources(tmp)
    assert dg.materialize(MONTHLY, partition_key=MONTH, resources=res).success
    first = dg.materialize(SEGMENT_ASSETS + [deployments.deployments], partition_key=_key(MONTH), resources=res,
                           run_config=AUTO)
    assert first.success
    # The second judge of month 1 (its predictions are compared with what month 2 realized).
    assert dg.materialize([engagement_judge.engagement_judge], partition_key=MONTH, resources=res).success
    generated = subprocess.run([BIN / "crmagent", "generate", "--month", NEXT, "--logs", "60000", "--deploy-from", MONTH,
                                "--db", str(tmp / "wh.duckdb"), "--out", str(tmp / "landing")],
                               capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    assert dg.materialize(MONTHLY, partition_key=NEXT, resources=res).success
    measured = dg.materialize([experiments.realized_uplift], partition_key=_key(NEXT), resources=res)
    assert measured.success
    tables = dg.materialize([experiments.uplift_results, results.paper_tables], partition_key=NEXT, resources=res)
    assert tables.success
    return tmp, first, generated.stdout, measured


def test_policy_approved_rewrites_become_experiments_with_a_sender_file(loop):
    tmp, first, _, _ = loop
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        deployed = c.sql("SELECT * FROM agents.deployments WHERE month = $m", params={"m": MONTH}).pl()
        approvable = c.execute("""SELECT count(*) FROM agents.template_rewrites w JOIN agents.preference_judgments j
            USING (month, segment, aggregate_id) WHERE w.month = $m AND w.status = 'ok' AND w.guard_passed
            AND j.verdict = 'rewrite' AND j.position_consistent""", {"m": MONTH}).fetchall()[0][0]
    assert deployed.height == approvable >= 5
    assert set(deployed["approved_by"]) == {"policy:auto-approve"}
    assert deployed["variant_template_id"].n_unique() == deployed.height
    # The sender's file holds the same experiments and the rule to assign recipients.
    file = pl.read_parquet(sender_file(str(tmp / "wh.duckdb"), MONTH, SEGMENT))
    assert sorted(file["experiment_id"]) == sorted(deployed["experiment_id"])
    assert file["assignment_rule"][0].startswith("treatment if bucket(experiment_id")
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks["one_experiment_per_rewrite"] and checks["deployed_text_passed_guardrails"]


def test_the_same_inputs_deploy_the_same_experiments(loop):
    tmp, _, _, _ = loop
    res = _resources(tmp)
    before = pl.read_parquet(sender_file(str(tmp / "wh.duckdb"), MONTH, SEGMENT)).sort("experiment_id")
    assert dg.materialize([deployments.deployments], partition_key=_key(MONTH), resources=res,
                          run_config=AUTO).success
    after = pl.read_parquet(sender_file(str(tmp / "wh.duckdb"), MONTH, SEGMENT)).sort("experiment_id")
    assert before.equals(after)


def test_reviewers_decisions_win_over_the_policy(loop, tmp_path):
    tmp, _, _, _ = loop
    shutil.copy(tmp / "wh.duckdb", tmp_path / "wh.duckdb")
    res = {**_resources(tmp_path), "log_source": _resources(tmp)["log_source"]}
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as c:
        before = c.sql("SELECT aggregate_id, experiment_id, variant_title, variant_body FROM agents.deployments "
                       "WHERE month = $m ORDER BY aggregate_id", params={"m": MONTH}).pl()
        rejected, edited = before["aggregate_id"][0], before["aggregate_id"][1]
        store.record(c, store.ReviewDecision(MONTH, SEGMENT, rejected, "reject", "Ana", note="off brand"))
        body = before["variant_body"][1] + " 🛒"
        store.record(c, store.ReviewDecision(MONTH, SEGMENT, edited, "edit", "Ana", edited_title=before["variant_title"][1],
                                             edited_body=body))
    for auto in (True, False):
        run = {"ops": {"agents__deployments": {"config": {"auto_approve": auto}}}}
        assert dg.materialize([deployments.deployments], partition_key=_key(MONTH), resources=res,
                              run_config=run).success
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as c:
            after = c.sql("SELECT * FROM agents.deployments WHERE month = $m", params={"m": MONTH}).pl()
        assert rejected not in after["aggregate_id"].to_list()
        mine = after.filter(pl.col("aggregate_id") == edited).row(0, named=True)
        assert (mine["deployed_as"], mine["approved_by"], mine["variant_body"]) == ("edit", "Ana", body)
        assert mine["experiment_id"] != before.filter(pl.col("aggregate_id") == edited)["experiment_id"][0]
        # Without the policy only what a person approved goes out; with it, the rest of the policy's picks too.
        assert after.height == (before.height - 1 if auto else 1)


def test_next_month_sends_them_by_the_rule_and_measures_them_first(loop):
    tmp, _, generated, measured = loop
    assert "experiment(s) deployed in 2025-04" in generated
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        n_deployed = c.execute("SELECT count(*) FROM agents.deployments WHERE month = $m", {"m": MONTH}).fetchall()[0][0]
        rows = c.sql("SELECT * FROM agents.realized_uplift WHERE month = $m", params={"m": NEXT}).pl()
        source = c.execute("SELECT any_value(source) FROM raw.landing_manifest WHERE month = $m", {"m": NEXT}).fetchall()[0][0]
    assert source.startswith("synthetic-landing:")
    assert rows.height == n_deployed and set(rows["deploy_month"]) == {MONTH}
    assert (rows["n_treatment"] + rows["n_control"]).min() > 0
    assert rows["treatment_compliance"].min() == 1.0 and rows["n_holdout_sent"].sum() == 0
    assert set(rows["label"]) <= {"uplift", "drop", "no_clear_effect", "too_small"}
    assert rows.filter(pl.col("ci_low").is_not_null()).height >= n_deployed - 2
    assert all(e.passed for e in measured.get_asset_check_evaluations())


def test_the_report_of_month_two_opens_with_realized_uplift_and_the_judges_record(loop):
    tmp, _, _, _ = loop
    report = (tmp / "report" / f"{NEXT}.md").read_text()
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## Realized uplift") and headings[1].startswith("## Was the judge right")
    assert "per path" not in headings[0]
    assert (tmp / "report" / NEXT / "realized_uplift_summary.png").exists()
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        dims = {d for (d,) in c.execute("SELECT DISTINCT dimension FROM results.realized_uplift_summary "
                                        "WHERE month = $m", {"m": NEXT}).fetchall()}
        judged = c.sql("SELECT * FROM results.judge_vs_realized WHERE month = $m AND is_overall",
                       params={"m": NEXT}).pl()
    assert dims == {"overall", "segment", "path", "error_type", "writer"}
    assert set(judged["predictor"]) >= {"judge_preference", "judge_score_delta"}
    assert judged["n"].max() >= 5


def test_retrieval_can_rank_first_the_exemplars_whose_rewrites_realized_uplift(loop):
    from crmagent_dagster.agents.retrieval import Member
    from crmagent_dagster.agents.workflow import proven_first

    found = [(Member(i, f"a{i}", f"s{i}", f"t{i}"), sim) for i, sim in enumerate((0.9, 0.8, 0.7, 0.65))]
    assert [m.template_id for m, _ in proven_first(found, frozenset({"t2", "t3"}), 3)] == ["t2", "t3", "t0"]
    assert [m.template_id for m, _ in proven_first(found, frozenset(), 2)] == ["t0", "t1"]
    # Through the asset: the setting reads this month's realized uplift and every match records the ranking used.
    tmp, _, _, _ = loop
    run = {"ops": {"agents__exemplar_matches": {"config": {"prefer_realized_uplift": True}}}}
    from assets import retrieval, segments

    done = dg.materialize([segments.quartile_labels, segments.labelled_templates, retrieval.strong_template_index,
                           retrieval.exemplar_matches], partition_key=_key(NEXT), resources=_resources(tmp),
                          run_config=run)
    assert done.success
    md = done.asset_materializations_for_node("agents__exemplar_matches")[0].metadata
    assert md["ranking"].value == "realized_uplift_first"
    with duckdb.connect(str(tmp / "wh.duckdb"), read_only=True) as c:
        assert c.execute("SELECT DISTINCT ranking FROM agents.exemplar_matches WHERE month = $m",
                         {"m": NEXT}).fetchall() == [("realized_uplift_first",)]
        proven = retrieval.proven_exemplars(c, NEXT, SEGMENT)
        expected = c.execute("""SELECT count(DISTINCT t) FROM (SELECT unnest(w.exemplar_template_ids) AS t
            FROM agents.realized_uplift u JOIN agents.template_rewrites w ON w.month = u.deploy_month
            AND w.segment = u.segment AND w.aggregate_id = u.aggregate_id WHERE u.month = $m AND u.label = 'uplift')""",
                             {"m": NEXT}).fetchall()[0][0]
    assert len(proven) == expected
