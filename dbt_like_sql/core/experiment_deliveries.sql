-- core.experiment_deliveries: every delivery of month $month that belongs to an experiment deployed in $deploy_month
-- (the month before) for segment $segment, with the arm its recipient is assigned to and the version it carried.
-- An experiment's deliveries are its template group's: same segment, merchant, product and voucher, carrying the
-- original template or its variant. The arm comes from the assignment rule (macro assignment_arm), not from the
-- version sent, so the comparison is by intention to treat and a sender that mixed versions up shows as low
-- compliance instead of a biased effect. A delivery to a holdout recipient is kept (arm 'holdout') to be reported.
SELECT
    $month AS month, d.segment, d.month AS deploy_month, d.experiment_id, l.log_id, s.user_id, l.sent_at,
    assignment_arm(d.experiment_id, s.user_id, d.treatment_share, d.holdout_share, d.holdout_salt) AS arm,
    CASE WHEN l.template_id = d.variant_template_id THEN 'rewrite' ELSE 'original' END AS version_sent,
    l.engagement_score, l.did_read,
    (l.did_store_click OR l.did_product_click OR l.did_button_click) AS did_click,
    l.did_unsubscribe
FROM agents.deployments d
JOIN core.log_engagement l
  ON l.month = $month AND l.segment = d.segment AND l.shop_id = d.shop_id
 AND l.template_id IN (d.template_id, d.variant_template_id)
 AND l.product_id IS NOT DISTINCT FROM d.product_id AND l.voucher_id IS NOT DISTINCT FROM d.voucher_id
JOIN staging.delivery_logs s ON s.month = $month AND s.log_id = l.log_id
WHERE d.month = $deploy_month AND d.segment = $segment
