-- staging.shops: one row per merchant. Rules: null_key, duplicate_key (first row wins).
WITH src AS (
    SELECT month, _source, _row_id,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        NULLIF(TRIM(shop_name), '') AS shop_name,
        UPPER(NULLIF(TRIM(market), '')) AS market
    FROM raw.shops
    WHERE month = $month
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY shop_id ORDER BY _row_id) AS _copy FROM src
)
SELECT month, shop_id, shop_name, market, _source, _row_id,
    CASE WHEN shop_id IS NULL THEN 'null_key' WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE WHEN shop_id IS NULL THEN 'empty: shop_id' WHEN _copy > 1 THEN 'shop_id=' || shop_id || ' already seen' END AS _detail
FROM ranked
