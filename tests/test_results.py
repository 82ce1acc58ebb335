"""Issue 6's pieces that need no pipeline: the engagement predictor, the charts, Table 3, the results sensor."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from crmagent_dagster.agents import predictor
from crmagent_dagster.plots import bars, markdown_image, scatter
from crmagent_dagster.segments import SEGMENT_KEYS


def _synthetic(n: int, text_weight: float, seed: int = 0):
    """Groups whose engagement depends on one text direction, the segment and a voucher, plus noise."""
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 384)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)  # unit vectors, like the embedder's
    rows = [{"segment": SEGMENT_KEYS[i % len(SEGMENT_KEYS)], "voucher_type": ("percentage_off", None)[i % 2],
             "discount_value": 10.0, "has_min_spend": i % 3 == 0, "has_expiry": True, "has_product": i % 5 == 0}
            for i in range(n)]
    setting = predictor.setting_features(rows)
    y = text_weight * 20 * text[:, 0] + 0.5 * setting[:, 0] + 0.8 * setting[:, len(SEGMENT_KEYS)] + rng.normal(0, 0.3, n)
    shops = [f"s{i % 40}" for i in range(n)]
    return text, setting, y, shops


def test_setting_features_one_hot_segment_and_voucher():
    got = predictor.setting_features([{"segment": SEGMENT_KEYS[2], "voucher_type": "free_shipping",
                                       "has_expiry": True}, {"segment": SEGMENT_KEYS[0], "voucher_type": None}])
    assert got.shape == (2, len(SEGMENT_KEYS) + 7)
    assert got[0, 2] == 1 and got[0].sum() == 3 and got[1, 0] == 1 and got[1].sum() == 1


def test_predictor_learns_text_effect_on_held_out_shops():
    text, setting, y, shops = _synthetic(600, text_weight=1.0)
    model = predictor.train(text, setting, y, shops)
    m = model.metrics
    assert m["n_train"] + m["n_test"] == 600 and m["n_test_shops"] == 8  # whole shops held out
    assert m["r2"] > 0.6 and m["spearman_rho"] > 0.7
    assert m["r2"] - m["baseline_r2"] > 0.3  # the text carries signal the no-text baseline cannot see
    better, worse = text[:1].copy(), text[:1].copy()
    better[0, 0], worse[0, 0] = 0.2, -0.2
    assert model.predict(better, setting[:1])[0] > model.predict(worse, setting[:1])[0]


def test_predictor_reports_no_text_lift_when_text_is_noise():
    text, setting, y, shops = _synthetic(600, text_weight=0.0)
    m = predictor.train(text, setting, y, shops).metrics
    assert abs(m["r2"] - m["baseline_r2"]) < 0.1


def test_predictor_refuses_too_few_groups_with_counts():
    text, setting, y, shops = _synthetic(12, 1.0)
    with pytest.raises(ValueError, match="12 groups from 12 shops"):
        predictor.train(text, setting, y, shops)


def test_charts_are_png_images_in_markdown():
    png = bars(["a", "b"], {"before": [1.0, 2.0], "after": [2.0, None]}, "t",
               errors={"after": ([1.5, None], [2.5, None])})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    md = markdown_image(scatter([1.0, 2.0], [1.5, 2.5], "t", "x", "y"), "alt")
    assert md.startswith("![alt](data:image/png;base64,")
    assert base64.b64decode(md[md.index(",") + 1:-1])[:4] == b"\x89PNG"


def test_ablation_sample_is_fixed_by_hash_and_seed(conn):
    from crmagent_dagster.agents.ablation import sample_weak

    conn.execute("CREATE SCHEMA core")
    conn.execute("CREATE TABLE core.quartile_labels AS SELECT '2025-04' AS month, "
                 "['a', 'b', 'c'][i % 3 + 1] AS segment, 'g' || i AS aggregate_id, "
                 "CASE WHEN i < 60 THEN 'weak' ELSE 'strong' END AS performance_label FROM range(90) t(i)")
    first = sample_weak(conn, "2025-04", 10, seed=0)
    assert first == sample_weak(conn, "2025-04", 10, seed=0)  # the same templates on every run
    assert first != sample_weak(conn, "2025-04", 10, seed=1)
    ids = [i for group in first.values() for i in group]
    assert len(ids) == 10 and all(int(i[1:]) < 60 for i in ids)  # weak ones only
    assert sum(map(len, sample_weak(conn, "2025-04", 500, seed=0).values())) == 60


def test_default_ablation_settings_follow_the_backend():
    from crmagent_dagster.agents.ablation import configured, default_settings, label
    from crmagent_dagster.llm import LLMResource

    assert [s.name for s in default_settings(LLMResource())] == ["rules", "rules, zero-shot writer"]
    llm = LLMResource(configured=True, default_model="m")
    settings = {s.name: s for s in default_settings(llm)}
    assert list(settings) == ["baseline", "writer + CoT", "judge + CoT", "rule-engine writer"]
    assert label(configured(llm, settings["writer + CoT"]), "template") == "m + CoT"
    assert label(configured(llm, settings["writer + CoT"]), "evaluate") == "m"
    assert label(configured(llm, settings["rule-engine writer"]), "template") == "hybrid-rule-engine-v1"


def test_results_sensor_waits_for_all_eleven_segments_of_the_month():
    import dagster as dg

    from crmagent_dagster.partitions import month_segment_partitions
    from crmagent_dagster.schedules import results_sensor

    @dg.asset(partitions_def=month_segment_partitions)
    def probe() -> None:
        """Stands in for a segment run: the sensor reads only the finished run's partition tag."""

    last = dg.AssetKey(["agents", "deployments"])  # the last asset of a segment run

    def audited(month: str, segment: str) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=last, partition=f"{month}|{segment}"))

    with dg.instance_for_test() as instance:
        run = dg.materialize([probe], instance=instance,
                             partition_key=dg.MultiPartitionKey({"month": "2025-04", "segment": SEGMENT_KEYS[0]}))
        success = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records[0]
        context = dg.build_run_status_sensor_context(
            sensor_name="results_sensor", dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
            dagster_event=success.event_log_entry.dagster_event)
        for segment in SEGMENT_KEYS:  # another month being complete must not count
            audited("2025-05", segment)
        for segment in SEGMENT_KEYS[:-1]:
            audited("2025-04", segment)
        waiting = results_sensor(context)
        assert isinstance(waiting, dg.SkipReason) and "waiting for 1 segment" in waiting.skip_message
        audited("2025-04", SEGMENT_KEYS[-1])
        request = results_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.partition_key == "2025-04"
        assert run.run_id in request.run_key  # one request per finishing run: re-evaluation is idempotent


def test_wilson_interval_macro_matches_the_formula(conn):
    from crmagent_dagster.sql import ensure_schemas

    ensure_schemas(conn)
    low, high = conn.execute("SELECT round(wilson_low(8, 10), 2), round(wilson_high(8, 10), 2)").fetchall()[0]
    assert (low, high) == (49.02, 94.33)  # 8 of 10: the textbook Wilson 95% interval
    assert conn.execute("SELECT wilson_low(0, 20) >= 0 AND wilson_high(20, 20) <= 100.0001").fetchall()[0][0]
