-- results.table3: the paper's Table 3 for one month: each ablation configuration's rewrites of the same sample
-- of weak templates (agents.ablation_judgments), scored and judged like Table 1. ContentAgent is held fixed;
-- template/evaluate name the backend or model (+ CoT) of TemplateAgent and EvaluateAgent. Rates count judged
-- pairs only (failed, rejected and waiting items are in `failed`; templates left as they were, with no error or
-- no sure fix, in `unchanged`), with a Wilson 95% interval on the preference rate.
WITH judged AS (
    SELECT * FROM agents.ablation_judgments WHERE month = $month
),
grouped AS (
    SELECT position, configuration, any_value(content_setting) AS content, any_value(template_setting) AS template,
           any_value(evaluate_setting) AS evaluate, bool_or(zero_shot) AS zero_shot, count(*) AS sampled,
           count(*) FILTER (WHERE status = 'ok') AS n,
           count(*) FILTER (WHERE status NOT IN ('ok', 'unchanged')) AS failed,
           count(*) FILTER (WHERE status = 'unchanged') AS unchanged,
           avg(original_audience) FILTER (WHERE status = 'ok') AS audience_ori,
           avg(rewrite_audience) FILTER (WHERE status = 'ok') AS audience_gen,
           avg(original_marketing) FILTER (WHERE status = 'ok') AS market_ori,
           avg(rewrite_marketing) FILTER (WHERE status = 'ok') AS market_gen,
           sum((verdict = 'rewrite')::INT) FILTER (WHERE status = 'ok') AS wins,
           avg(position_consistent::INT) FILTER (WHERE status = 'ok') AS consistency_rate,
           avg((path = 3)::INT) AS path3_share
    FROM judged
    GROUP BY position, configuration
)
SELECT
    $month AS month, position, configuration, content, template, evaluate, zero_shot, sampled, n AS count, failed,
    unchanged,
    round(audience_ori, 2) AS audience_ori, round(audience_gen, 2) AS audience_gen,
    round((audience_gen - audience_ori) / audience_ori * 100, 2) AS audience_delta_pct,
    round(market_ori, 2) AS market_ori, round(market_gen, 2) AS market_gen,
    round((market_gen - market_ori) / market_ori * 100, 2) AS market_delta_pct,
    round(wins / n * 100, 2) AS gen_preferred_pct,
    round(wilson_low(wins, n), 2) AS gen_preferred_ci_low,
    round(wilson_high(wins, n), 2) AS gen_preferred_ci_high,
    round(consistency_rate, 4) AS position_consistency, round(path3_share, 4) AS path3_share
FROM grouped
