"""The paper's 11 audience segments: one source of truth for partitions, SQL and the generator.

Keys are partition keys, so they hold no commas or pipes (Dagster's multi-partition
separator is '|'). `plan_share` is each segment's share of weak templates in the
paper's Table 1 (701 ... 58 of 3957), which we use as its share of campaign plans.
`familiarity` says whether the audience already knows the shop, which is what
audience-assumption and irrelevant-offer defects get wrong.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    paper_count: int
    familiar: bool  # has the audience bought from / followed the shop before?
    relationship: str  # one line on what the audience is to the shop, for prompts and reviewers


SEGMENTS: tuple[Segment, ...] = (
    Segment("potential_new_customers", "Potential New Customers", 701, False,
            "have never bought from the shop and do not follow it: no past orders, no 'we miss you'."),
    Segment("new_buyers", "New Buyers", 681, True,
            "made their first order recently: the goal is a second order, so no first-order offers."),
    Segment("lapsing_buyers", "Lapsing Buyers", 515, True,
            "bought before but not for a while: they know the shop, so a welcome back fits."),
    Segment("abandoned_cart_buyers", "Abandoned Cart Buyers", 493, True,
            "put items in the cart and did not check out: they have not bought them yet."),
    Segment("unpaid_order_buyers", "Unpaid Order Buyers", 439, True,
            "placed an order and have not paid: it is not theirs yet, so no thanks for a purchase."),
    Segment("post_purchase", "Post-Purchase Group", 352, True,
            "just bought: thank them and offer what goes with it or the next order."),
    Segment("price_drop", "Price-Drop Group", 267, True,
            "viewed or liked an item whose price has dropped: lead with the new price."),
    Segment("active_old_followers", "Active Old Followers", 186, True,
            "have followed the shop for long and engage: loyal, so no first-order offers."),
    Segment("frequent_buyers", "Frequent Buyers", 140, True,
            "buy often: regulars, so no first-order or new-user offers."),
    Segment("new_followers", "New Followers", 125, False,
            "just followed the shop and have not bought: thanks for following fits, 'welcome back' does not."),
    Segment("repeat_buyers", "Repeat Buyers", 58, True,
            "have bought more than once: no first-order offers."),
)

SEGMENT_KEYS: tuple[str, ...] = tuple(s.key for s in SEGMENTS)
SEGMENT_BY_KEY: dict[str, Segment] = {s.key: s for s in SEGMENTS}
_TOTAL = sum(s.paper_count for s in SEGMENTS)
SEGMENT_SHARES: dict[str, float] = {s.key: s.paper_count / _TOTAL for s in SEGMENTS}

EVENT_WEIGHTS: dict[str, int] = {
    # Appendix A: engagement within 7 days of sending.
    "read": 1,
    "store_voucher_click": 3,
    "product_card_click": 4,
    "crm_button_click": 2,
    "unsubscribe": -5,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_WEIGHTS)

VOUCHER_TYPES: tuple[str, ...] = ("percentage_off", "fixed_amount_off", "free_shipping")
