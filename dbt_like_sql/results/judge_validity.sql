-- results.judge_validity: does the judge's score of an original track its observed engagement?
-- Spearman's rho between judge_score (audience + marketing, 2-10) and observed mean engagement over the month's
-- strong and weak originals, per segment and pooled ('Overall'); ties get average ranks. The 95% interval uses
-- Fisher's z with the Spearman variance 1.06 / (n - 3) (Fieller et al.); n < 10 gives no interval.
WITH scored AS (
    SELECT segment, judge_score::DOUBLE AS x, observed_mean_score AS y, backend || ':' || model AS judge
    FROM agents.original_scores
    WHERE month = $month AND status = 'ok' AND judge_score IS NOT NULL
),
both_levels AS (
    SELECT segment AS grp, x, y, judge FROM scored
    UNION ALL
    SELECT 'Overall' AS grp, x, y, judge FROM scored
),
ranked AS (
    SELECT grp, judge,
           rank() OVER (PARTITION BY grp ORDER BY x) + (count(*) OVER (PARTITION BY grp, x) - 1) / 2.0 AS rx,
           rank() OVER (PARTITION BY grp ORDER BY y) + (count(*) OVER (PARTITION BY grp, y) - 1) / 2.0 AS ry
    FROM both_levels
),
rho AS (
    SELECT grp, count(*) AS n, corr(rx, ry) AS rho, string_agg(DISTINCT judge, ', ') AS judge
    FROM ranked GROUP BY grp
)
SELECT $month AS month, grp AS segment, grp = 'Overall' AS is_overall, n, round(rho, 4) AS spearman_rho,
       CASE WHEN n >= 10 AND abs(rho) < 1 THEN round(tanh(atanh(rho) - 1.96 * sqrt(1.06 / (n - 3))), 4) END AS ci_low,
       CASE WHEN n >= 10 AND abs(rho) < 1 THEN round(tanh(atanh(rho) + 1.96 * sqrt(1.06 / (n - 3))), 4) END AS ci_high,
       judge
FROM rho
