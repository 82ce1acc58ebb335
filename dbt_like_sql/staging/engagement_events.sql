-- staging.engagement_events: typed engagement events of the month's deliveries.
-- Rules, first broken wins: invalid_encoding (the loader's _issue), null_key, unknown_event_type,
-- malformed_timestamp, unknown_log_id (no such delivery in staging.delivery_logs for the month),
-- event_before_send, duplicate_event (same log_id, event_type and event_at as an earlier row).
-- Repeats of one event type at *different* times stay here; they count once in core.log_engagement.
WITH src AS (
    SELECT
        month, _source, _row_id, _issue,
        NULLIF(TRIM(log_id), '') AS log_id,
        NULLIF(TRIM(event_type), '') AS event_type,
        event_at AS event_at_text,
        TRY_STRPTIME(TRIM(event_at), '%Y-%m-%d %H:%M:%S') AS event_at
    FROM raw.engagement_events
    WHERE month = $month
),
logs AS (
    SELECT log_id, sent_at FROM staging.delivery_logs WHERE month = $month
),
pre AS (
    SELECT s.*, l.sent_at,
        CASE
            WHEN s._issue IS NOT NULL THEN 'invalid_encoding'
            WHEN s.log_id IS NULL OR s.event_type IS NULL THEN 'null_key'
            WHEN NOT list_contains($event_types, s.event_type) THEN 'unknown_event_type'
            WHEN s.event_at IS NULL THEN 'malformed_timestamp'
            WHEN l.log_id IS NULL THEN 'unknown_log_id'
            WHEN s.event_at < l.sent_at THEN 'event_before_send'
        END AS _pre_rule
    FROM src s
    LEFT JOIN logs l ON l.log_id = s.log_id
),
-- Copies are numbered only among rows whose (log_id, event_type, event_at) repeats, found by hash as in
-- delivery_logs (a row with a NULL key part never reaches the duplicate rule: null_key/malformed_timestamp come first).
repeated AS (
    SELECT hash(log_id, event_type, event_at) AS event_hash FROM pre
    WHERE log_id IS NOT NULL AND event_type IS NOT NULL AND event_at IS NOT NULL
    GROUP BY event_hash HAVING count(*) > 1
),
copies AS (
    SELECT _source, _row_id,
        ROW_NUMBER() OVER (PARTITION BY log_id, event_type, event_at
                           ORDER BY _pre_rule IS NULL DESC, _source, _row_id) AS _copy
    FROM pre
    WHERE hash(log_id, event_type, event_at) IN (SELECT event_hash FROM repeated)
),
ranked AS (
    SELECT pre.*, coalesce(copies._copy, 1) AS _copy
    FROM pre LEFT JOIN copies ON copies._source = pre._source AND copies._row_id = pre._row_id
)
SELECT
    month, log_id, event_type, event_at, _source, _row_id,
    CASE
        WHEN _pre_rule IS NOT NULL THEN _pre_rule
        WHEN _copy > 1 THEN 'duplicate_event'
    END AS _rule,
    CASE
        WHEN _pre_rule = 'invalid_encoding' THEN _issue
        WHEN _pre_rule = 'null_key' THEN 'empty: ' || concat_ws(', ',
            CASE WHEN log_id IS NULL THEN 'log_id' END, CASE WHEN event_type IS NULL THEN 'event_type' END)
        WHEN _pre_rule = 'unknown_event_type' THEN 'event_type=' || event_type
        WHEN _pre_rule = 'malformed_timestamp' THEN 'event_at=' || coalesce(event_at_text, 'NULL')
        WHEN _pre_rule = 'unknown_log_id' THEN 'log_id=' || log_id || ' not in staging.delivery_logs for ' || $month
        WHEN _pre_rule = 'event_before_send' THEN 'event_at=' || event_at_text || ' before sent_at=' || sent_at::VARCHAR
        WHEN _copy > 1 THEN 'exact duplicate of an earlier ' || event_type || ' event of ' || log_id
    END AS _detail
FROM ranked
