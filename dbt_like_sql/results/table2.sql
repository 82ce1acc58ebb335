-- results.table2: the paper's Table 2 (faithfulness) for one month, per segment and overall.
SELECT
    $month AS month, coalesce(segment, 'Overall') AS segment, GROUPING(segment)::BOOLEAN AS is_overall,
    count(*) AS count, round(avg(bertscore_f1), 4) AS bertscore_f1, round(avg(chrf), 2) AS chrf,
    string_agg(DISTINCT bertscore_model, ', ') AS bertscore_model
FROM agents.faithfulness_scores
WHERE month = $month
GROUP BY GROUPING SETS ((segment), ())
