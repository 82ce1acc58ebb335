-- core.engagement_aggregates: one row per merchant x template x product x segment x voucher of the
-- month (Appendix A), with the mean engagement score and its sample count. A missing product or
-- voucher is its own group value (NULL). aggregate_id is a stable hash of the five keys and the
-- month, used by every later stage to point back at the group.
SELECT
    month,
    md5(concat_ws('|', month, segment, shop_id, template_id, coalesce(product_id, '<none>'),
                  coalesce(voucher_id, '<none>'))) AS aggregate_id,
    segment, shop_id, template_id, product_id, voucher_id,
    count(*) AS n_logs,
    avg(engagement_score) AS mean_score,
    stddev_samp(engagement_score) AS sd_score,
    avg(did_read::INTEGER) AS read_rate,
    avg(did_store_click::INTEGER) AS store_click_rate,
    avg(did_product_click::INTEGER) AS product_click_rate,
    avg(did_button_click::INTEGER) AS button_click_rate,
    avg(did_unsubscribe::INTEGER) AS unsubscribe_rate
FROM core.log_engagement
WHERE month = $month
GROUP BY month, segment, shop_id, template_id, product_id, voucher_id
