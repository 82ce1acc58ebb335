"""Charts of the results tables, and the monthly report file that collects them.

The same PNGs go into asset metadata (the Dagster UI) and, beside the DuckDB file, into
`report/<month>.md` with `report/<month>/<table>.png`, which opens in any markdown viewer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from crmagent_dagster.plots import bars
from crmagent_dagster.sql import fetch_dicts, preview_markdown

Rows = list[dict[str, Any]]


def _col(rows: Rows, name: str, scale: float = 1.0) -> list:
    return [None if r[name] is None else r[name] * scale for r in rows]


def _segments(rows: Rows) -> list[str]:
    return [r["segment"] for r in rows]


def _scores(labels: list[str], rows: Rows, title: str) -> bytes:
    return bars(labels, {"audience ori": _col(rows, "audience_ori"), "audience gen": _col(rows, "audience_gen"),
                         "market ori": _col(rows, "market_ori"), "market gen": _col(rows, "market_gen")},
                title, "mean score (1-5)")


def _table1(month: str, rows: Rows) -> bytes:
    return _scores(_segments(rows), rows, f"Table 1 ({month}): EvaluateAgent scores before and after")


def _preference(month: str, rows: Rows) -> bytes:
    return bars(_segments(rows), {"rewrite preferred %": _col(rows, "gen_preferred_pct")},
                f"Table 1 ({month}): blind preference, both orders (95% CI)", "% of pairs",
                errors={"rewrite preferred %": (_col(rows, "gen_preferred_ci_low"), _col(rows, "gen_preferred_ci_high"))})


def _table2(month: str, rows: Rows) -> bytes:
    return bars(_segments(rows), {"BERTScore-F1 x100": _col(rows, "bertscore_f1", 100), "chrF": _col(rows, "chrf")},
                f"Table 2 ({month}): faithfulness to the original", "score (0-100)")


def _table3(month: str, rows: Rows) -> bytes:
    return _scores([r["configuration"] for r in rows], rows, f"Table 3 ({month}): agent configurations on one sample")


def _validity(month: str, rows: Rows) -> bytes:
    return bars(_segments(rows), {"Spearman rho": _col(rows, "spearman_rho")},
                f"Judge validity ({month}): judge score vs observed engagement (95% CI)", "rho",
                errors={"Spearman rho": (_col(rows, "ci_low"), _col(rows, "ci_high"))})


def _figure16(month: str, rows: Rows) -> bytes:
    types = sorted({r["error_type"] for r in rows}, key=lambda t: -sum(r["count"] for r in rows if r["error_type"] == t))
    share = {(r["version"], r["error_type"]): r["share"] * 100 for r in rows}
    return bars(types, {v: [share.get((v, t), 0.0) for t in types] for v in ("original", "rewrite")},
                f"Figure 16 ({month}): Appendix D error types", "% of audited templates")


def _figure7(month: str, rows: Rows) -> bytes:
    return bars(_segments(rows), {"plans": _col(rows, "plans"), "template groups": _col(rows, "groups")},
                f"Figure 7 ({month}): volume per audience segment", "count")


def _figure8(month: str, rows: Rows) -> bytes:
    return bars([f"{r['score_bin']:+.2f}" for r in rows], {"groups": _col(rows, "groups")},
                f"Figure 8 ({month}): mean engagement score of template groups (bins of 0.25)", "groups")


def _figure9(month: str, rows: Rows) -> bytes:
    return bars([r["category"] for r in rows], {"plans": _col(rows, "plans")},
                f"Figure 9 ({month}): plans per product category", "plans")


def _uplift(dimension: str) -> Callable[[str, Rows], bytes | None]:
    def chart(month: str, rows: Rows) -> bytes | None:
        rows = [r for r in rows if r["dimension"] == dimension and r["effect"] is not None]
        if not rows:
            return None
        return bars([r["value"] for r in rows], {"realized uplift": _col(rows, "effect")},
                    f"Realized uplift ({month}, experiments of {rows[0]['deploy_month']}) per {dimension} (95% CI)",
                    "treatment - control, mean engagement score",
                    errors={"realized uplift": (_col(rows, "ci_low"), _col(rows, "ci_high"))})
    return chart


def _judge_vs_realized(month: str, rows: Rows) -> bytes | None:
    rows = [r for r in rows if r["spearman_rho"] is not None]
    if not rows:
        return None
    labels = [f"{r['segment']}: {r['predictor']}" for r in rows]
    return bars(labels, {"Spearman rho": _col(rows, "spearman_rho")},
                f"Was the judge right? ({month}): prediction vs realized uplift (95% CI)", "rho",
                errors={"Spearman rho": (_col(rows, "ci_low"), _col(rows, "ci_high"))})


CHARTS: dict[str, list[Callable[[str, Rows], bytes | None]]] = {
    "realized_uplift_summary": [_uplift("segment"), _uplift("path")], "judge_vs_realized": [_judge_vs_realized],
    "judge_validity": [_validity], "table1": [_table1, _preference], "table2": [_table2], "table3": [_table3],
    "figure16": [_figure16], "figure7": [_figure7], "figure8": [_figure8], "figure9": [_figure9],
}


def charts(name: str, month: str, rows: Rows) -> list[bytes]:
    """The PNG charts of one results table (none for an empty table)."""
    pngs = [chart(month, rows) for chart in CHARTS.get(name, [])] if rows else []
    return [png for png in pngs if png is not None]


def section(conn: duckdb.DuckDBPyConnection, table: str, month: str, order: str) -> tuple[Rows, str, list[bytes]]:
    """`results.<table>`'s rows for the month (`order` is code's, never input), as markdown and as charts."""
    sql = f"SELECT * EXCLUDE (month) FROM results.{table} WHERE month = $month ORDER BY {order}"
    rows = fetch_dicts(conn, sql, {"month": month})
    return rows, preview_markdown(conn, sql, {"month": month}), charts(table, month, rows)


def report_dir(database: str) -> Path:
    return Path(database).resolve().parent / "report"


def write_report(folder: Path, month: str, sections: list[tuple[str, str, str, list[bytes]]]) -> Path:
    """Write `<folder>/<month>.md` and its PNGs; sections are (table, description, markdown table, charts).

    Files are written under temporary names and renamed, so a reader never opens half a report.
    """
    images = folder / month
    images.mkdir(parents=True, exist_ok=True)
    lines = [f"# CRMAgent results for {month}", "",
             "Every table is also in DuckDB as `results.<table>`; the same charts are in the Dagster UI's asset metadata.",
             ""]
    for table, description, markdown, pngs in sections:
        lines += [f"## {description.split(':')[0]} (`results.{table}`)", "", description, "", markdown, ""]
        for i, png in enumerate(pngs):
            name = f"{table}.png" if i == 0 else f"{table}_{i + 1}.png"
            _atomic_write(images / name, png)
            lines += [f"![{table}]({month}/{name})", ""]
    path = folder / f"{month}.md"
    _atomic_write(path, "\n".join(lines).encode())
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
