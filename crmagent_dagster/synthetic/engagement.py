"""The synthetic engagement model: P(event | segment, template features, voucher, product).

Vectorised over plans. It is a function of *features*, not of generator internals,
so a later month can be simulated for new (e.g. rewritten) templates by passing their
features. Shop popularity and plan noise are applied by the caller on top.
"""

from __future__ import annotations

import numpy as np

from crmagent_dagster.segments import EVENT_TYPES, SEGMENT_KEYS
from crmagent_dagster.synthetic.catalog import DEFECTS

# Per segment: P(read), P(store/voucher click | read), P(product card click | read, product bound),
# P(CRM button | read), P(unsubscribe). Abandoned-cart and unpaid-order audiences respond most,
# cold audiences least and unsubscribe most (Appendix A's example).
BASE_RATES: dict[str, tuple[float, float, float, float, float]] = {
    "potential_new_customers": (0.10, 0.12, 0.14, 0.06, 0.012),
    "new_buyers": (0.16, 0.16, 0.16, 0.08, 0.008),
    "lapsing_buyers": (0.11, 0.13, 0.14, 0.06, 0.010),
    "abandoned_cart_buyers": (0.30, 0.22, 0.26, 0.10, 0.005),
    "unpaid_order_buyers": (0.32, 0.20, 0.22, 0.14, 0.005),
    "post_purchase": (0.22, 0.12, 0.14, 0.10, 0.006),
    "price_drop": (0.26, 0.20, 0.28, 0.08, 0.006),
    "active_old_followers": (0.12, 0.12, 0.12, 0.06, 0.008),
    "frequent_buyers": (0.24, 0.18, 0.20, 0.10, 0.004),
    "new_followers": (0.18, 0.14, 0.14, 0.08, 0.010),
    "repeat_buyers": (0.22, 0.16, 0.18, 0.10, 0.005),
}

# Defect multipliers on (read, store click, product click, button, unsubscribe).
DEFECT_EFFECTS: dict[str, tuple[float, float, float, float, float]] = {
    "weak_call_to_action": (0.95, 0.45, 0.50, 0.30, 1.0),
    "vague_incentive": (0.95, 0.40, 0.60, 0.70, 1.2),
    "misaligned_tone": (0.85, 0.70, 0.75, 0.75, 1.8),
    "audience_assumption_error": (0.85, 0.65, 0.70, 0.70, 2.0),
    "irrelevant_offer": (0.95, 0.45, 0.65, 0.70, 1.5),
}
# Where a defect matters most, its click effect is squared (e.g. a weak CTA to cart abandoners).
SENSITIVE: dict[str, frozenset[str]] = {
    "weak_call_to_action": frozenset({"abandoned_cart_buyers", "unpaid_order_buyers", "price_drop"}),
    "vague_incentive": frozenset({"price_drop", "potential_new_customers", "lapsing_buyers", "new_buyers"}),
    "misaligned_tone": frozenset({"potential_new_customers", "new_followers", "post_purchase"}),
    "audience_assumption_error": frozenset({"potential_new_customers", "new_followers", "active_old_followers"}),
    "irrelevant_offer": frozenset({"frequent_buyers", "repeat_buyers", "active_old_followers"}),
}

_SEG_INDEX = {k: i for i, k in enumerate(SEGMENT_KEYS)}
_BASE = np.array([BASE_RATES[k] for k in SEGMENT_KEYS])  # (11, 5)


def event_probabilities(
    segment: np.ndarray,
    defect: np.ndarray,
    incentive_stated: np.ndarray,
    has_urgency: np.ndarray,
    has_emoji: np.ndarray,
    has_product: np.ndarray,
    has_voucher: np.ndarray,
) -> np.ndarray:
    """Return an (n, 5) array of probabilities in EVENT_TYPES order.

    `segment` holds segment keys, `defect` holds a DEFECTS key or "none"; the rest are booleans.
    """
    seg_idx = np.array([_SEG_INDEX[s] for s in segment], dtype=np.int64)
    p = _BASE[seg_idx].copy()
    for name in DEFECTS:
        hit = defect == name
        if not hit.any():
            continue
        eff = np.array(DEFECT_EFFECTS[name])
        sensitive = np.isin(segment, list(SENSITIVE[name]))
        mult = np.where(sensitive[:, None], eff**2, eff)
        p[hit] *= mult[hit]
    p[incentive_stated, 1] *= 1.5  # a concrete incentive drives voucher/store clicks
    p[has_voucher & ~incentive_stated, 1] *= 0.9
    p[has_urgency, 1:4] *= 1.15
    p[has_emoji, 0] *= 1.08
    p[~has_product, 2] = 0.0  # no product card without a bound product
    return np.clip(p, 0.0, 0.95)

