-- marts.error_type_counts: Appendix D error types per month x segment, for weak originals and rewrites.
SELECT month, segment, version, error_type, count(*) AS templates, any_value(backend) AS auditor_backend
FROM agents.template_audits
WHERE status = 'ok'
GROUP BY month, segment, version, error_type
