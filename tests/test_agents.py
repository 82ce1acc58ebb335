"""The agents: routing, retrieval rules, embedding once, both-order judging, the whole chain on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from assets import ablation, engagement_judge, results, retrieval
from crmagent_dagster.adhoc import metadata_text
from crmagent_dagster.agents import template_agent, workflow
from crmagent_dagster.agents.retrieval import IndexUnavailable, Member, build_index, month_embeddings, read_index, search
from crmagent_dagster.llm import LLMResource
from crmagent_dagster.resources import CRMWarehouse, LogSource
from dagster_helpers import MONTHLY, SEGMENT_ASSETS
from fake_openai import FakeOpenAI, Reply

PARTITION = "2025-04|potential_new_customers"


def test_routing_prefers_own_then_retrieved_then_rules():
    own = {"route": "own", "exemplar_aggregate_id": "a"}
    got = {"route": "retrieved", "exemplar_aggregate_id": "b"}
    assert template_agent.route({}, [got, own]) == (1, [own])
    assert template_agent.route({}, [got]) == (2, [got])
    assert template_agent.route({}, []) == (3, [])


def test_verdict_counts_only_when_both_orders_agree():
    assert workflow.verdict("B", "A") == ("rewrite", True)  # rewrite wins as B and as A
    assert workflow.verdict("A", "B") == ("original", True)
    assert workflow.verdict("A", "A") == ("tie", False)  # always-A judge: position bias, no verdict
    assert workflow.verdict("B", "B") == ("tie", False)
    assert workflow.verdict("tie", "tie") == ("tie", True)


def test_search_skips_own_merchant_and_weak_matches():
    rng = np.random.default_rng(0)
    base = rng.normal(size=384).astype(np.float32)
    vecs = np.stack([base + rng.normal(scale=s, size=384).astype(np.float32) for s in (0.01, 0.02, 0.03, 0.5, 3.0)])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    members = [Member(0, "g0", "me", "t0"), Member(1, "g1", "me", "t1"), Member(2, "g2", "other", "t2"),
               Member(3, "g3", "third", "t3"), Member(4, "g4", "far", "t4")]
    query = base / np.linalg.norm(base)
    hits = search(build_index(vecs), members, query, "me", k=3, threshold=0.6)
    assert [m.shop_id for m, _ in hits] == ["other", "third"]  # own merchant never, the far one below threshold
    assert all(sim >= 0.6 for _, sim in hits)


def test_identical_metadata_is_embedded_once_per_month(tmp_path):
    conn = duckdb.connect(str(tmp_path / "wh.duckdb"))
    text = "category: Health > Supplements > Fish Oil | voucher: free shipping"
    _, new, reused = month_embeddings(conn, "2025-04", [text, text, "voucher: free shipping"])
    assert (new, reused) == (2, 0)
    vectors, new, reused = month_embeddings(conn, "2025-04", [text, "voucher: percentage off 10.0%"])
    assert (new, reused) == (1, 1)
    _, new, _ = month_embeddings(conn, "2025-05", [text])  # another month embeds its own
    assert new == 1
    assert conn.execute("SELECT count(*) FROM agents.metadata_embeddings").fetchall()[0][0] == 4
    v = next(iter(vectors.values()))
    assert v.shape == (384,) and abs(float(np.linalg.norm(v)) - 1) < 1e-4  # the real model, normalised


def test_corrupt_index_names_the_file(tmp_path):
    path = tmp_path / "x.faiss"
    with pytest.raises(IndexUnavailable, match="x.faiss is missing"):
        read_index(path)
    path.write_bytes(b"not a faiss index")
    with pytest.raises(IndexUnavailable, match="x.faiss is unreadable"):
        read_index(path)


@pytest.fixture(scope="module")
def month_db(tmp_path_factory):
    """A small generated month materialized through the monthly job, shared by the chain tests."""
    tmp = tmp_path_factory.mktemp("agents")
    res = {"duckdb": CRMWarehouse(database=str(tmp / "wh.duckdb")),
           "log_source": LogSource(landing_dir=str(tmp / "landing"), synthetic_logs=60_000, seed=4, synthetic_when_no_landing=True)}
    assert dg.materialize(MONTHLY, partition_key="2025-04", resources=res).success
    return tmp / "wh.duckdb"


def _copy(month_db: Path, tmp_path: Path) -> str:
    target = tmp_path / "wh.duckdb"
    target.write_bytes(month_db.read_bytes())
    return str(target)


def _materialize(db: str, llm: LLMResource):
    res = {"duckdb": CRMWarehouse(database=db), "llm": llm,
           "log_source": LogSource(landing_dir="/nonexistent", synthetic_logs=1, synthetic_when_no_landing=True)}
    return dg.materialize(MONTHLY + SEGMENT_ASSETS, selection=SEGMENT_ASSETS, partition_key=PARTITION, resources=res)


def rows(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as c:
        return c.execute(sql).fetchall()


def test_offline_chain_rewrites_every_weak_template(month_db, tmp_path):
    db = _copy(month_db, tmp_path)
    result = _materialize(db, LLMResource())  # no endpoint configured: every agent on the rule engine
    assert result.success
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}
    assert not failed, failed
    weak = rows(db, "SELECT count(*) FROM core.labelled_templates WHERE performance_label = 'weak'")[0][0]
    assert weak >= 10
    paths = dict(rows(db, "SELECT path, count(*) FROM agents.template_rewrites GROUP BY 1"))
    assert sum(paths.values()) == weak and set(paths) >= {2, 3}
    # Every weak template is rewritten (ok), or left as it was (unchanged: no error, or no sure fix) or rejected, with
    # the reason; offline nothing fails. No label is forced: a template with no error is not rewritten.
    status = dict(rows(db, "SELECT status, count(*) FROM agents.template_rewrites GROUP BY 1"))
    ok = status.get("ok", 0)
    with_error = rows(db, "SELECT count(*) FROM agents.template_rewrites WHERE original_error_type <> 'none'")[0][0]
    assert set(status) <= {"ok", "unchanged", "rejected"} and ok >= 0.6 * with_error, (status, with_error)
    assert rows(db, "SELECT count(*) FROM agents.template_rewrites WHERE original_error_type = 'none' "
                    "AND cardinality(audit_flags) = 0 AND status <> 'unchanged'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM agents.template_rewrites WHERE status <> 'ok' AND error IS NULL") == [(0,)]
    assert rows(db, "SELECT count(*) FROM agents.template_rewrites WHERE status = 'ok' AND (NOT guard_passed "
                    "OR (new_title, new_body) = (original_title, original_body))") == [(0,)]
    assert rows(db, "SELECT DISTINCT backend FROM agents.template_rewrites") == [("rules",)]
    audited = dict(rows(db, "SELECT version, count(*) FROM agents.template_audits GROUP BY 1"))
    assert audited == {"original": weak, "rewrite": ok}
    assert rows(db, "SELECT count(*) FROM agents.template_audits WHERE message_kind IS NULL") == [(0,)]
    faithful = rows(db, "SELECT count(*), min(bertscore_f1), max(bertscore_f1), avg(chrf), any_value(bertscore_model) "
                        "FROM agents.faithfulness_scores")[0]
    assert faithful[0] == ok and 0 < faithful[1] <= faithful[2] <= 1 and 0 < faithful[3] <= 100
    assert "all-MiniLM-L6-v2" in faithful[4] and "layer 4" in faithful[4]
    before, after = rows(db, "SELECT avg(original_marketing), avg(rewrite_marketing) FROM agents.rewrite_scores")[0]
    assert after > before
    # Retrieval respected its rules in the stored matches.
    assert rows(db, "SELECT count(*) FROM agents.exemplar_matches WHERE route = 'retrieved' AND exemplar_shop_id = shop_id") == [(0,)]
    # The Python metadata string used by `crmagent rewrite` is the SQL one.
    with duckdb.connect(db, read_only=True) as c:
        cur = c.execute("SELECT * FROM core.labelled_templates WHERE metadata_text IS NOT NULL LIMIT 50")
        cols = [d[0] for d in cur.description]
        for r in cur.fetchall():
            row = dict(zip(cols, r))
            assert metadata_text(row) == row["metadata_text"]
    # The paper's tables for the month (one segment done here): Table 1, Table 2, Figure 16.
    res = {"duckdb": CRMWarehouse(database=db), "llm": LLMResource(),
           "log_source": LogSource(landing_dir="/nonexistent", synthetic_logs=1, synthetic_when_no_landing=True)}
    month_assets = [engagement_judge.engagement_judge, ablation.ablation_study, results.paper_tables]
    done = dg.materialize(MONTHLY + SEGMENT_ASSETS + month_assets, selection=month_assets,
                          partition_key="2025-04", resources=res)
    assert done.success
    # Charts ride in the metadata (the UI renders them) and in the report beside the DuckDB file.
    shown = {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
             for e in done.get_asset_materialization_events()}
    for name in ("table1", "table2", "table3", "judge_validity", "figure16", "figure7", "figure8", "figure9"):
        assert "](data:image/png;base64," in shown[name]["plot"].value, name
    report = Path(db).parent / "report" / "2025-04.md"
    assert shown["table1"]["report"].value == str(report)
    text = report.read_text()
    images = [line[line.index("](") + 2:-1] for line in text.splitlines() if line.startswith("![")]
    assert len(images) == 9 and all((report.parent / i).read_bytes()[:4] == b"\x89PNG" for i in images)
    for heading in ("## Table 1", "## Table 2", "## Table 3", "## Judge validity", "## Engagement predictor",
                    "## Figure 16", "## Figure 7"):
        assert heading in text, heading
    # The data-driven judge: trained on every ranked group, scored every accepted rewrite against its original.
    ranked = rows(db, "SELECT count(*) FROM core.quartile_labels WHERE performance_label IN ('strong', 'middle', 'weak')")
    model = rows(db, "SELECT n_groups, n_train + n_test, r2, baseline_r2, rewrites_scored, rewrite_predicted_better_pct "
                     "FROM results.engagement_model")
    assert [m[:2] for m in model] == [(ranked[0][0], ranked[0][0])] and model[0][2] is not None
    assert model[0][4] == ok and 0 <= model[0][5] <= 100
    predicted = rows(db, "SELECT count(*), count(DISTINCT predicted_rewrite), avg((predicted_delta > 0)::INT) * 100 "
                         "FROM agents.predicted_engagement")[0]
    assert predicted[0] == ok and predicted[1] > 1 and round(predicted[2], 2) == model[0][5]
    t1 = rows(db, "SELECT segment, count, gen_preferred_pct, gen_preferred_ci_low, gen_preferred_ci_high, judge "
                  "FROM results.table1 ORDER BY is_overall")
    assert rows(db, "SELECT predicted_better_pct FROM results.table1 WHERE is_overall") == [(model[0][5],)]
    # Table 3 offline: the rule engine with and without exemplars, on the same sample of weak templates.
    t3 = rows(db, "SELECT configuration, template, sampled, count, path3_share FROM results.table3 ORDER BY position")
    accepted = dict(rows(db, "SELECT configuration, count(*) FILTER (WHERE status = 'ok') FROM agents.ablation_judgments "
                             "GROUP BY 1"))
    assert [(c, s, n) for c, _, s, n, _ in t3] == [("rules", min(weak, 100), accepted["rules"]),
                                                   ("rules, zero-shot writer", min(weak, 100),
                                                    accepted["rules, zero-shot writer"])]
    unchanged = dict(rows(db, "SELECT configuration, unchanged FROM results.table3"))
    assert rows(db, "SELECT DISTINCT failed FROM results.table3") == [(0,)]  # offline nothing fails
    assert accepted["rules"] > 0 and accepted["rules"] + unchanged["rules"] == min(weak, 100)  # each settled
    assert t3[1][4] == 1.0 and t3[0][4] < 1.0 and {t[1] for t in t3} == {"hybrid-rule-engine-v1"}
    assert [r[0] for r in t1] == ["potential_new_customers", "Overall"] and t1[0][1] == t1[1][1] == ok
    assert all(lo <= rate <= hi for _, _, rate, lo, hi, _ in t1) and t1[0][5] == "rules:hybrid-rule-engine-v1"
    assert rows(db, "SELECT count FROM results.table2 WHERE is_overall") == [(ok,)]
    shares = dict(rows(db, "SELECT version, round(sum(share), 3) FROM results.figure16 GROUP BY 1"))
    assert shares == {"original": 1.0, "rewrite": 1.0}
    # Judge validity: the rubric judge's scores of originals rank strong above weak, so rho is positive.
    validity = rows(db, "SELECT segment, n, spearman_rho, ci_low, ci_high FROM results.judge_validity ORDER BY is_overall")
    labelled = rows(db, "SELECT count(*) FROM core.labelled_templates")[0][0]
    assert [v[0] for v in validity] == ["potential_new_customers", "Overall"] and validity[0][1] == labelled
    assert 0 < validity[0][2] <= 1 and validity[0][3] < validity[0][2] < validity[0][4]
    assert rows(db, "SELECT judge_rho FROM results.table1 WHERE NOT is_overall") == [(validity[0][2],)]
    plans = rows(db, "SELECT count(*) FROM staging.plans")[0][0]
    assert rows(db, "SELECT sum(plans) FROM results.figure7") == rows(db, "SELECT sum(plans) FROM results.figure9") == [(plans,)]
    assert rows(db, "SELECT sum(groups) FROM results.figure8") == rows(db, "SELECT count(*) FROM core.engagement_aggregates")
    # The marts keep a stable schema (tests/marts_schema.json); changing it is a deliberate edit of that file.
    assert_marts_schema(db)
    assert rows(db, "SELECT count(*) FROM marts.rewrites") == [(weak,)]
    assert rows(db, "SELECT rewrites FROM marts.segment_summary") == [(weak,)]
    with duckdb.connect(str(Path(db).with_name("wh_read.duckdb")), read_only=True) as snap:  # published for readers
        assert snap.execute("SELECT count(*) FROM marts.rewrites").fetchall()[0][0] == weak
    # Re-materializing gives the same rows (no duplicates).
    first = rows(db, "SELECT count(*), sum(hash(new_title || new_body)) FROM agents.template_rewrites")
    assert _materialize(db, LLMResource()).success
    assert rows(db, "SELECT count(*), sum(hash(new_title || new_body)) FROM agents.template_rewrites") == first


def scripted(body: dict, n: int, poisoned: set) -> Reply:
    schema = body["response_format"]["json_schema"]["name"]
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")  # the prompt, not retry feedback
    if schema == "ContentDiagnosis":
        return Reply(content=json.dumps({"analysis": "Strong ones state the offer.", "success_patterns": ["State it"],
                                         "failure_patterns": ["Vague"]}))
    if schema == "ProblemAnalysis":
        return Reply(content=json.dumps({"reason": "No clear call to action."}))
    if schema == "Rewrite":
        if not poisoned or prompt in poisoned:
            poisoned.add(prompt)  # the first rewrite prompt always answers off-schema
            return Reply(content=json.dumps({"headline": "x"}))
        return Reply(content=json.dumps({"title": "Fresh title", "body": "Clear offer. Shop now!"}))
    if schema == "Scores":
        a, b = 3, 5
        return Reply(content=json.dumps({"audience_match_score_a": a, "audience_match_reason_a": "ok",
                                         "marketing_score_a": a, "marketing_reason_a": "ok",
                                         "audience_match_score_b": b, "audience_match_reason_b": "ok",
                                         "marketing_score_b": b, "marketing_reason_b": "ok"}))
    if schema == "SingleScores":
        return Reply(content=json.dumps({"audience_match_score": 3, "audience_match_reason": "ok",
                                         "marketing_score": 3, "marketing_reason": "ok"}))
    if schema == "Preference":
        return Reply(content=json.dumps({"preferred": "A", "reason": "A is first"}))  # pure position bias
    if schema == "Audit":
        return Reply(content=json.dumps({"error_type": "weak_call_to_action", "feedback": "No CTA."}))
    return Reply(status=400)


def test_llm_chain_through_a_local_server(month_db, tmp_path):
    db = _copy(month_db, tmp_path)
    poisoned: set = set()
    with FakeOpenAI(lambda body, n: scripted(body, n, poisoned)) as server:
        llm = LLMResource(configured=True, base_url=server.base_url, api_key="k", default_model="writer",
                          evaluate={"model": "judge"}, max_validation_retries=1, backoff_base_s=0.01)
        result = _materialize(db, llm)
        assert result.success  # one item's schema failure does not fail the partition
        calls = server.requests
        weak = rows(db, "SELECT count(*) FROM core.labelled_templates WHERE performance_label = 'weak'")[0][0]
        status = dict(rows(db, "SELECT status, count(*) FROM agents.template_rewrites GROUP BY 1"))
        assert status.get("failed") == 1 and sum(status.values()) == weak, status
        err = rows(db, "SELECT error FROM agents.template_rewrites WHERE status = 'failed'")[0][0]
        assert "title" in err and "invalid reply" in err
        # An always-A judge yields ties, never wins, and a position-consistency rate of 0.
        assert rows(db, "SELECT DISTINCT verdict, position_consistent FROM agents.preference_judgments") == [("tie", False)]
        pref_md = result.asset_materializations_for_node("evaluate_agent")
        consistency = [m.metadata["position_consistency_rate"].value for m in pref_md if "position_consistency_rate" in m.metadata]
        assert consistency == [0.0]
        # Lineage: backend, model and prompt version stored with every output.
        lineage = rows(db, "SELECT DISTINCT backend, model, attempted_backend, replaced_by_rules, "
                           "split_part(prompt_version, '@', 1) FROM agents.template_rewrites")
        assert {(b, m, r) for b, m, _, r, _ in lineage} <= {("llm", "writer", False),
                                                           ("rules", "hybrid-rule-engine-v1", True)}
        assert {a for _, _, a, _, _ in lineage} == {"llm"}
        assert {p for *_, p in lineage} <= {"template_exemplar", "template_rule_based"}
        # The fake writes the same English text for every template: where that drops the template's stated terms or
        # its language, the writer was asked again with the violations, then the rule edit stood in (and says why),
        # or the row was rejected with the LLM's text and both sets of reasons. Never a silent swap.
        retried = [b for b in server.bodies if "That rewrite breaks these rules:\n- " in b["messages"][-1]["content"]]
        assert retried
        assert rows(db, "SELECT count(*) FROM agents.template_rewrites WHERE status = 'ok' AND NOT guard_passed") == [(0,)]
        assert set(rows(db, "SELECT DISTINCT new_title, new_body FROM agents.template_rewrites "
                            "WHERE status = 'ok' AND backend = 'llm'")) <= {("Fresh title", "Clear offer. Shop now!")}
        replaced = rows(db, "SELECT backend, fallback_reason FROM agents.template_rewrites WHERE replaced_by_rules")
        assert replaced and all(b == "rules" and r.startswith("the LLM rewrite stopped after 2 re-ask(s), still breaking")
                                for b, r in replaced)
        for title, error in rows(db, "SELECT new_title, error FROM agents.template_rewrites WHERE status = 'rejected'"):
            assert title == "Fresh title" and error.startswith("guardrails: ") and "cannot stand in" in error
        assert rows(db, "SELECT DISTINCT model FROM agents.preference_judgments") == [("judge",)]
        # Merchant text reached the server only inside the data fence.
        rewrite_prompt = next(b["messages"][-1]["content"] for b in server.bodies
                              if b["response_format"]["json_schema"]["name"] == "Rewrite")
        assert "<merchant_text>" in rewrite_prompt and "Facts of this message" in rewrite_prompt
        # A re-run calls only for what failed: the poisoned rewrite (still off-schema, 2 tries).
        assert _materialize(db, llm).success
        assert server.requests - calls == 2


def ablation_script(body: dict, n: int) -> Reply:
    """Writer models answer plainly or with reasoning; judge 'fair' prefers the longer message, 'biased' always A."""
    schema = body["response_format"]["json_schema"]["name"]
    if schema.startswith("Rewrite"):
        answer = {"title": f"Fresh title from {body['model']}", "body": "Clear offer. Shop now!"}
        return Reply(content=json.dumps({"reasoning": "step by step", "answer": answer}
                                        if schema.endswith("WithReasoning") else answer))
    if schema in ("Scores", "Audit"):
        return scripted(body, n, {""})
    if schema == "Preference":
        prompt = body["messages"][-1]["content"]
        a, b = prompt.split("Message A:")[1].split("Output schema")[0].split("Message B:")
        if body["model"] == "biased":
            return Reply(content=json.dumps({"preferred": "A", "reason": "first"}))
        return Reply(content=json.dumps({"preferred": "A" if len(a) > len(b) else "B", "reason": "longer"}))
    return Reply(status=400)


def test_table3_runs_each_configuration_on_the_same_sample(month_db, tmp_path):
    db = _copy(month_db, tmp_path)
    assert _materialize(db, LLMResource()).success  # the segment's stages offline: ContentAgent output is fixed
    configurations = [
        {"name": "baseline"},
        {"name": "writer w2 + CoT", "template": {"model": "w2", "chain_of_thought": True}},
        {"name": "biased judge", "evaluate": {"model": "biased"}},
    ]
    with FakeOpenAI(ablation_script) as server:
        llm = LLMResource(configured=True, base_url=server.base_url, api_key="k", default_model="w1",
                          evaluate={"model": "fair"}, backoff_base_s=0.01)
        res = {"duckdb": CRMWarehouse(database=db), "llm": llm,
               "log_source": LogSource(landing_dir="/nonexistent", synthetic_logs=1, synthetic_when_no_landing=True)}
        result = dg.materialize(MONTHLY + SEGMENT_ASSETS + [ablation.ablation_study], selection=[ablation.ablation_study],
                                partition_key="2025-04", resources=res, run_config={"ops": {"ablation_study": {
                                    "config": {"sample_size": 12, "configurations": configurations}}}})
        assert result.success
        models = {(b["model"], b["response_format"]["json_schema"]["name"]) for b in server.bodies}
    assert {m for m, s in models if s.startswith("Rewrite")} == {"w1", "w2"}
    assert ("w2", "RewriteWithReasoning") in models and ("w1", "RewriteWithReasoning") not in models
    assert {m for m, s in models if s == "Preference"} == {"fair", "biased"}
    t3 = rows(db, "SELECT configuration, template, evaluate, sampled, count, position_consistency, gen_preferred_pct "
                  "FROM results.table3 ORDER BY position")
    assert [t[:3] for t in t3] == [("baseline", "w1", "fair"), ("writer w2 + CoT", "w2 + CoT", "fair"),
                                   ("biased judge", "w1", "biased")]
    assert {t[3] for t in t3} == {12}
    assert t3[0][5] == 1.0 and t3[2][5] == 0.0 and t3[2][6] == 0.0  # position bias gives ties, never wins
    per_config = rows(db, "SELECT configuration, list(aggregate_id ORDER BY aggregate_id) FROM agents.ablation_judgments "
                          "GROUP BY 1")
    assert len({tuple(ids) for _, ids in per_config}) == 1  # the same 12 templates for all three
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"same_sample_for_every_configuration": True}
    # Calls are recorded under the configuration's scope, apart from the pipeline's own.
    scopes = rows(db, "SELECT DISTINCT split_part(scope, ':', 2) FROM llm.calls WHERE scope LIKE 'ablation:%'")
    assert {s for (s,) in scopes} == {"baseline", "writer w2 + CoT", "biased judge"}


def test_rewrite_command_processes_good_lines_and_reports_bad_ones(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"segment": "abandoned_cart_buyers", "title": "Did you forget something?",
                    "body": "Looks like you left something in your cart.", "voucher_type": "fixed_amount_off",
                    "discount_value": 3, "min_spend": 15, "currency": "MYR"}),
        json.dumps({"segment": "nobody", "title": "x", "body": "y"}),
        "{broken",
        json.dumps({"segment": "new_buyers", "title": "Hi", "body": "Thanks.", "discount_value": -1}),
    ]) + "\n")
    out = tmp_path / "out.jsonl"
    done = subprocess.run([Path(sys.executable).parent / "crmagent", "rewrite", "--in", str(src), "--out", str(out)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1, done.stderr  # three bad lines: the command says so, and still writes every record
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert records[0]["status"] == "ok" and records[0]["path"] == 3
    assert "RM3" in records[0]["rewrite"]["body"] and records[0]["backend"]["writer"] == "rules"
    assert records[1]["error"].startswith("line 2: segment")
    assert records[2]["error"].startswith("line 3: not JSON")
    assert records[3]["error"].startswith("line 4: discount_value")


def test_faithfulness_metrics_rank_copies_above_unrelated_text():
    from crmagent_dagster.agents.faithfulness import bertscore_f1, chrf

    ref = "Did you forget something? Looks like you left something in your cart."
    same, close, far = bertscore_f1([ref, "You left something in your cart. Check out now!", "Stock market news today."],
                                    [ref, ref, ref])
    assert same > 0.99 and same > close > far
    assert chrf(ref, ref) == 100.0 and chrf("Stock market news today.", ref) < chrf("You left something in your cart.", ref)


MARTS_SCHEMA = Path(__file__).parent / "marts_schema.json"


def assert_marts_schema(db: str) -> None:
    with duckdb.connect(db, read_only=True) as c:
        got = {view: {name: typ for name, typ, *_ in c.execute(f"DESCRIBE marts.{view}").fetchall()}
               for view in ("rewrites", "segment_summary", "error_type_counts")}
    if os.environ.get("UPDATE_MARTS_SCHEMA"):
        MARTS_SCHEMA.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(MARTS_SCHEMA.read_text())
    same = got == expected and all(list(got[v]) == list(expected[v]) for v in got)  # names, types and order
    assert same, "marts schema changed: update tests/marts_schema.json on purpose (UPDATE_MARTS_SCHEMA=1)"
