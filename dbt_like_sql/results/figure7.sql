-- results.figure7: CRM plan volume per audience segment (Fig. 7), with deliveries and aggregate groups.
SELECT $month AS month, p.segment, count(DISTINCT p.plan_id) AS plans,
       (SELECT count(*) FROM staging.delivery_logs d WHERE d.month = $month AND d.segment = p.segment) AS deliveries,
       (SELECT count(*) FROM core.engagement_aggregates a WHERE a.month = $month AND a.segment = p.segment) AS groups
FROM staging.plans p
WHERE p.month = $month
GROUP BY p.segment
