"""A month's realized uplift rolled up (overall, per segment, path, error type, writer), and whether the judges
were right: rank correlation of what each predicted last month with what each experiment realized.

Roll-ups combine the experiments' own differences (random effects, stats.combine) rather than pooling deliveries,
so one large experiment does not stand for a whole segment and the interval widens when experiments disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crmagent_dagster.experiments.stats import UpliftSettings, combine, rank_correlation

DIMENSIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "overall": lambda r: "all experiments",
    "segment": lambda r: r["segment"],
    "path": lambda r: f"path {r['path']}" if r["path"] is not None else "unknown",
    "error_type": lambda r: r["original_error_type"] or "unknown",
    "writer": lambda r: r["writer"],
}
PREFERENCE = {"rewrite": 1.0, "tie": 0.0, "original": -1.0}
PREDICTORS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "judge_preference": lambda r: PREFERENCE.get(r["judge_verdict"]) if r["judge_verdict"] else None,
    "judge_score_delta": lambda r: r["judge_score_delta"],
    "engagement_predictor": lambda r: r["predicted_delta"],
}


def _pooled(rows: Sequence[dict[str, Any]], rate: str, arm: str) -> float | None:
    n = sum(r[f"n_{arm}"] for r in rows if r[f"{rate}_{arm}"] is not None)
    return sum(r[f"{rate}_{arm}"] * r[f"n_{arm}"] for r in rows if r[f"{rate}_{arm}"] is not None) / n if n else None


def summary_rows(month: str, rows: Sequence[dict[str, Any]], settings: UpliftSettings = UpliftSettings()
                 ) -> list[dict[str, Any]]:
    out = []
    for dimension, key in DIMENSIONS.items():
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(key(r), []).append(r)
        for value, group in sorted(groups.items()):
            usable = [r for r in group if r["difference"] is not None and r["se"]]
            roll = combine([r["difference"] for r in usable], [r["se"] for r in usable], settings)
            out.append({
                "month": month, "deploy_month": group[0]["deploy_month"], "dimension": dimension, "value": value,
                "n_experiments": len(group), "n_measured": roll.n_experiments,
                "n_treatment": sum(r["n_treatment"] for r in group), "n_control": sum(r["n_control"] for r in group),
                "effect": roll.effect, "se": roll.se, "ci_low": roll.ci_low, "ci_high": roll.ci_high,
                "fixed_effect": roll.fixed_effect, "i2": roll.i2, "method": roll.method, "label": roll.label,
                "experiments_with_uplift": sum(r["label"] == "uplift" for r in group),
                "experiments_with_drop": sum(r["label"] == "drop" for r in group),
                "experiments_too_small": sum(r["label"] in ("too_small", "not_sent") for r in group),
                **{f"{rate}_{arm}": _pooled(group, rate, arm) for rate in ("read_rate", "click_rate", "unsubscribe_rate")
                   for arm in ("treatment", "control")}})
    return out


def judge_rows(month: str, rows: Sequence[dict[str, Any]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per segment and overall, per predictor: Spearman's rho of prediction vs realized difference. Only rewrites
    deployed as written (a judge never saw a reviewer's edit) with a measured difference."""
    measured = [r for r in rows if r["difference"] is not None and r["deployed_as"] == "rewrite"]
    if not measured:
        return []
    deploy_month = measured[0]["deploy_month"]
    scopes = [("Overall", measured)] + [(s, [r for r in measured if r["segment"] == s])
                                        for s in sorted({r["segment"] for r in measured})]
    out = []
    for scope, group in scopes:
        for name, predict in PREDICTORS.items():
            pairs = [(predict(r), r["difference"]) for r in group if predict(r) is not None]
            corr = rank_correlation([p for p, _ in pairs], [d for _, d in pairs], alpha)
            out.append({"month": month, "deploy_month": deploy_month, "segment": scope, "is_overall": scope == "Overall",
                        "predictor": name, "n": corr.n, "spearman_rho": corr.rho, "ci_low": corr.ci_low,
                        "ci_high": corr.ci_high, "p_value": corr.p_value})
    return out
