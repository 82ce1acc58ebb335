-- staging.shops: one row per merchant. Rules: invalid_encoding (the loader's _issue: bytes that are not
-- UTF-8), null_key, duplicate_key (first row wins).
WITH src AS (
    SELECT month, _source, _row_id, _issue,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        NULLIF(TRIM(shop_name), '') AS shop_name,
        UPPER(NULLIF(TRIM(market), '')) AS market
    FROM raw.shops
    WHERE month = $month
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY shop_id ORDER BY _issue IS NULL DESC, _source, _row_id) AS _copy FROM src
)
SELECT month, shop_id, shop_name, market, _source, _row_id,
    CASE WHEN _issue IS NOT NULL THEN 'invalid_encoding' WHEN shop_id IS NULL THEN 'null_key' WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE WHEN _issue IS NOT NULL THEN _issue WHEN shop_id IS NULL THEN 'empty: shop_id' WHEN _copy > 1 THEN 'shop_id=' || shop_id || ' already seen' END AS _detail
FROM ranked
