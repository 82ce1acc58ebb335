"""Experiments end to end on synthetic months with a known true effect per experiment: the generator's sender sends
deployed variants by the assignment rule, staging and scoring run for real, and realized uplift is measured in SQL
and statistics. Plus the assignment rule itself (Python and SQL agree) and the experiments' ids."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import polars as pl
import pytest
from scipy.stats import binomtest

from crmagent_dagster.agents.tables import frame
from crmagent_dagster.experiments.assignment import (
    AssignmentRule,
    bucket,
    experiment_id,
    variant_template_id,
)
from crmagent_dagster.experiments.measure import measure
from crmagent_dagster.pipeline import (
    STAGED_TABLES,
    load_raw_table,
    score_logs,
    stage_table,
    with_lineage,
)
from crmagent_dagster.sql import ensure_schemas, write_frame, write_model
from crmagent_dagster.synthetic.compose import compose_template
from crmagent_dagster.synthetic.deployed import Campaign
from crmagent_dagster.synthetic.month import NO_MESS, generate_month
from crmagent_dagster.vocabulary import VoucherFacts

MONTH, NEXT = "2025-04", "2025-05"
# Even and uneven splits, with and without a global holdout.
RULES = (AssignmentRule(0.5), AssignmentRule(0.3), AssignmentRule(0.5, holdout_share=0.1))


def test_python_and_sql_assign_every_recipient_alike():
    rule = AssignmentRule(treatment_share=0.3, holdout_share=0.1, holdout_salt="h")
    with duckdb.connect() as conn:
        ensure_schemas(conn)
        rows = conn.execute("SELECT 'x' || (i % 7)::VARCHAR, 'u' || i::VARCHAR, assignment_arm('x' || (i % 7)::VARCHAR, "
                            "'u' || i::VARCHAR, 0.3, 0.1, 'h') FROM range(6000) t(i)").fetchall()
    assert all(rule.arm(e, u) == arm for e, u, arm in rows)
    arms = [a for *_, a in rows]
    assert abs(arms.count("holdout") / 6000 - 0.1) < 0.015
    assert abs(arms.count("treatment") / arms.count("control") - 0.3 / 0.7) < 0.06
    # The holdout is global: the same recipients whatever the experiment.
    assert {u for e, u, a in rows if a == "holdout"} == {f"u{i}" for i in range(6000) if bucket(f"h:u{i}") < 0.1}


def test_ids_are_stable_and_an_edited_text_is_a_new_experiment():
    a = experiment_id(MONTH, "new_buyers", "agg1", "Title", "Body")
    assert a == experiment_id(MONTH, "new_buyers", "agg1", "Title", "Body")
    assert a != experiment_id(MONTH, "new_buyers", "agg1", "Title", "Body, edited")
    assert variant_template_id("t1", a).startswith("t1__x")
    with pytest.raises(ValueError, match="treatment_share"):
        AssignmentRule(treatment_share=1.0)


def _voucher(row: dict) -> VoucherFacts | None:
    try:
        value = float(row["discount_value"])
    except (TypeError, ValueError):
        return None
    if value < 0:
        return None
    return VoucherFacts(row["voucher_type"], value, None if row["min_spend"] is None else float(row["min_spend"]),
                        None if row["max_discount"] is None else float(row["max_discount"]), row["currency"],
                        datetime.strptime(row["expires_at"], "%Y-%m-%d %H:%M:%S").date())


def campaigns_from(month, n: int, seed: int, sends: int) -> list[Campaign]:
    """Half the experiments send a fixed version of the original (composed without its defect), half send the
    original unchanged (a null experiment: the true uplift is exactly 0)."""
    t = month.tables
    plans = (t["plans"].join(t["templates"].select("template_id", "language", "title", "body"), on="template_id")
             .join(month.template_truth, on="template_id")
             .join(t["products"].select("product_id", "product_name", "category_l1", "category_l2", "category_l3",
                                        "price"), on="product_id", how="left")
             .join(t["vouchers"].drop("shop_id"), on="voucher_id", how="left")
             .join(t["shops"], on="shop_id").unique("template_id", keep="first").sort("plan_id"))
    rng = random.Random(seed)
    out = []
    for row in plans.iter_rows(named=True):
        voucher = _voucher(row) if row["voucher_id"] else None
        if row["voucher_id"] and voucher is None:
            continue
        k = len(out)
        exp = f"x{seed}_{k:03d}"
        if k % 2 == 0:
            fixed = compose_template(rng, segment=row["segment"], language=row["language"], defect="none",
                                     voucher=voucher, product=row["product_name"], emoji=row["has_emoji"],
                                     urgency=row["has_urgency"])
            title, body = fixed.title, fixed.body
        else:
            title, body = row["title"], row["body"]
        product = None if row["product_id"] is None else (row["product_name"], row["category_l1"], row["category_l2"],
                                                           row["category_l3"], float(row["price"] or 0) or None)
        out.append(Campaign(
            experiment_id=exp, segment=row["segment"], shop_id=row["shop_id"], shop_name=row["shop_name"],
            market=row["market"], template_id=row["template_id"], variant_template_id=variant_template_id(
                row["template_id"], exp), product_id=row["product_id"], voucher_id=row["voucher_id"],
            language=row["language"], channel=row["channel"], original_title=row["title"], original_body=row["body"],
            variant_title=title, variant_body=body, product=product, voucher=voucher, voucher_code=row["voucher_code"],
            sends=sends, rule=RULES[k % len(RULES)]))
        if len(out) == n:
            break
    return out


def _deployment_rows(campaigns: list[Campaign]) -> pl.DataFrame:
    return frame("agents.deployments", [{
        "month": MONTH, "segment": c.segment, "experiment_id": c.experiment_id, "aggregate_id": c.experiment_id,
        "shop_id": c.shop_id, "template_id": c.template_id, "variant_template_id": c.variant_template_id,
        "product_id": c.product_id, "voucher_id": c.voucher_id, "variant_title": c.variant_title,
        "variant_body": c.variant_body, "deployed_as": "rewrite", "approved_by": "test", "path": 3,
        "writer_backend": "rules", "writer_model": "test", "treatment_share": c.rule.treatment_share,
        "holdout_share": c.rule.holdout_share, "holdout_salt": c.rule.holdout_salt} for c in campaigns])


def measured_against_truth(tmp_path, seed: int, n: int = 120, sends: int = 400) -> pl.DataFrame:
    """Deploy `n` experiments from a generated month, send them in the next, and measure them for real."""
    first = generate_month(MONTH, 30_000, seed=seed, mess=NO_MESS)
    campaigns = campaigns_from(first, n, seed, sends)
    second = generate_month(NEXT, 20_000, seed=seed, campaigns=campaigns)
    rows = []
    with duckdb.connect(str(tmp_path / f"loop{seed}.duckdb")) as conn:
        for table in STAGED_TABLES:
            load_raw_table(conn, table, NEXT, with_lineage(second.tables[table], "test"))
            stage_table(conn, table, NEXT)
        score_logs(conn)
        write_frame(conn, "agents.deployments", _deployment_rows(campaigns), {"month": MONTH})
        for segment in sorted({c.segment for c in campaigns}):
            write_model(conn, "core.experiment_deliveries", {"month": NEXT, "segment": segment},
                        {"deploy_month": MONTH})
            rows += [r.as_row() for r in measure(conn, NEXT, segment)]
    measured = pl.DataFrame(rows, infer_schema_length=None)
    return measured.join(second.experiment_truth.drop("segment"), on="experiment_id", how="left")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop")
    return pl.concat([measured_against_truth(tmp, seed).with_columns(pl.lit(seed).alias("seed"))
                      for seed in (1, 2, 3)], how="diagonal_relaxed")


def _share(rows: pl.DataFrame) -> float:
    return rows["n_treatment"].sum() / (rows["n_treatment"].sum() + rows["n_control"].sum())


def test_every_deployed_experiment_is_measured_with_its_truth(loop):
    assert loop.height == 360 and loop["true_uplift"].null_count() == 0
    assert loop.filter(pl.col("n_treatment") + pl.col("n_control") == 0).height == 0
    # The sender followed the rule: everyone got the version of their arm, in the arm's share, and the holdout
    # got nothing (it is about a tenth fewer sends).
    assert loop["treatment_compliance"].min() == 1.0 and loop["control_compliance"].min() == 1.0
    assert loop["n_holdout_sent"].sum() == 0
    assert abs(_share(loop.filter(pl.col("experiment_id").str.extract(r"_(\d+)$").cast(pl.Int64) % 3 == 1)) - 0.3) < 0.02
    assert abs(_share(loop.filter(pl.col("experiment_id").str.extract(r"_(\d+)$").cast(pl.Int64) % 3 == 0)) - 0.5) < 0.02
    held = loop.filter(pl.col("experiment_id").str.extract(r"_(\d+)$").cast(pl.Int64) % 3 == 2)
    assert 0.85 < (held["n_treatment"] + held["n_control"]).mean() / 400 < 0.95
    fixed = loop.filter(pl.col("experiment_id").str.extract(r"_(\d+)$").cast(pl.Int64) % 2 == 0)
    assert fixed["true_uplift"].mean() > 0.05  # a fix of the defect raises expected engagement in this world


def test_the_95_interval_covers_the_true_uplift_for_at_least_90_percent_of_experiments(loop):
    with_ci = loop.filter(pl.col("ci_low").is_not_null())
    covered = with_ci.filter((pl.col("ci_low") <= pl.col("true_uplift")) & (pl.col("true_uplift") <= pl.col("ci_high")))
    share = covered.height / with_ci.height
    assert with_ci.height >= 350, with_ci.height
    assert share >= 0.90, f"coverage {share:.3f} of {with_ci.height} experiments"
    effects = with_ci.filter(pl.col("true_uplift") != 0)
    hit = effects.filter((pl.col("ci_low") <= pl.col("true_uplift")) & (pl.col("true_uplift") <= pl.col("ci_high")))
    assert effects.height >= 80 and hit.height / effects.height >= 0.90, f"{hit.height} of {effects.height}"


def test_null_experiments_cover_zero_at_the_95_percent_rate(loop):
    """Null experiments (the variant reads the same to this world: identical text, or a text with the same traits)
    must cover 0 at the nominal 95%. An interval built right covers exactly 95% on average, so a finite sample lands
    on either side of it: the test fails when the observed rate is significantly below 95% (one-sided binomial,
    1%), which an interval that ignored the arms' variances or pooled wrongly would be. Measured over 40 seeds
    (1,705 null experiments): 94.96%."""
    null = loop.filter((pl.col("true_uplift") == 0) & pl.col("ci_low").is_not_null())
    assert null.height >= 200
    covered = null.filter((pl.col("ci_low") <= 0) & (pl.col("ci_high") >= 0)).height
    below = binomtest(covered, null.height, 0.95, alternative="less").pvalue
    assert below > 0.01, f"null coverage {covered / null.height:.3f} of {null.height} (p = {below:.4f})"
    # Identical texts get identical probabilities: the truth is exactly zero, not just small.
    identical = null.filter(pl.col("experiment_id").str.extract(r"_(\d+)$").cast(pl.Int64) % 2 == 1)
    assert identical.height >= 150
    assert identical["expected_score_treatment"].equals(identical["expected_score_control"])
