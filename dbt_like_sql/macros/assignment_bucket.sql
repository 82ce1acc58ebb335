-- The experiments' assignment bucket in [0, 1): the first 15 hex digits of md5(key) over 16^15. The same number as
-- crmagent_dagster/experiments/assignment.py computes, so SQL and Python (and a sender) agree on every recipient.
CREATE OR REPLACE TEMP MACRO assignment_bucket(k) AS ('0x' || left(md5(k), 15))::BIGINT / 1152921504606846976.0;
CREATE OR REPLACE TEMP MACRO assignment_arm(experiment_id, recipient_id, treatment_share, holdout_share, holdout_salt) AS
    CASE WHEN holdout_share > 0 AND assignment_bucket(holdout_salt || ':' || recipient_id) < holdout_share THEN 'holdout'
         WHEN assignment_bucket(experiment_id || ':' || recipient_id) < treatment_share THEN 'treatment'
         ELSE 'control' END;
