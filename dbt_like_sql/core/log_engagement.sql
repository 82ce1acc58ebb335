-- core.log_engagement (a view, not a table): the Appendix A engagement score of every staged delivery.
-- Nothing about a delivery is stored twice: the view joins staging.delivery_logs with its staged events, summed
-- up per delivery, and a filter on month reaches both scans. Weights come from core.event_weights (Appendix A).
-- Window: an event counts when sent_at <= event_at <= sent_at + 7 days (the boundary itself counts).
-- Each behaviour counts at most once per delivery (a second product-card click is the same behaviour),
-- so a score lies in [-5, 10]: read 1, store/voucher click 3, product card 4, CRM button 2, unsubscribe -5.
-- Exact duplicate events never reach this model (staging quarantines them, and events before the send too);
-- events after the window are counted in n_late_events only.
-- Events are summed per delivery before they meet the delivery, so the month's deliveries are joined once: a
-- behaviour happened in the window when its first event did, and the event times are kept as a list only for
-- the two counts (a reader that does not select them never builds it).
WITH events AS (
    SELECT
        month,
        log_id,
        min(event_at) FILTER (WHERE event_type = 'read') AS first_read,
        min(event_at) FILTER (WHERE event_type = 'store_voucher_click') AS first_store_click,
        min(event_at) FILTER (WHERE event_type = 'product_card_click') AS first_product_click,
        min(event_at) FILTER (WHERE event_type = 'crm_button_click') AS first_button_click,
        min(event_at) FILTER (WHERE event_type = 'unsubscribe') AS first_unsubscribe,
        list(event_at) AS event_times
    FROM staging.engagement_events
    GROUP BY month, log_id
),
flags AS (
    SELECT
        l.month, l.log_id, l.sent_at, l.segment, l.shop_id, l.plan_id, l.template_id, l.product_id, l.voucher_id,
        coalesce(e.first_read <= l.sent_at + INTERVAL 7 DAY, false) AS did_read,
        coalesce(e.first_store_click <= l.sent_at + INTERVAL 7 DAY, false) AS did_store_click,
        coalesce(e.first_product_click <= l.sent_at + INTERVAL 7 DAY, false) AS did_product_click,
        coalesce(e.first_button_click <= l.sent_at + INTERVAL 7 DAY, false) AS did_button_click,
        coalesce(e.first_unsubscribe <= l.sent_at + INTERVAL 7 DAY, false) AS did_unsubscribe,
        CASE WHEN e.log_id IS NULL THEN 0
             ELSE array_length(list_filter(e.event_times, lambda t: t <= l.sent_at + INTERVAL 7 DAY))::BIGINT END
            AS n_window_events,
        CASE WHEN e.log_id IS NULL THEN 0
             ELSE array_length(list_filter(e.event_times, lambda t: t > l.sent_at + INTERVAL 7 DAY))::BIGINT END
            AS n_late_events
    FROM staging.delivery_logs l
    LEFT JOIN events e ON e.month = l.month AND e.log_id = l.log_id
),
weights AS (
    SELECT
        max(weight) FILTER (WHERE event_type = 'read') AS w_read,
        max(weight) FILTER (WHERE event_type = 'store_voucher_click') AS w_store,
        max(weight) FILTER (WHERE event_type = 'product_card_click') AS w_product,
        max(weight) FILTER (WHERE event_type = 'crm_button_click') AS w_button,
        max(weight) FILTER (WHERE event_type = 'unsubscribe') AS w_unsubscribe
    FROM core.event_weights
)
SELECT
    f.*,
    (  w.w_read * f.did_read::INTEGER
     + w.w_store * f.did_store_click::INTEGER
     + w.w_product * f.did_product_click::INTEGER
     + w.w_button * f.did_button_click::INTEGER
     + w.w_unsubscribe * f.did_unsubscribe::INTEGER)::INTEGER AS engagement_score
FROM flags f
CROSS JOIN weights w
