-- results.figure8: distribution of average engagement scores across template groups (Fig. 8), in bins of 0.25.
SELECT $month AS month, floor(mean_score * 4) / 4 AS score_bin, count(*) AS groups
FROM core.engagement_aggregates
WHERE month = $month
GROUP BY score_bin
