-- staging.vouchers: voucher facts, the only source of truth for any offer a message may state.
-- Rules, first broken wins: invalid_encoding (the loader's _issue), null_key, unknown_voucher_type,
-- invalid_number (a numeric field is not a number), impossible_value (percentage outside (0, 100], non-positive amount, negative min_spend,
-- non-positive cap), invalid_currency (neither a known alias nor a three-letter code), malformed_timestamp
-- (expires_at), duplicate_key (first row wins). A currency typed as merchants do ('RM', '₱', 'Rp') becomes its
-- ISO code through $currency_aliases/$currency_codes (crmagent_dagster/currency.py, the agents' own table).
-- A well-formed but unfamiliar code (e.g. 'XYZ') is kept and stated as-is.
WITH src AS (
    SELECT month, _source, _row_id, _issue,
        NULLIF(TRIM(voucher_id), '') AS voucher_id,
        NULLIF(TRIM(shop_id), '') AS shop_id,
        LOWER(NULLIF(TRIM(voucher_type), '')) AS voucher_type,
        NULLIF(TRIM(discount_value), '') AS discount_value_text,
        NULLIF(TRIM(min_spend), '') AS min_spend_text,
        NULLIF(TRIM(max_discount), '') AS max_discount_text,
        TRY_CAST(NULLIF(TRIM(discount_value), '') AS DOUBLE) AS discount_value,
        TRY_CAST(NULLIF(TRIM(min_spend), '') AS DOUBLE) AS min_spend,
        TRY_CAST(NULLIF(TRIM(max_discount), '') AS DOUBLE) AS max_discount,
        coalesce(list_extract($currency_codes, list_position($currency_aliases, UPPER(NULLIF(TRIM(currency), '')))),
                 UPPER(NULLIF(TRIM(currency), ''))) AS currency,
        NULLIF(TRIM(voucher_code), '') AS voucher_code,
        expires_at AS expires_at_text,
        TRY_STRPTIME(TRIM(expires_at), '%Y-%m-%d %H:%M:%S') AS expires_at
    FROM raw.vouchers
    WHERE month = $month
),
pre AS (
    SELECT *,
        CASE
            WHEN _issue IS NOT NULL THEN 'invalid_encoding'
            WHEN voucher_id IS NULL OR shop_id IS NULL OR voucher_type IS NULL THEN 'null_key'
            WHEN NOT list_contains($voucher_types, voucher_type) THEN 'unknown_voucher_type'
            WHEN (discount_value_text IS NOT NULL AND discount_value IS NULL)
              OR (min_spend_text IS NOT NULL AND min_spend IS NULL)
              OR (max_discount_text IS NOT NULL AND max_discount IS NULL)
              OR (voucher_type <> 'free_shipping' AND discount_value IS NULL) THEN 'invalid_number'
            WHEN (voucher_type = 'percentage_off' AND NOT (discount_value > 0 AND discount_value <= 100))
              OR (voucher_type = 'fixed_amount_off' AND NOT discount_value > 0)
              OR coalesce(discount_value, 0) < 0
              OR min_spend < 0 OR max_discount <= 0 THEN 'impossible_value'
            WHEN currency IS NOT NULL AND NOT regexp_full_match(currency, '[A-Z]{3}') THEN 'invalid_currency'
            WHEN expires_at_text IS NOT NULL AND expires_at IS NULL THEN 'malformed_timestamp'
        END AS _pre_rule
    FROM src
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY voucher_id ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy FROM pre
)
SELECT month, voucher_id, shop_id, voucher_type, coalesce(discount_value, 0) AS discount_value, min_spend,
    max_discount, currency, voucher_code, expires_at, _source, _row_id,
    CASE WHEN _pre_rule IS NOT NULL THEN _pre_rule WHEN _copy > 1 THEN 'duplicate_key' END AS _rule,
    CASE
        WHEN _pre_rule = 'invalid_encoding' THEN _issue
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN voucher_id IS NULL THEN 'voucher_id' END, CASE WHEN shop_id IS NULL THEN 'shop_id' END,
            CASE WHEN voucher_type IS NULL THEN 'voucher_type' END)
        WHEN _pre_rule = 'unknown_voucher_type' THEN 'voucher_type=' || voucher_type
        WHEN _pre_rule IN ('invalid_number', 'impossible_value') THEN concat_ws(', ',
            'discount_value=' || coalesce(discount_value_text, 'NULL'), 'min_spend=' || coalesce(min_spend_text, 'NULL'),
            'max_discount=' || coalesce(max_discount_text, 'NULL'))
        WHEN _pre_rule = 'invalid_currency' THEN 'currency=' || currency
        WHEN _pre_rule = 'malformed_timestamp' THEN 'expires_at=' || expires_at_text
        WHEN _copy > 1 THEN 'voucher_id=' || voucher_id || ' already seen'
    END AS _detail
FROM ranked
