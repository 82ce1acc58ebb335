-- results.figure9: CRM plans per product category (Fig. 9); plans without a bound product count as 'None'.
SELECT $month AS month, coalesce(pr.category_l1, 'None') AS category, count(*) AS plans
FROM staging.plans p
LEFT JOIN staging.products pr ON pr.month = p.month AND pr.product_id = p.product_id
WHERE p.month = $month
GROUP BY category
