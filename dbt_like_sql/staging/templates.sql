-- staging.templates: message copy (title + body) as the merchant wrote it; text is kept verbatim.
-- Rules: invalid_encoding (the loader's _issue, or U+FFFD left by an earlier lossy decode), null_key,
-- empty_text (title and body both blank), duplicate_key (first row wins).
WITH src AS (
    SELECT month, _source, _row_id, _issue,
        NULLIF(TRIM(template_id), '') AS template_id,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        LOWER(NULLIF(TRIM(language), '')) AS language,
        coalesce(title, '') AS title,
        coalesce(body, '') AS body
    FROM raw.templates
    WHERE month = $month
),
pre AS (
    SELECT *,
        CASE
            WHEN _issue IS NOT NULL THEN 'invalid_encoding'
            WHEN template_id IS NULL OR shop_id IS NULL THEN 'null_key'
            WHEN TRIM(title) = '' AND TRIM(body) = '' THEN 'empty_text'
            WHEN contains(title || body, chr(65533)) THEN 'invalid_encoding'
        END AS _pre_rule
    FROM src
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY template_id ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy FROM pre
)
SELECT month, template_id, shop_id, language, title, body, _source, _row_id,
    CASE WHEN _pre_rule IS NOT NULL THEN _pre_rule WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN template_id IS NULL THEN 'template_id' END, CASE WHEN shop_id IS NULL THEN 'shop_id' END)
        WHEN _pre_rule = 'empty_text' THEN 'template_id=' || template_id || ' has no title and no body'
        WHEN _pre_rule = 'invalid_encoding' THEN coalesce(_issue, 'template_id=' || template_id || ' has bytes that are not UTF-8')
        WHEN _copy > 1 THEN 'template_id=' || template_id || ' already seen'
    END AS _detail
FROM ranked
