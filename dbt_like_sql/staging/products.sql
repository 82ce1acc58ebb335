-- staging.products: bound products with their three-level category.
-- Rules: invalid_encoding (the loader's _issue), null_key, invalid_number (price not a number), negative_value (price < 0), duplicate_key.
WITH src AS (
    SELECT month, _source, _row_id, _issue,
        NULLIF(TRIM(product_id), '') AS product_id,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        NULLIF(TRIM(product_name), '') AS product_name,
        NULLIF(TRIM(category_l1), '') AS category_l1,
        NULLIF(TRIM(category_l2), '') AS category_l2,
        NULLIF(TRIM(category_l3), '') AS category_l3,
        NULLIF(TRIM(price), '') AS price_text,
        TRY_CAST(NULLIF(TRIM(price), '') AS DOUBLE) AS price
    FROM raw.products
    WHERE month = $month
),
pre AS (
    SELECT *,
        CASE
            WHEN _issue IS NOT NULL THEN 'invalid_encoding'
            WHEN product_id IS NULL OR shop_id IS NULL THEN 'null_key'
            WHEN price_text IS NOT NULL AND (price IS NULL OR isnan(price) OR isinf(price)) THEN 'invalid_number'
            WHEN price < 0 THEN 'negative_value'
        END AS _pre_rule
    FROM src
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy FROM pre
)
SELECT month, product_id, shop_id, product_name, category_l1, category_l2, category_l3, price, _source, _row_id,
    CASE WHEN _pre_rule IS NOT NULL THEN _pre_rule WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE
        WHEN _pre_rule = 'invalid_encoding' THEN _issue
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN product_id IS NULL THEN 'product_id' END, CASE WHEN shop_id IS NULL THEN 'shop_id' END)
        WHEN _pre_rule IN ('invalid_number', 'negative_value') THEN 'price=' || price_text
        WHEN _copy > 1 THEN 'product_id=' || product_id || ' already seen'
    END AS _detail
FROM ranked
