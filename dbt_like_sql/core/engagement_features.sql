-- core.engagement_features: what the engagement predictor learns from, one row per ranked group of the month
-- (every group with enough deliveries to be labelled strong, middle or weak): the template's text, its segment,
-- the voucher it carried and whether a product was bound, and the observed mean engagement score.
SELECT
    q.month, q.segment, q.aggregate_id, q.shop_id, q.template_id, q.performance_label, q.n_logs, q.mean_score,
    t.language, t.title, t.body,
    v.voucher_type, v.discount_value, v.min_spend IS NOT NULL AS has_min_spend,
    v.expires_at IS NOT NULL AS has_expiry, q.product_id IS NOT NULL AS has_product
FROM core.quartile_labels q
LEFT JOIN staging.templates t ON t.month = q.month AND t.template_id = q.template_id
LEFT JOIN staging.vouchers v ON v.month = q.month AND v.voucher_id = q.voucher_id
WHERE q.month = $month AND q.performance_label IN ('strong', 'middle', 'weak')
