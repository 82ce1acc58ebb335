-- core.labelled_templates: the strong and weak groups of one month x segment, with everything the agents
-- need: the template's text and language, the bound product and voucher facts, and the metadata string
-- the RetrievalAgent embeds (product category hierarchy + voucher attributes, as in the paper).
-- metadata_text is NULL when the group has neither a product nor a voucher: such templates skip
-- retrieval and go to path 3.
WITH groups AS (
    SELECT * FROM core.quartile_labels
    WHERE month = $month AND segment = $segment AND performance_label IN ('strong', 'weak')
),
facts AS (
    SELECT
        g.month, g.segment, g.aggregate_id, g.performance_label, g.shop_id, g.template_id, g.product_id,
        g.voucher_id, g.n_logs, g.mean_score, g.performance_rank,
        t.language, t.title, t.body,
        p.product_name, p.category_l1, p.category_l2, p.category_l3,
        v.voucher_type, v.discount_value, v.min_spend, v.max_discount, v.currency, v.voucher_code, v.expires_at,
        concat_ws(' > ', p.category_l1, p.category_l2, p.category_l3) AS category_path,
        CASE v.voucher_type
            WHEN 'percentage_off' THEN 'percentage off ' || v.discount_value::VARCHAR || '%'
                || coalesce(' capped at ' || v.max_discount::VARCHAR || ' ' || v.currency, '')
            WHEN 'fixed_amount_off' THEN 'fixed amount off ' || v.discount_value::VARCHAR || ' ' || v.currency
            WHEN 'free_shipping' THEN 'free shipping'
        END || coalesce(' with minimum spend ' || v.min_spend::VARCHAR || ' ' || v.currency, '') AS voucher_text
    FROM groups g
    LEFT JOIN staging.templates t ON t.month = g.month AND t.template_id = g.template_id
    LEFT JOIN staging.products p ON p.month = g.month AND p.product_id = g.product_id
    LEFT JOIN staging.vouchers v ON v.month = g.month AND v.voucher_id = g.voucher_id
)
SELECT *,
    CASE WHEN category_path = '' AND voucher_text IS NULL THEN NULL
         ELSE concat_ws(' | ', CASE WHEN category_path <> '' THEN 'category: ' || category_path END,
                        'voucher: ' || voucher_text)
    END AS metadata_text
FROM facts
