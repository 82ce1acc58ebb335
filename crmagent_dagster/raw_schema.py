"""The documented raw schema: what a landing folder must hold, and what the generator writes.

Raw tables keep every value as text, exactly as delivered: typing and validation happen in
staging, where a bad value quarantines its row instead of failing a whole file. Each raw
row also carries `month` (partition), `_source` (file or generator), `_row_id`
(0-based position in that source) so a quarantined row can be found again, and `_issue`
(the loader's reason it could not read the row cleanly, e.g. bytes that are not UTF-8).
"""

from __future__ import annotations

# table -> [(column, documented type after staging, meaning)]
RAW_TABLES: dict[str, list[tuple[str, str, str]]] = {
    "shops": [
        ("shop_id", "VARCHAR", "merchant id (key)"),
        ("shop_name", "VARCHAR", "display name"),
        ("market", "VARCHAR", "country code of the storefront: MY, ID, SG, PH"),
    ],
    "plans": [
        ("plan_id", "VARCHAR", "campaign plan id (key)"),
        ("shop_id", "VARCHAR", "merchant running the plan"),
        ("segment", "VARCHAR", "audience segment key (one of the 11)"),
        ("template_id", "VARCHAR", "message template sent"),
        ("product_id", "VARCHAR", "bound product, empty if none"),
        ("voucher_id", "VARCHAR", "bound voucher, empty if none"),
        ("channel", "VARCHAR", "push, im or email"),
    ],
    "templates": [
        ("template_id", "VARCHAR", "template id (key)"),
        ("shop_id", "VARCHAR", "merchant owning the template"),
        ("language", "VARCHAR", "ISO 639-1 code as written by the merchant tool (en, ms, id)"),
        ("title", "VARCHAR", "push title"),
        ("body", "VARCHAR", "push body"),
    ],
    "products": [
        ("product_id", "VARCHAR", "product id (key)"),
        ("shop_id", "VARCHAR", "merchant"),
        ("product_name", "VARCHAR", "name"),
        ("category_l1", "VARCHAR", "category, level 1"),
        ("category_l2", "VARCHAR", "category, level 2"),
        ("category_l3", "VARCHAR", "category, level 3"),
        ("price", "DOUBLE", "list price in the shop's currency, >= 0"),
    ],
    "vouchers": [
        ("voucher_id", "VARCHAR", "voucher id (key)"),
        ("shop_id", "VARCHAR", "merchant"),
        ("voucher_type", "VARCHAR", "percentage_off, fixed_amount_off or free_shipping"),
        ("discount_value", "DOUBLE", "percent (0-100] or amount > 0; 0 for free_shipping"),
        ("min_spend", "DOUBLE", "minimum basket, >= 0, empty if none"),
        ("max_discount", "DOUBLE", "cap for percentage vouchers, empty if none"),
        ("currency", "VARCHAR", "ISO 4217 code"),
        ("voucher_code", "VARCHAR", "code shown to the buyer"),
        ("expires_at", "TIMESTAMP", "end of validity, 'YYYY-MM-DD HH:MM:SS' UTC"),
    ],
    "delivery_logs": [
        ("log_id", "VARCHAR", "one successful delivery (key)"),
        ("sent_at", "TIMESTAMP", "delivery time, 'YYYY-MM-DD HH:MM:SS' UTC, within the month"),
        ("shop_id", "VARCHAR", "merchant"),
        ("plan_id", "VARCHAR", "campaign plan"),
        ("template_id", "VARCHAR", "template sent"),
        ("product_id", "VARCHAR", "bound product, empty if none"),
        ("voucher_id", "VARCHAR", "bound voucher, empty if none"),
        ("user_id", "VARCHAR", "recipient"),
        ("segment", "VARCHAR", "audience segment key of the plan"),
    ],
    "engagement_events": [
        ("log_id", "VARCHAR", "delivery the event belongs to"),
        ("event_type", "VARCHAR", "read, store_voucher_click, product_card_click, crm_button_click, unsubscribe"),
        ("event_at", "TIMESTAMP", "event time, 'YYYY-MM-DD HH:MM:SS' UTC"),
    ],
}

# Required in every raw table besides its own columns.
LINEAGE_COLUMNS: tuple[str, ...] = ("month", "_source", "_row_id")


def columns(table: str) -> list[str]:
    return [c for c, _, _ in RAW_TABLES[table]]
