-- core.log_engagement (a view, not a table): the Appendix A engagement score of every staged delivery.
-- Nothing about a delivery is stored twice: the view joins staging.delivery_logs with the 7-day flags of its
-- staged events, and a filter on month reaches both scans. Weights come from core.event_weights (Appendix A).
-- Window: an event counts when sent_at <= event_at <= sent_at + 7 days (the boundary itself counts).
-- Each behaviour counts at most once per delivery (a second product-card click is the same behaviour),
-- so a score lies in [-5, 10]: read 1, store/voucher click 3, product card 4, CRM button 2, unsubscribe -5.
-- Exact duplicate events never reach this model (staging quarantines them); events after the window are
-- counted in n_late_events only.
WITH flags AS (
    SELECT
        e.month,
        e.log_id,
        bool_or(e.event_type = 'read' AND NOT late) AS did_read,
        bool_or(e.event_type = 'store_voucher_click' AND NOT late) AS did_store_click,
        bool_or(e.event_type = 'product_card_click' AND NOT late) AS did_product_click,
        bool_or(e.event_type = 'crm_button_click' AND NOT late) AS did_button_click,
        bool_or(e.event_type = 'unsubscribe' AND NOT late) AS did_unsubscribe,
        count(*) FILTER (WHERE NOT late) AS n_window_events,
        count(*) FILTER (WHERE late) AS n_late_events
    FROM (
        SELECT ev.month, ev.log_id, ev.event_type, ev.event_at > l.sent_at + INTERVAL 7 DAY AS late
        FROM staging.engagement_events ev
        JOIN staging.delivery_logs l ON l.month = ev.month AND l.log_id = ev.log_id
    ) e
    GROUP BY e.month, e.log_id
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
    l.month, l.log_id, l.sent_at, l.segment, l.shop_id, l.plan_id, l.template_id, l.product_id, l.voucher_id,
    coalesce(f.did_read, false) AS did_read,
    coalesce(f.did_store_click, false) AS did_store_click,
    coalesce(f.did_product_click, false) AS did_product_click,
    coalesce(f.did_button_click, false) AS did_button_click,
    coalesce(f.did_unsubscribe, false) AS did_unsubscribe,
    coalesce(f.n_window_events, 0) AS n_window_events,
    coalesce(f.n_late_events, 0) AS n_late_events,
    (  w.w_read * coalesce(f.did_read, false)::INTEGER
     + w.w_store * coalesce(f.did_store_click, false)::INTEGER
     + w.w_product * coalesce(f.did_product_click, false)::INTEGER
     + w.w_button * coalesce(f.did_button_click, false)::INTEGER
     + w.w_unsubscribe * coalesce(f.did_unsubscribe, false)::INTEGER)::INTEGER AS engagement_score
FROM staging.delivery_logs l
LEFT JOIN flags f ON f.month = l.month AND f.log_id = l.log_id
CROSS JOIN weights w
