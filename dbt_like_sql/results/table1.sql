-- results.table1: the paper's Table 1 for one month, per segment and overall.
-- Scores are EvaluateAgent's 1/3/5 means; delta_pct = (gen - ori) / ori * 100. The preference rate is the
-- share of judged pairs whose both-order verdict is the rewrite (ties count against it), with a Wilson 95%
-- interval; consistency_rate is the share of pairs whose two orders agreed. writer/judge name the backends
-- and models that produced the numbers. judge_rho (with its 95% interval) is the judge's validity from
-- results.judge_validity: how well its scores of originals track their observed engagement. The predicted_*
-- columns are the second, data-driven judge (agents.predicted_engagement): the month's engagement predictor's
-- mean prediction for originals and rewrites, and the share of rewrites it predicts to out-engage their original.
WITH pairs AS (
    SELECT s.segment, s.original_audience, s.rewrite_audience, s.original_marketing, s.rewrite_marketing,
           j.verdict, j.position_consistent,
           s.writer_backend || ':' || s.writer_model AS writer, s.backend || ':' || s.model AS judge
    FROM agents.rewrite_scores s
    JOIN agents.preference_judgments j USING (month, segment, aggregate_id)
    WHERE s.month = $month AND s.status = 'ok' AND j.status = 'ok'
),
grouped AS (
    SELECT coalesce(segment, 'Overall') AS segment, GROUPING(segment) AS is_overall, count(*) AS n,
           avg(original_audience) AS audience_ori, avg(rewrite_audience) AS audience_gen,
           avg(original_marketing) AS market_ori, avg(rewrite_marketing) AS market_gen,
           sum((verdict = 'rewrite')::INT) AS wins, avg(position_consistent::INT) AS consistency_rate,
           string_agg(DISTINCT writer, ', ') AS writer, string_agg(DISTINCT judge, ', ') AS judge
    FROM pairs
    GROUP BY GROUPING SETS ((segment), ())
),
table1 AS (
    SELECT
        $month AS month, segment, is_overall::BOOLEAN AS is_overall, n AS count,
        round(audience_ori, 2) AS audience_ori, round(audience_gen, 2) AS audience_gen,
        round((audience_gen - audience_ori) / audience_ori * 100, 2) AS audience_delta_pct,
        round(market_ori, 2) AS market_ori, round(market_gen, 2) AS market_gen,
        round((market_gen - market_ori) / market_ori * 100, 2) AS market_delta_pct,
        round(wins / n * 100, 2) AS gen_preferred_pct,
        round(wilson_low(wins, n), 2) AS gen_preferred_ci_low,
        round(wilson_high(wins, n), 2) AS gen_preferred_ci_high,
        round(consistency_rate, 4) AS position_consistency,
        writer, judge
    FROM grouped
),
predicted AS (
    SELECT coalesce(segment, 'Overall') AS segment, round(avg(predicted_original), 3) AS predicted_ori,
           round(avg(predicted_rewrite), 3) AS predicted_gen,
           round(avg((predicted_delta > 0)::INT) * 100, 2) AS predicted_better_pct
    FROM agents.predicted_engagement
    WHERE month = $month
    GROUP BY GROUPING SETS ((segment), ())
)
SELECT t.*, v.spearman_rho AS judge_rho, v.ci_low AS judge_rho_ci_low, v.ci_high AS judge_rho_ci_high,
       p.predicted_ori, p.predicted_gen, p.predicted_better_pct
FROM table1 t
LEFT JOIN results.judge_validity v ON v.month = t.month AND v.segment = t.segment
LEFT JOIN predicted p ON p.segment = t.segment
