-- staging.plans: campaign plans with their audience segment.
-- Rules: invalid_encoding (the loader's _issue), null_key, unknown_segment, duplicate_key (first row wins).
WITH src AS (
    SELECT month, _source, _row_id, _issue,
        NULLIF(TRIM(plan_id), '') AS plan_id,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        NULLIF(TRIM(segment), '') AS segment,
        NULLIF(TRIM(template_id), '') AS template_id,
        NULLIF(TRIM(product_id), '') AS product_id,
        NULLIF(TRIM(voucher_id), '') AS voucher_id,
        LOWER(NULLIF(TRIM(channel), '')) AS channel
    FROM raw.plans
    WHERE month = $month
),
pre AS (
    SELECT *,
        CASE
            WHEN _issue IS NOT NULL THEN 'invalid_encoding'
            WHEN plan_id IS NULL OR shop_id IS NULL OR segment IS NULL OR template_id IS NULL THEN 'null_key'
            WHEN NOT list_contains($segments, segment) THEN 'unknown_segment'
        END AS _pre_rule
    FROM src
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY plan_id ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy FROM pre
)
SELECT month, plan_id, shop_id, segment, template_id, product_id, voucher_id, channel, _source, _row_id,
    CASE WHEN _pre_rule IS NOT NULL THEN _pre_rule WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE
        WHEN _pre_rule = 'invalid_encoding' THEN _issue
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN plan_id IS NULL THEN 'plan_id' END, CASE WHEN shop_id IS NULL THEN 'shop_id' END,
            CASE WHEN segment IS NULL THEN 'segment' END, CASE WHEN template_id IS NULL THEN 'template_id' END)
        WHEN _pre_rule = 'unknown_segment' THEN 'segment=' || segment
        WHEN _copy > 1 THEN 'plan_id=' || plan_id || ' already seen'
    END AS _detail
FROM ranked
