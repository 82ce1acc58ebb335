-- staging.delivery_logs: one typed row per delivered message of the month.
-- A row goes to quarantine (with _rule/_detail) when it breaks the first of:
--   invalid_encoding (the loader's _issue), null_key, unknown_segment, malformed_timestamp,
--   outside_partition_month, duplicate_log_id.
-- Of several rows sharing a log_id, the first valid one (in file, then row order) is kept.
WITH src AS (
    SELECT
        month, _source, _row_id, _issue,
        NULLIF(TRIM(log_id), '') AS log_id,
        sent_at AS sent_at_text,
        TRY_STRPTIME(TRIM(sent_at), '%Y-%m-%d %H:%M:%S') AS sent_at,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        NULLIF(TRIM(plan_id), '') AS plan_id,
        NULLIF(TRIM(template_id), '') AS template_id,
        NULLIF(TRIM(product_id), '') AS product_id,
        NULLIF(TRIM(voucher_id), '') AS voucher_id,
        NULLIF(TRIM(user_id), '') AS user_id,
        NULLIF(TRIM(segment), '') AS segment
    FROM raw.delivery_logs
    WHERE month = $month
),
pre AS (
    SELECT *,
        CASE
            WHEN _issue IS NOT NULL THEN 'invalid_encoding'
            WHEN log_id IS NULL OR shop_id IS NULL OR plan_id IS NULL OR template_id IS NULL
                 OR user_id IS NULL OR segment IS NULL THEN 'null_key'
            WHEN NOT list_contains($segments, segment) THEN 'unknown_segment'
            WHEN sent_at IS NULL THEN 'malformed_timestamp'
            -- A range, not strftime(sent_at) <> $month: formatting every timestamp cost more than the whole rule.
            WHEN NOT (sent_at >= CAST($month || '-01' AS TIMESTAMP)
                      AND sent_at < CAST($month || '-01' AS TIMESTAMP) + INTERVAL 1 MONTH) THEN 'outside_partition_month'
        END AS _pre_rule
    FROM src
),
-- Copies are numbered only among rows whose log_id repeats: a window over every row would sort the whole
-- month's payload to find a fraction of a percent of duplicates. Repeats are found by a hash of log_id (a
-- collision only adds a unique log_id to the window, where it is numbered 1), which groups far cheaper than text.
repeated AS (
    SELECT hash(log_id) AS log_hash FROM pre WHERE log_id IS NOT NULL GROUP BY log_hash HAVING count(*) > 1
),
copies AS (
    SELECT _source, _row_id,
        ROW_NUMBER() OVER (PARTITION BY log_id ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy
    FROM pre
    WHERE hash(log_id) IN (SELECT log_hash FROM repeated)
),
ranked AS (
    SELECT pre.*, coalesce(copies._copy, 1) AS _copy
    FROM pre LEFT JOIN copies ON copies._source = pre._source AND copies._row_id = pre._row_id
)
SELECT
    month, log_id, sent_at, shop_id, plan_id, template_id, product_id, voucher_id, user_id, segment,
    _source, _row_id,
    CASE
        WHEN _pre_rule IS NOT NULL THEN _pre_rule
        WHEN _copy > 1 THEN 'duplicate_log_id'
    END AS _rule,
    CASE
        WHEN _pre_rule = 'invalid_encoding' THEN _issue
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN log_id IS NULL THEN 'log_id' END, CASE WHEN shop_id IS NULL THEN 'shop_id' END,
            CASE WHEN plan_id IS NULL THEN 'plan_id' END, CASE WHEN template_id IS NULL THEN 'template_id' END,
            CASE WHEN user_id IS NULL THEN 'user_id' END, CASE WHEN segment IS NULL THEN 'segment' END)
        WHEN _pre_rule = 'unknown_segment' THEN 'segment=' || segment
        WHEN _pre_rule = 'malformed_timestamp' THEN 'sent_at=' || coalesce(sent_at_text, 'NULL')
        WHEN _pre_rule = 'outside_partition_month' THEN 'sent_at=' || sent_at_text || ' is not in ' || $month
        WHEN _copy > 1 THEN 'log_id=' || log_id || ' already seen (copy ' || _copy || ')'
    END AS _detail
FROM ranked
