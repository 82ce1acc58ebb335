"""A data-driven second judge: predict a template group's mean engagement from its text and setting.

Trained per month on that month's ranked groups (`core.engagement_features`): the message's
all-MiniLM-L6-v2 embedding, one-hot audience segment, and voucher facts (type, percentage, minimum
spend, expiry, bound product). Two ridge regressions (scikit-learn), penalties picked by internal
cross-validation: the setting first, then the text on what the setting leaves unexplained, so that
384 noisy text dimensions cannot drown the few setting features. Accuracy is measured on shops held
out of training (a shop's popularity is shared by all its groups, so a random split would leak it),
beside a baseline without the text: the difference says how much the words themselves predict. The refitted model then scores each rewrite
and its original in the same setting; only the text differs, so the difference is the text's effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import GroupShuffleSplit

from crmagent_dagster.segments import SEGMENT_KEYS

VOUCHER_TYPES = ("percentage_off", "fixed_amount_off", "free_shipping")
ALPHAS = np.logspace(-2, 3, 11)
MODEL_NAME = "sklearn RidgeCV: segment + voucher, then all-MiniLM-L6-v2 text on the residual"


def message_text(title: str | None, body: str | None) -> str:
    return f"{title or ''}\n{body or ''}"


def setting_features(rows: list[dict[str, Any]]) -> np.ndarray:
    """Segment one-hot, voucher type one-hot, percentage off / 100, min spend, expiry, bound product."""
    out = np.zeros((len(rows), len(SEGMENT_KEYS) + len(VOUCHER_TYPES) + 4), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, SEGMENT_KEYS.index(r["segment"])] = 1
        base = len(SEGMENT_KEYS)
        if r.get("voucher_type") in VOUCHER_TYPES:
            out[i, base + VOUCHER_TYPES.index(r["voucher_type"])] = 1
        base += len(VOUCHER_TYPES)
        if r.get("voucher_type") == "percentage_off" and r.get("discount_value") is not None:
            out[i, base] = float(r["discount_value"]) / 100  # amounts are in each market's currency: not comparable
        out[i, base + 1] = bool(r.get("has_min_spend"))
        out[i, base + 2] = bool(r.get("has_expiry"))
        out[i, base + 3] = bool(r.get("has_product"))
    return out


class TextOnSetting:
    """Setting first, then text on the residual: text that carries no signal is shrunk to nothing."""

    def fit(self, text: np.ndarray, setting: np.ndarray, y: np.ndarray) -> TextOnSetting:
        self.setting = RidgeCV(alphas=ALPHAS).fit(setting, y)
        self.text = RidgeCV(alphas=ALPHAS).fit(text, y - self.setting.predict(setting))
        return self

    def predict(self, text: np.ndarray, setting: np.ndarray) -> np.ndarray:
        return self.setting.predict(setting) + self.text.predict(text)


@dataclass
class Predictor:
    model: TextOnSetting
    metrics: dict[str, Any]
    held_out: tuple[np.ndarray, np.ndarray]  # (predicted, observed) on the held-out shops

    def predict(self, text_vectors: np.ndarray, setting: np.ndarray) -> np.ndarray:
        return self.model.predict(text_vectors, setting)


def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def train(text_vectors: np.ndarray, setting: np.ndarray, y: np.ndarray, shops: list[str],
          test_share: float = 0.2, seed: int = 0) -> Predictor:
    """Held-out metrics on unseen shops, then a refit on every group for scoring rewrites."""
    if len(y) < 20 or len(set(shops)) < 5:
        raise ValueError(f"too few groups to train and hold out shops: {len(y)} groups from {len(set(shops))} shops "
                         "(need at least 20 groups and 5 shops)")
    train_idx, test_idx = next(GroupShuffleSplit(1, test_size=test_share, random_state=seed)
                               .split(setting, y, groups=np.asarray(shops)))
    held_out = TextOnSetting().fit(text_vectors[train_idx], setting[train_idx], y[train_idx])
    pred = held_out.predict(text_vectors[test_idx], setting[test_idx])
    base_pred = held_out.setting.predict(setting[test_idx])  # the same model without its text stage
    truth = y[test_idx]
    metrics = {
        "model": MODEL_NAME, "n_groups": int(len(y)), "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
        "n_test_shops": int(len(set(np.asarray(shops)[test_idx]))), "alpha": float(held_out.text.alpha_),
        "r2": float(r2_score(truth, pred)), "spearman_rho": _rho(pred, truth),
        "mae": float(mean_absolute_error(truth, pred)),
        "baseline_r2": float(r2_score(truth, base_pred)), "baseline_spearman_rho": _rho(base_pred, truth),
    }
    metrics["text_lift_r2"] = metrics["r2"] - metrics["baseline_r2"]
    return Predictor(TextOnSetting().fit(text_vectors, setting, y), metrics, (pred, truth))
