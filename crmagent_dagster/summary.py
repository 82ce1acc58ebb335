"""A month's summary as text: rows per stage, quarantine by rule, strong/weak per segment."""

from __future__ import annotations

import duckdb
import polars as pl

from crmagent_dagster.raw_schema import RAW_TABLES
from crmagent_dagster.sql import run, table_exists


def _table(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True, tbl_rows=100,
                   tbl_cols=20, tbl_width_chars=200, tbl_formatting="ASCII_FULL_CONDENSED"):
        return str(frame)


def _count(conn, table: str, month: str) -> int | None:
    if not table_exists(conn, table):
        return None
    return run(conn, f"SELECT count(*) FROM {table} WHERE month = $month", {"month": month})[0][0]


def stage_counts(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    rows = []
    for t in RAW_TABLES:
        rows.append((t, _count(conn, f"raw.{t}", month), _count(conn, f"staging.{t}", month),
                     run(conn, "SELECT count(*) FROM staging.quarantine WHERE month = $m AND source_table = $t",
                               {"m": month, "t": f"raw.{t}"})[0][0]
                     if table_exists(conn, "staging.quarantine") else None))
    return pl.DataFrame(rows, orient="row", schema=["table", "raw", "staged", "quarantined"])


def segment_counts(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    if not table_exists(conn, "core.quartile_labels"):
        return pl.DataFrame()
    return conn.sql(
        """SELECT segment, count(*) AS groups,
                  count(*) FILTER (WHERE performance_label = 'strong') AS strong,
                  count(*) FILTER (WHERE performance_label = 'weak') AS weak,
                  count(*) FILTER (WHERE performance_label = 'insufficient_samples') AS too_small,
                  round(avg(mean_score) FILTER (WHERE performance_label = 'strong'), 3) AS strong_mean,
                  round(avg(mean_score) FILTER (WHERE performance_label = 'weak'), 3) AS weak_mean
           FROM core.quartile_labels WHERE month = $month GROUP BY segment ORDER BY groups DESC""",
        params={"month": month},
    ).pl()


def agent_summary(conn: duckdb.DuckDBPyConnection, month: str) -> list[str]:
    """Per segment: weak templates rewritten, unchanged, rejected (the original stands), failed or waiting, those that
    are not marketing copy, originals flagged for personal data or a passed deadline, paths, scores before/after
    and preferences; audit error shares; backends."""
    if not table_exists(conn, "agents.template_rewrites") or not table_exists(conn, "agents.rewrite_scores"):
        return []
    p = {"month": month}
    per_segment = conn.sql(
        """SELECT w.segment, count(*) AS weak, count(*) FILTER (WHERE w.status = 'ok') AS rewritten,
                  count(*) FILTER (WHERE w.status = 'unchanged') AS unchanged,
                  count(*) FILTER (WHERE w.status = 'rejected') AS rejected,
                  count(*) FILTER (WHERE w.status IN ('failed', 'waiting')) AS failed_or_waiting,
                  count(*) FILTER (WHERE w.message_kind NOT IN ('promotional_offer', 'announcement')) AS not_marketing,
                  count(*) FILTER (WHERE list_contains(w.audit_flags, 'personal_data')) AS personal,
                  count(*) FILTER (WHERE list_contains(w.audit_flags, 'stale_offer')) AS stale,
                  count(*) FILTER (WHERE w.path = 1) AS path1, count(*) FILTER (WHERE w.path = 2) AS path2,
                  count(*) FILTER (WHERE w.path = 3) AS path3,
                  round(avg(s.original_audience), 2) AS aud_ori, round(avg(s.rewrite_audience), 2) AS aud_gen,
                  round(avg(s.original_marketing), 2) AS mkt_ori, round(avg(s.rewrite_marketing), 2) AS mkt_gen,
                  round(avg((j.verdict = 'rewrite')::INT), 3) AS gen_preferred,
                  round(avg(j.position_consistent::INT), 3) AS consistent
           FROM agents.template_rewrites w
           LEFT JOIN agents.rewrite_scores s USING (month, segment, aggregate_id)
           LEFT JOIN agents.preference_judgments j USING (month, segment, aggregate_id)
           WHERE w.month = $month GROUP BY w.segment ORDER BY weak DESC""", params=p).pl()
    if not per_segment.height:
        return []
    audits = conn.sql(
        """SELECT version, error_type, n, round(n / sum(n) OVER (PARTITION BY version), 3) AS share
           FROM (SELECT version, error_type, count(*) AS n FROM agents.template_audits WHERE month = $month
                 GROUP BY version, error_type)
           ORDER BY version, n DESC""", params=p).pl()
    backends = run(conn,
        """SELECT (SELECT string_agg(DISTINCT backend || ':' || model, ', ') FROM agents.template_rewrites WHERE month = $month),
                  (SELECT string_agg(DISTINCT backend || ':' || model, ', ') FROM agents.rewrite_scores WHERE month = $month),
                  (SELECT string_agg(DISTINCT backend || ':' || model, ', ') FROM agents.template_audits WHERE month = $month)""",
        p)[0]
    lines = ["", "Weak templates rewritten, unchanged (nothing to fix, or no sure fix: the original stands, with the "
             "reason), rejected (the original stands), failed or waiting; messages that are not marketing copy; "
             "originals flagged for personal data or a stale deadline; scores (1/3/5) and blind preference per "
             "segment:", _table(per_segment),
             f"  writer: {backends[0]}; judge: {backends[1]}; auditor: {backends[2]}"]
    if backends[0] and backends[1] and "rules" in backends[0] and "rules" in backends[1]:
        lines.append("  note: the rubric judge reads the same rules that wrote the rewrites: not independent evidence")
    lines += ["", "Audit error types (Appendix D), weak originals vs rewrites:", _table(audits)]
    return lines


def source_line(conn: duckdb.DuckDBPyConnection, month: str) -> str:
    """Where the month's raw rows came from, said plainly: a synthetic month is never mistaken for real data."""
    if not table_exists(conn, "raw.landing_manifest"):
        return "Source: unknown (loaded before the manifest existed)"
    found = run(conn, "SELECT any_value(source), count(*), sum(rows) FROM raw.landing_manifest WHERE month = $m",
                      {"m": month})[0]
    if not found or not found[1]:
        return "Source: unknown (no manifest for this month)"
    if found[0].startswith("synthetic:"):
        return f"Source: SYNTHETIC month, generated ({found[0].split(':', 1)[1]}), not your data"
    if found[0].startswith("synthetic-landing:"):
        return (f"Source: SYNTHETIC month written by `crmagent generate` to {found[0].split(':', 1)[1]} "
                f"({found[1]} file(s), {found[2]:,} rows), not your data")
    return f"Source: {found[0].split(':', 1)[1]} ({found[1]} file(s), {found[2]:,} rows; raw.landing_manifest lists them)"


def uplift_lines(conn: duckdb.DuckDBPyConnection, month: str) -> list[str]:
    """Last month's experiments measured on this month: overall and per segment and path, and the judges' rho."""
    if not table_exists(conn, "results.realized_uplift_summary"):
        return []
    summary = conn.sql(
        """SELECT dimension, value, n_experiments AS experiments, n_treatment + n_control AS deliveries,
                  round(effect, 3) AS uplift, round(ci_low, 3) AS ci_low, round(ci_high, 3) AS ci_high, label,
                  experiments_with_uplift AS up, experiments_with_drop AS down, experiments_too_small AS too_small
           FROM results.realized_uplift_summary WHERE month = $month AND dimension IN ('overall', 'segment', 'path')
           ORDER BY CASE dimension WHEN 'overall' THEN 0 WHEN 'segment' THEN 1 ELSE 2 END, value""",
        params={"month": month}).pl()
    if not summary.height:
        return ["", f"Realized uplift: no experiment of the month before {month} was measured."]
    deploy_month = run(conn, "SELECT any_value(deploy_month) FROM results.realized_uplift_summary "
                             "WHERE month = $month", {"month": month})[0][0]
    lines = ["", f"Realized uplift of the rewrites deployed in {deploy_month}, measured on {month}'s deliveries "
                 "(treatment - control mean engagement score, 95% CI):", _table(summary)]
    if table_exists(conn, "results.judge_vs_realized"):
        judged = conn.sql("SELECT predictor, n, round(spearman_rho, 3) AS rho, round(ci_low, 3) AS ci_low, "
                          "round(ci_high, 3) AS ci_high FROM results.judge_vs_realized WHERE month = $month "
                          "AND is_overall ORDER BY predictor", params={"month": month}).pl()
        if judged.height:
            lines += ["Was the judge right? Spearman rho of each prediction vs realized uplift (all segments):",
                      _table(judged)]
    return lines


def deployment_lines(conn: duckdb.DuckDBPyConnection, month: str) -> list[str]:
    """What this month deploys: experiments by who approved them, and what still waits for a reviewer."""
    if not table_exists(conn, "agents.deployments"):
        return []
    by = conn.sql("SELECT CASE WHEN approved_by LIKE 'policy:%' THEN approved_by ELSE 'reviewer' END AS approved_by, "
                  "deployed_as, count(*) AS experiments FROM agents.deployments WHERE month = $month GROUP BY ALL "
                  "ORDER BY ALL", params={"month": month}).pl()
    waiting = run(conn,
        """SELECT count(*) FROM agents.template_rewrites w
           WHERE w.month = $month AND w.status = 'ok' AND NOT EXISTS (
               SELECT 1 FROM agents.deployments d WHERE d.month = w.month AND d.segment = w.segment
                 AND d.aggregate_id = w.aggregate_id)""", {"month": month})[0][0]
    return ["", f"Deployed from {month} (experiments for next month's sends):",
            _table(by) if by.height else "  none",
            f"  {waiting} accepted rewrite(s) not deployed (awaiting review, or rejected by a reviewer): "
            "`crmagent review`, then `crmagent deploy --month " + month + "`"]


def month_summary(conn: duckdb.DuckDBPyConnection, month: str) -> str:
    lines = [f"== {month} ==", source_line(conn, month), *uplift_lines(conn, month), "", "Rows per stage:",
             _table(stage_counts(conn, month))]
    for t in ("core.log_engagement", "core.engagement_aggregates", "core.quartile_labels"):
        lines.append(f"  {t}: {_count(conn, t, month)}")
    if table_exists(conn, "staging.quarantine"):
        lines += ["", "Quarantine by rule:", _table(conn.sql(
            "SELECT source_table, rule, count(*) AS rows FROM staging.quarantine WHERE month = $month "
            "GROUP BY ALL ORDER BY source_table, rows DESC", params={"month": month}).pl())]
    seg = segment_counts(conn, month)
    if seg.height:
        lines += ["", "Strong / weak per segment:", _table(seg),
                  f"  total: {seg['strong'].sum()} strong, {seg['weak'].sum()} weak of {seg['groups'].sum()} groups"]
    lines += agent_summary(conn, month)
    lines += deployment_lines(conn, month)
    return "\n".join(lines)


def llm_failures(conn: duckdb.DuckDBPyConnection, month: str) -> tuple[int, int, str | None]:
    """(rewrites whose model calls failed, rewrites that asked a model, the most common error) for a month: what a
    refresh against a broken endpoint must not pass off as a success."""
    if not table_exists(conn, "agents.template_rewrites"):
        return 0, 0, None
    failed, asked, error = run(conn, "SELECT count(*) FILTER (WHERE status = 'failed'), count(*), "
                                     "mode(error) FILTER (WHERE status = 'failed') FROM agents.template_rewrites "
                                     "WHERE month = $m AND attempted_backend IS DISTINCT FROM 'rules'", {"m": month})[0]
    return failed, asked, error
