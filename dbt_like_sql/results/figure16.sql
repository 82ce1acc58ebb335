-- results.figure16: Appendix C / Fig. 16, the distribution of Appendix D error types among the month's weak
-- originals and among their rewrites, with the backend that audited them.
WITH counted AS (
    SELECT version, error_type, count(*) AS count, string_agg(DISTINCT backend || ':' || model, ', ') AS auditor
    FROM agents.template_audits
    WHERE month = $month AND status = 'ok'
    GROUP BY version, error_type
)
SELECT $month AS month, version, error_type, count,
       round(count / sum(count) OVER (PARTITION BY version), 4) AS share, auditor
FROM counted
