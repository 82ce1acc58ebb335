"""Realized uplift of a rewrite: per-experiment effects, roll-ups, and how well predictions rank them.

The unit is one delivery and its engagement score, an integer in [-5, 10]. Most deliveries score 0, so the
score is zero-inflated and right-skewed, and arms are often small (20-200 deliveries).

Per experiment (`experiment_effect`)
    The effect is the difference of mean scores, treatment minus control.
    * Both arms >= `welch_min_logs`: Welch's t-test (unequal variances, because a rewrite changes the spread
      as well as the mean).
    * Otherwise (each arm >= 2): a seeded BCa bootstrap of the difference of means. If BCa fails, the
      percentile interval is used and `method` says 'bootstrap-percentile'. A bootstrap gives an interval but
      no p-value, so in this regime the p-value comes from a seeded permutation test (H0: the arms are
      exchangeable). The label comes from the interval, not from the p-value.
    * Both arms constant (no spread in either): the difference is exact for these deliveries, but there is no
      sampling error to estimate. So se = 0, the interval is [d, d], p_value is None and method is
      'constant'. This mostly happens for tiny all-zero arms, which the size rule labels 'too_small' anyway.
    Why `welch_min_logs` defaults to 30, the same as `min_arm_logs`, and not 50: we simulated engagement
    scores with arms of 30-49 deliveries and read rates of 10-30%. Nominal 95% BCa intervals covered the true
    difference only 88-91% of the time, and 82% at a 10% read rate. Welch covered 94-97% on the same kind
    of draws. With a handful of reads per arm, the bootstrap distribution is lumpy and too narrow, and BCa's
    corrections make this worse than the plain percentile interval (tests/test_uplift_stats.py measures
    it). So every experiment that gets a label uses Welch. The bootstrap only gives an interval for arms
    that are 'too_small' anyway.
    The minimum detectable effect (MDE) is the smallest |difference| that these arm sizes would detect with
    probability `power` at level `alpha` (two-sided), using the pooled sd of the two arms. It is
    statsmodels' solved Cohen's d times that sd. It says what size of effect a "no clear effect" result
    rules out.
    Labels: 'not_sent' (both arms empty), 'too_small' (smallest arm < `min_arm_logs`, or no interval),
    then by the interval: 'uplift' (above 0), 'drop' (below 0), 'no_clear_effect'.

Roll-up (`combine`)
    Rewrites, audiences and shops differ, so experiments do not share one true effect. A random-effects
    (DerSimonian-Laird) mean estimates the average effect, and its interval is widened by the
    between-experiment variance. The fixed-effect mean (inverse-variance, so traffic-weighted) is reported
    for comparison. statsmodels 0.15 does not truncate the DL tau^2 at 0. When it is negative we use
    tau^2 = 0, where the random-effects estimate equals the fixed-effect one, and I^2 = 0.

Ranking (`rank_correlation`)
    Spearman's rho between predicted and realized uplift. Its interval is a Fisher-z interval with the
    Spearman variance 1.06 / (n - 3) (Fieller, Hartley & Pearson 1957), computed only for n >= 10.

Inputs come from SQL and must be clean: NaN or infinite values raise ValueError instead of being dropped.
Everything is deterministic: the same inputs and settings give the same outputs.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.power import tt_ind_solve_power

LABELS = ("not_sent", "too_small", "uplift", "drop", "no_clear_effect")
MIN_RANK_CI_N = 10  # below this the Fisher-z approximation for Spearman is poor
_BOOTSTRAP_BATCH = 256  # caps memory for arms of a few thousand (resamples x n floats per batch)


@dataclass(frozen=True)
class UpliftSettings:
    alpha: float = 0.05  # 95% intervals
    power: float = 0.8  # for the minimum detectable effect
    min_arm_logs: int = 30  # an arm smaller than this: label 'too_small' (still report what can be computed)
    welch_min_logs: int = 30  # both arms at least this: Welch; else (each arm >= 2) a seeded BCa bootstrap.
    # 30 rather than 50: BCa under-covers on these scores (module docstring)
    bootstrap_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        if not self.alpha < self.power < 1.0:
            raise ValueError(f"power must be in (alpha, 1), got {self.power!r}")
        _check_int("min_arm_logs", self.min_arm_logs, minimum=2)  # a variance needs two deliveries
        _check_int("welch_min_logs", self.welch_min_logs, minimum=2)
        _check_int("bootstrap_resamples", self.bootstrap_resamples, minimum=100)
        _check_int("seed", self.seed, minimum=0)


def _check_int(name: str, value: object, minimum: int) -> None:
    # bool is an int subclass; True as a sample size is a bug upstream
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Effect:
    n_treatment: int
    n_control: int
    mean_treatment: float | None
    mean_control: float | None
    difference: float | None  # mean_treatment - mean_control
    se: float | None  # standard error of the difference (Welch SE; bootstrap SE for bootstrap)
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str | None  # 'welch' | 'bootstrap' | 'bootstrap-percentile' | 'constant' | None
    mde: float | None  # minimum detectable |difference| at alpha/power for these arm sizes and the pooled sd
    label: str  # one of LABELS


@dataclass(frozen=True)
class _Interval:
    se: float
    ci_low: float
    ci_high: float
    p_value: float | None
    method: str


def experiment_effect(
    treatment: np.ndarray, control: np.ndarray, settings: UpliftSettings = UpliftSettings()
) -> Effect:
    """Difference of mean engagement score, treatment minus control, with interval, MDE and label."""
    t = _clean_arm("treatment", treatment)
    c = _clean_arm("control", control)
    n_t, n_c = t.size, c.size
    mean_t = float(t.mean()) if n_t else None
    mean_c = float(c.mean()) if n_c else None
    diff = mean_t - mean_c if mean_t is not None and mean_c is not None else None
    interval = _interval(t, c, settings) if min(n_t, n_c) >= 2 else None
    mde = _mde(t, c, settings) if min(n_t, n_c) >= 2 else None
    return Effect(
        n_treatment=n_t,
        n_control=n_c,
        mean_treatment=mean_t,
        mean_control=mean_c,
        difference=diff,
        se=interval.se if interval else None,
        ci_low=interval.ci_low if interval else None,
        ci_high=interval.ci_high if interval else None,
        p_value=interval.p_value if interval else None,
        method=interval.method if interval else None,
        mde=mde,
        label=_effect_label(n_t, n_c, interval, settings),
    )


def _clean_arm(name: str, values: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite score(s); clean the SQL instead of dropping them")
    return arr


def _interval(t: np.ndarray, c: np.ndarray, settings: UpliftSettings) -> _Interval:
    if np.ptp(t) == 0 and np.ptp(c) == 0:
        d = float(t[0] - c[0])
        return _Interval(se=0.0, ci_low=d, ci_high=d, p_value=None, method="constant")
    if min(t.size, c.size) >= settings.welch_min_logs:
        return _welch(t, c, settings)
    return _bootstrap(t, c, settings)


def _welch(t: np.ndarray, c: np.ndarray, settings: UpliftSettings) -> _Interval:
    res = stats.ttest_ind(t, c, equal_var=False)
    ci = res.confidence_interval(confidence_level=1.0 - settings.alpha)
    se = math.sqrt(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)  # the Welch SE scipy divides by
    return _Interval(se=se, ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(res.pvalue), method="welch")


def _mean_difference(t: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(t, axis=axis) - np.mean(c, axis=axis)


def _bootstrap(t: np.ndarray, c: np.ndarray, settings: UpliftSettings) -> _Interval:
    res, method = None, "bootstrap"
    try:
        with warnings.catch_warnings():
            # a degenerate BCa shows up as a NaN bound with a warning; the check below falls back
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            res = _run_bootstrap(t, c, settings, "BCa")
    except (ValueError, FloatingPointError, ZeroDivisionError):
        res = None
    if res is None or not np.all(np.isfinite([res.confidence_interval.low, res.confidence_interval.high])):
        res, method = _run_bootstrap(t, c, settings, "percentile"), "bootstrap-percentile"
    return _Interval(
        se=float(res.standard_error),
        ci_low=float(res.confidence_interval.low),
        ci_high=float(res.confidence_interval.high),
        p_value=_permutation_p_value(t, c, settings),
        method=method,
    )


def _run_bootstrap(t: np.ndarray, c: np.ndarray, settings: UpliftSettings, method: str) -> Any:
    # Any: scipy does not export BootstrapResult
    # a fresh generator per call: BCa and its percentile fallback see the same resamples for the same inputs
    return stats.bootstrap(
        (t, c),
        _mean_difference,
        n_resamples=settings.bootstrap_resamples,
        batch=_BOOTSTRAP_BATCH,
        vectorized=True,
        paired=False,
        confidence_level=1.0 - settings.alpha,
        method=method,
        rng=np.random.default_rng(settings.seed),
    )


def _permutation_p_value(t: np.ndarray, c: np.ndarray, settings: UpliftSettings) -> float:
    res = stats.permutation_test(
        (t, c),
        _mean_difference,
        permutation_type="independent",
        vectorized=True,
        n_resamples=settings.bootstrap_resamples,
        batch=_BOOTSTRAP_BATCH,
        alternative="two-sided",
        rng=np.random.default_rng(settings.seed),
    )
    return float(res.pvalue)


def _mde(t: np.ndarray, c: np.ndarray, settings: UpliftSettings) -> float | None:
    """Smallest |difference| detectable with `power` at `alpha` for these arm sizes and the pooled sd."""
    dof = t.size + c.size - 2
    pooled_sd = math.sqrt(((t.size - 1) * t.var(ddof=1) + (c.size - 1) * c.var(ddof=1)) / dof)
    if pooled_sd == 0.0:
        return None  # no spread to scale a standardized effect by
    d = _standardized_mde(t.size, c.size, settings.alpha, settings.power)
    return d * pooled_sd if d is not None else None


@functools.lru_cache(maxsize=4096)
def _standardized_mde(n_t: int, n_c: int, alpha: float, power: float) -> float | None:
    # Cohen's d depends only on sizes, alpha and power; the root finding costs ~10 ms, so reuse it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # root-finding chatter at tiny n; non-finite results are dropped
            d = tt_ind_solve_power(
                effect_size=None, nobs1=n_t, ratio=n_c / n_t, alpha=alpha, power=power, alternative="two-sided"
            )
    except (ValueError, RuntimeError, ArithmeticError):
        return None
    d = float(np.asarray(d).squeeze())
    return d if math.isfinite(d) and d > 0 else None


def _effect_label(n_t: int, n_c: int, interval: _Interval | None, settings: UpliftSettings) -> str:
    if n_t == 0 and n_c == 0:
        return "not_sent"
    if min(n_t, n_c) < settings.min_arm_logs or interval is None:
        return "too_small"
    return _label_from_ci(interval.ci_low, interval.ci_high)


def _label_from_ci(low: float, high: float) -> str:
    if low > 0:
        return "uplift"
    if high < 0:
        return "drop"
    return "no_clear_effect"


def srm_p_value(n_treatment: int, n_control: int, treatment_share: float) -> float | None:
    """Sample ratio mismatch: chi-square goodness of fit of the arm counts to the planned split.

    A tiny p-value means assignment or logging is broken and the experiment's effect should not be trusted.
    None when there are no deliveries.
    """
    _check_int("n_treatment", n_treatment, minimum=0)
    _check_int("n_control", n_control, minimum=0)
    if not 0.0 < treatment_share < 1.0:
        raise ValueError(f"treatment_share must be in (0, 1), got {treatment_share!r}")
    total = n_treatment + n_control
    if total == 0:
        return None
    expected = [total * treatment_share, total * (1.0 - treatment_share)]
    return float(stats.chisquare([n_treatment, n_control], f_exp=expected).pvalue)


@dataclass(frozen=True)
class Rollup:
    n_experiments: int  # experiments with a usable difference and se > 0
    effect: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    fixed_effect: float | None  # inverse-variance (traffic-weighted) estimate, for comparison
    i2: float | None  # heterogeneity: share of the spread not explained by sampling error
    method: str  # 'random_effects' (DerSimonian-Laird) | 'single_experiment' | 'none'
    label: str  # same vocabulary as Effect.label; 'too_small' when fewer than 2 experiments
    tau2: float | None = None  # between-experiment variance (DL, truncated at 0)


def combine(
    differences: Sequence[float], standard_errors: Sequence[float], settings: UpliftSettings = UpliftSettings()
) -> Rollup:
    """Random-effects (DerSimonian-Laird) mean of per-experiment differences.

    Experiments without a finite difference or with se <= 0 or non-finite are skipped: an exact (se 0)
    difference would get infinite weight. NaN is accepted here because it is how an Effect's None arrives
    after a DataFrame round-trip; callers count skipped rows from n_experiments.
    """
    d = np.asarray(differences, dtype=float)
    se = np.asarray(standard_errors, dtype=float)
    if d.ndim != 1 or se.shape != d.shape:
        raise ValueError(f"differences and standard_errors must be 1-D of equal length, got {d.shape} and {se.shape}")
    keep = np.isfinite(d) & np.isfinite(se) & (se > 0)
    d, se = d[keep], se[keep]
    if d.size == 0:
        return Rollup(0, None, None, None, None, None, None, "none", "too_small")
    if d.size == 1:
        return _single_rollup(float(d[0]), float(se[0]), settings)
    return _random_effects(d, se, settings)


def _single_rollup(d: float, se: float, settings: UpliftSettings) -> Rollup:
    z = stats.norm.isf(settings.alpha / 2)
    return Rollup(1, d, se, d - z * se, d + z * se, d, None, "single_experiment", "too_small")


def _random_effects(d: np.ndarray, se: np.ndarray, settings: UpliftSettings) -> Rollup:
    res = combine_effects(d, se**2, method_re="chi2", use_t=False, alpha=settings.alpha)
    z = stats.norm.isf(settings.alpha / 2)
    if res.tau2 > 0:
        effect, effect_se, tau2, i2 = res.mean_effect_re, res.sd_eff_w_re, float(res.tau2), float(res.i2)
    else:
        # DL truncates tau^2 at 0, where the random-effects mean is the fixed-effect one
        effect, effect_se, tau2, i2 = res.mean_effect_fe, res.sd_eff_w_fe, 0.0, 0.0
    low, high = effect - z * effect_se, effect + z * effect_se
    return Rollup(
        n_experiments=int(d.size),
        effect=float(effect),
        se=float(effect_se),
        ci_low=float(low),
        ci_high=float(high),
        fixed_effect=float(res.mean_effect_fe),
        i2=i2,
        method="random_effects",
        label=_label_from_ci(low, high),
        tau2=tau2,
    )


@dataclass(frozen=True)
class Correlation:
    n: int
    rho: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def rank_correlation(predicted: Sequence[float], realized: Sequence[float], alpha: float = 0.05) -> Correlation:
    """Spearman's rho between predicted and realized uplift.

    rho is None when n < 3 or either side is constant (ranks carry no order). The interval is a Fisher-z
    interval with the Spearman variance 1.06 / (n - 3), only for n >= 10 and |rho| < 1: at |rho| = 1 the
    z-transform is infinite and the interval would be a misleading point.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    x = _clean_arm("predicted", predicted)
    y = _clean_arm("realized", realized)
    if x.size != y.size:
        raise ValueError(f"predicted and realized differ in length: {x.size} vs {y.size}")
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n, None, None, None, None)
    res = stats.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    low, high = _fisher_interval(rho, n, alpha)
    return Correlation(n, rho, low, high, p)


def _fisher_interval(rho: float, n: int, alpha: float) -> tuple[float | None, float | None]:
    if n < MIN_RANK_CI_N or abs(rho) >= 1.0:
        return None, None
    half = stats.norm.isf(alpha / 2) * math.sqrt(1.06 / (n - 3))
    z = math.atanh(rho)
    return math.tanh(z - half), math.tanh(z + half)
