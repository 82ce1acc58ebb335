"""Stage 9, the data-driven second judge: an engagement predictor trained on the month's own groups.

The paper trusts its LLM judge. This judge has never read a rubric: it learns from the month's observed
engagement which texts, in which setting, were engaged with, reports how well it does on shops it has
not seen, and then predicts the engagement of each rewrite against its original.
"""

import dagster as dg
import numpy as np
from pydantic import Field

from crmagent_dagster.agents import predictor, retrieval
from crmagent_dagster.agents.tables import frame
from crmagent_dagster.partitions import BY_MONTH, DUCKDB_POOL, monthly_partitions
from crmagent_dagster.plots import markdown_image, scatter
from crmagent_dagster.resources import CRMWarehouse
from crmagent_dagster.sql import fetch_dicts, transaction, write_frame, write_model

FEATURES = dg.AssetKey(["core", "engagement_features"])
PREDICTIONS = dg.AssetKey(["agents", "predicted_engagement"])
MODEL = dg.AssetKey(["results", "engagement_model"])
UPSTREAM = [dg.AssetDep(dg.AssetKey(["core", "quartile_labels"]), partition_mapping=BY_MONTH),
            dg.AssetDep(dg.AssetKey(["agents", "template_rewrites"]), partition_mapping=BY_MONTH)]


class PredictorConfig(dg.Config):
    test_share: float = Field(default=0.2, description="Share of shops held out to measure accuracy.")
    seed: int = Field(default=0, description="Seed of the held-out shop split.")


def _stack(vectors: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, retrieval.DIMENSION), dtype=np.float32)
    return np.stack([vectors[retrieval.metadata_key(t)] for t in texts])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FEATURES, deps=UPSTREAM, group_name="results", kinds={"duckdb"},
                     description="The predictor's training set: text, segment, voucher facts and observed engagement "
                                 "of every ranked group.", metadata={"dagster/table_name": "core.engagement_features"}),
        dg.AssetSpec(MODEL, deps=UPSTREAM, group_name="results", kinds={"duckdb"},
                     description="The engagement predictor's held-out accuracy (unseen shops) beside a no-text "
                                 "baseline, and how often it predicts the rewrite to out-engage its original.",
                     metadata={"dagster/table_name": "results.engagement_model"}),
        dg.AssetSpec(PREDICTIONS, deps=UPSTREAM, group_name="results", kinds={"duckdb"},
                     description="Second, data-driven judge: predicted engagement of every accepted rewrite and of "
                                 "its original, in the same segment and voucher setting.",
                     metadata={"dagster/table_name": "agents.predicted_engagement"}),
    ],
    check_specs=[
        dg.AssetCheckSpec("every_accepted_rewrite_predicted", asset=PREDICTIONS,
                          description="One prediction pair per accepted rewrite of the month."),
        dg.AssetCheckSpec("beats_predicting_the_mean", asset=MODEL, blocking=False,
                          description="Held-out R^2 > 0: the predictor knows more than the month's mean (warns)."),
    ],
    partitions_def=monthly_partitions, pool=DUCKDB_POOL,
)
def engagement_judge(context: dg.AssetExecutionContext, config: PredictorConfig, duckdb: CRMWarehouse):
    month = context.partition_key
    with duckdb.get_connection() as conn, transaction(conn):  # every table of the partition, or none
        n_features = write_model(conn, "core.engagement_features", {"month": month})
        groups = fetch_dicts(conn, "SELECT * FROM core.engagement_features WHERE month = $month ORDER BY aggregate_id",
                             {"month": month})
        rewrites = fetch_dicts(conn, """
            SELECT w.segment, w.aggregate_id, w.template_id, w.path, w.backend AS writer_backend, w.model AS writer_model,
                   w.original_title, w.original_body, w.new_title, w.new_body, f.mean_score, f.voucher_type,
                   f.discount_value, f.has_min_spend, f.has_expiry, f.has_product
            FROM agents.template_rewrites w
            JOIN core.engagement_features f USING (month, segment, aggregate_id)
            WHERE w.month = $month AND w.status = 'ok' ORDER BY w.segment, w.aggregate_id""", {"month": month})
        texts = [predictor.message_text(g["title"], g["body"]) for g in groups]
        originals = [predictor.message_text(w["original_title"], w["original_body"]) for w in rewrites]
        news = [predictor.message_text(w["new_title"], w["new_body"]) for w in rewrites]
        # One lookup (and one embedding pass for what is new) for every text the month's judge needs.
        vectors, _, _ = retrieval.month_embeddings(conn, month, sorted(set(texts + originals + news)),
                                                   table="agents.text_embeddings")
        try:
            model = predictor.train(_stack(vectors, texts), predictor.setting_features(groups),
                                    np.array([g["mean_score"] for g in groups]), [g["shop_id"] for g in groups],
                                    config.test_share, config.seed)
        except ValueError as e:  # a month too small to hold shops out: say so, predict nothing
            context.log.warning(f"{month}: engagement predictor not trained: {e}")
            model = None
        predicted = _predict(month, model, rewrites, _stack(vectors, originals), _stack(vectors, news)) if model else []
        n_pred = write_frame(conn, "agents.predicted_engagement", frame("agents.predicted_engagement", predicted),
                             {"month": month})
        better = sum(p["predicted_delta"] > 0 for p in predicted)
        metrics = {**(model.metrics if model else {"model": predictor.MODEL_NAME, "n_groups": len(groups)}),
                   "rewrites_scored": n_pred,
                   "rewrite_predicted_better_pct": round(100 * better / n_pred, 2) if n_pred else None}
        write_frame(conn, "results.engagement_model", frame("results.engagement_model", [metrics]), {"month": month})
    yield dg.MaterializeResult(asset_key=FEATURES, metadata={"dagster/row_count": n_features})
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if v is not None}
    if model:
        shown["held_out_plot"] = dg.MetadataValue.md(markdown_image(scatter(
            model.held_out[1], model.held_out[0], f"{month}: held-out shops, R^2 {model.metrics['r2']:.2f}",
            "observed mean engagement", "predicted"), "predicted vs observed"))
    yield dg.MaterializeResult(asset_key=MODEL, metadata={"dagster/row_count": 1, **shown})
    yield dg.MaterializeResult(asset_key=PREDICTIONS, metadata={
        "dagster/row_count": n_pred, "rewrite_predicted_better_pct": metrics["rewrite_predicted_better_pct"],
        "mean_predicted_delta": round(float(np.mean([p["predicted_delta"] for p in predicted])), 4) if predicted else None})
    yield dg.AssetCheckResult(asset_key=PREDICTIONS, check_name="every_accepted_rewrite_predicted",
                              passed=model is None or n_pred == len(rewrites),
                              metadata={"accepted_rewrites": len(rewrites), "predicted": n_pred})
    r2 = model.metrics["r2"] if model else None
    yield dg.AssetCheckResult(asset_key=MODEL, check_name="beats_predicting_the_mean", passed=bool(r2 and r2 > 0),
                              severity=dg.AssetCheckSeverity.WARN, metadata={"held_out_r2": r2})


def _predict(month: str, model: predictor.Predictor, rewrites: list[dict], original_vectors: np.ndarray,
             rewrite_vectors: np.ndarray) -> list[dict]:
    """Original and rewrite scored in the same setting: only the text differs."""
    setting = predictor.setting_features(rewrites)
    before, after = model.predict(original_vectors, setting), model.predict(rewrite_vectors, setting)
    return [{"month": month, "segment": w["segment"], "aggregate_id": w["aggregate_id"], "template_id": w["template_id"],
             "path": w["path"], "writer_backend": w["writer_backend"], "writer_model": w["writer_model"],
             "observed_original": w["mean_score"], "predicted_original": float(b), "predicted_rewrite": float(a),
             "predicted_delta": float(a - b), "model": predictor.MODEL_NAME}
            for w, b, a in zip(rewrites, before, after)]
