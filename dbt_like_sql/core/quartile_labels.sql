-- core.quartile_labels: strong / middle / weak labels within one month x segment.
-- Groups with fewer than $min_samples deliveries are 'insufficient_samples' and are not ranked.
-- The N eligible groups are ranked by mean_score descending; ties are broken by n_logs descending
-- (more evidence ranks first), then shop_id, template_id, product_id, voucher_id ascending (NULL last).
-- The first floor(N * $strong_share) ranks are 'strong', the last floor(N * $weak_share) are 'weak',
-- so the label sizes are exact and the same input always gives the same labels.
WITH groups AS (
    SELECT *, n_logs >= $min_samples AS eligible
    FROM core.engagement_aggregates
    WHERE month = $month AND segment = $segment
),
ranked AS (
    SELECT aggregate_id,
        ROW_NUMBER() OVER (ORDER BY mean_score DESC, n_logs DESC, shop_id, template_id,
                           product_id NULLS LAST, voucher_id NULLS LAST) AS performance_rank,
        COUNT(*) OVER () AS n_ranked
    FROM groups
    WHERE eligible
)
SELECT
    g.month, g.segment, g.aggregate_id, g.shop_id, g.template_id, g.product_id, g.voucher_id,
    g.n_logs, g.mean_score,
    r.performance_rank, r.n_ranked,
    CASE WHEN r.n_ranked > 1 THEN (r.n_ranked - r.performance_rank) / (r.n_ranked - 1) END AS score_percentile,
    CASE
        WHEN NOT g.eligible THEN 'insufficient_samples'
        WHEN r.performance_rank <= floor(r.n_ranked * $strong_share) THEN 'strong'
        WHEN r.performance_rank > r.n_ranked - floor(r.n_ranked * $weak_share) THEN 'weak'
        ELSE 'middle'
    END AS performance_label
FROM groups g
LEFT JOIN ranked r ON r.aggregate_id = g.aggregate_id
