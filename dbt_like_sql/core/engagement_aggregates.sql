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
    -- Every statistic comes from exact integer sums, so re-running a month gives bit-identical
    -- results (parallel avg() over doubles can differ in the last bits, and ties in quartile_labels
    -- must not flip on a re-run).
    sum(engagement_score)::DOUBLE / count(*) AS mean_score,
    CASE WHEN count(*) > 1 THEN sqrt(greatest(
        (sum(engagement_score * engagement_score)::DOUBLE
         - sum(engagement_score)::DOUBLE * sum(engagement_score) / count(*)) / (count(*) - 1), 0)) END AS sd_score,
    sum(did_read::INTEGER)::DOUBLE / count(*) AS read_rate,
    sum(did_store_click::INTEGER)::DOUBLE / count(*) AS store_click_rate,
    sum(did_product_click::INTEGER)::DOUBLE / count(*) AS product_click_rate,
    sum(did_button_click::INTEGER)::DOUBLE / count(*) AS button_click_rate,
    sum(did_unsubscribe::INTEGER)::DOUBLE / count(*) AS unsubscribe_rate
FROM core.log_engagement
WHERE month = $month
GROUP BY month, segment, shop_id, template_id, product_id, voucher_id
