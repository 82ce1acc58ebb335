-- marts.rewrites: one row per weak template's rewrite (ok, unchanged, rejected, waiting or failed), with what the
-- message is (its kind), what was delivered and every score, check and lineage field a dashboard needs.
SELECT
    w.month, w.segment, w.aggregate_id, w.template_id, w.shop_id, l.product_id, l.voucher_id,
    l.n_logs, l.mean_score AS observed_mean_score, w.path, w.exemplar_template_ids, w.language,
    w.channel, w.message_kind, w.kind_evidence, w.original_title, w.original_body, w.new_title, w.new_body, w.status,
    w.error,
    -- what goes out: the rewrite when it passed every check, else the original
    CASE WHEN w.status = 'ok' THEN w.new_title ELSE w.original_title END AS delivered_title,
    CASE WHEN w.status = 'ok' THEN w.new_body ELSE w.original_body END AS delivered_body,
    CASE WHEN w.status = 'ok' THEN 'rewrite' ELSE 'original' END AS delivered_from,
    w.audit_flags, w.changes, w.unable, w.needs,
    w.guard_passed, w.first_violations, w.replaced_by_rules, w.fallback_reason,
    s.original_audience, s.rewrite_audience, s.original_marketing, s.rewrite_marketing,
    j.verdict AS preference_verdict, j.position_consistent,
    f.bertscore_f1, f.chrf, f.bertscore_model,
    pe.predicted_original AS predicted_engagement_original, pe.predicted_rewrite AS predicted_engagement_rewrite,
    ao.error_type AS original_error_type, ar.error_type AS rewrite_error_type,
    w.backend AS writer_backend, w.model AS writer_model, w.prompt_version AS writer_prompt_version,
    s.backend AS judge_backend, s.model AS judge_model, ao.backend AS auditor_backend
FROM agents.template_rewrites w
LEFT JOIN core.labelled_templates l USING (month, segment, aggregate_id)
LEFT JOIN agents.rewrite_scores s USING (month, segment, aggregate_id)
LEFT JOIN agents.preference_judgments j USING (month, segment, aggregate_id)
LEFT JOIN agents.faithfulness_scores f USING (month, segment, aggregate_id)
LEFT JOIN agents.predicted_engagement pe USING (month, segment, aggregate_id)
LEFT JOIN agents.template_audits ao ON ao.month = w.month AND ao.segment = w.segment
    AND ao.aggregate_id = w.aggregate_id AND ao.version = 'original'
LEFT JOIN agents.template_audits ar ON ar.month = w.month AND ar.segment = w.segment
    AND ar.aggregate_id = w.aggregate_id AND ar.version = 'rewrite'
