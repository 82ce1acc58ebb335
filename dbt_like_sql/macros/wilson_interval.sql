-- Wilson score 95% interval (z = 1.96) of a rate of k successes in n, in percent: the preference rates of Tables 1
-- and 3. Temporary macros, defined on each connection before a model runs (see crmagent_dagster/sql.py).
CREATE OR REPLACE TEMP MACRO wilson_low(k, n) AS
    100 * ((k / n + 1.9208 / n) - 1.96 * sqrt(k / n * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n);
CREATE OR REPLACE TEMP MACRO wilson_high(k, n) AS
    100 * ((k / n + 1.9208 / n) + 1.96 * sqrt(k / n * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n);
