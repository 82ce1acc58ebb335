-- marts.segment_summary: one row per month x segment: what was rewritten or left unchanged, how it scored, how
-- faithful it is.
SELECT
    month, segment, count(*) AS rewrites,
    count(*) FILTER (WHERE status = 'ok') AS accepted, count(*) FILTER (WHERE status = 'rejected') AS rejected,
    count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE status = 'unchanged') AS unchanged,
    count(*) FILTER (WHERE status = 'waiting') AS waiting,
    count(*) FILTER (WHERE message_kind NOT IN ('promotional_offer', 'announcement')) AS not_marketing,
    count(*) FILTER (WHERE path = 1) AS path1, count(*) FILTER (WHERE path = 2) AS path2,
    count(*) FILTER (WHERE path = 3) AS path3,
    avg(original_audience) AS audience_ori, avg(rewrite_audience) AS audience_gen,
    avg(original_marketing) AS market_ori, avg(rewrite_marketing) AS market_gen,
    avg((preference_verdict = 'rewrite')::INT) AS gen_preferred_rate,
    avg(position_consistent::INT) AS position_consistency,
    avg(bertscore_f1) AS bertscore_f1, avg(chrf) AS chrf,
    avg((predicted_engagement_rewrite > predicted_engagement_original)::INT) AS predicted_better_rate,
    avg((len(first_violations) > 0)::INT) AS guardrail_violation_rate,
    string_agg(DISTINCT writer_backend || ':' || writer_model, ', ') AS writer,
    string_agg(DISTINCT judge_backend || ':' || judge_model, ', ') AS judge
FROM marts.rewrites
GROUP BY month, segment
