"""The export contract (../shared/spec/exports.md) as data.

One place that names every export, its columns, their logical types, which are
required, the allowed enum values, the row key and which columns hold personal data.
The generator writes to it, ingestion validates against it, and the dbt sources
describe the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Logical column types. Ingestion maps them to storage types (see RAW_SQL_TYPES).
STRING = "string"
TIMESTAMP = "timestamp"  # ISO 8601, stored as naive Asia/Shanghai local time
DATE = "date"
MONEY = "money"  # CNY, at most 2 decimals, never negative
RATE = "rate"  # decimal fraction
INT = "int"
BOOL = "bool"
ENUM = "enum"

RAW_SQL_TYPES = {
    STRING: "VARCHAR",
    TIMESTAMP: "TIMESTAMP",
    DATE: "DATE",
    MONEY: "DECIMAL(18,2)",
    RATE: "DECIMAL(9,6)",
    INT: "INTEGER",
    BOOL: "BOOLEAN",
    ENUM: "VARCHAR",
}

TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    enum: tuple[str, ...] = ()
    min: float | None = None  # inclusive bounds for int / rate columns
    max: float | None = None
    pii: bool = False  # personal data: never stored anywhere by the pipeline


@dataclass(frozen=True)
class Export:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""
    version_column: str | None = None  # column that orders versions of a key, if any
    extra_rules: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def stored_columns(self) -> list[Column]:
        """Columns that are kept (personal data is dropped at the door)."""
        return [c for c in self.columns if not c.pii]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


PLATFORMS = ("fenxiang", "jingxiaoge", "jingxiaofu", "yundian")
ROLES = (
    "mom",
    "micro_merchant",
    "courier",
    "installer",
    "cleaner",
    "shopping_guide",
    "student",
    "other",
)
GENDERS = ("F", "M", "U")
PROMOTER_STATUSES = ("active", "suspended", "terminated")
ORDER_EVENTS = ("paid", "completed", "cancelled", "refunded")
RULE_SCOPES = ("sku", "merchant", "category")
CATEGORIES = (
    "fresh_food",
    "food",
    "home",
    "underwear",
    "apparel",
    "beauty",
    "mother_baby",
    "appliances",
    "electronics",
)

EXPORTS: dict[str, Export] = {
    e.name: e
    for e in [
        Export(
            "promoters",
            (
                Column("promoter_id", STRING, True),
                Column("platform", ENUM, True, PLATFORMS),
                Column("role", ENUM, True, ROLES),
                Column("inviter_id", STRING),
                Column("joined_at", TIMESTAMP, True),
                Column("city", STRING),
                Column("city_tier", INT, min=1, max=6),
                Column("gender", ENUM, enum=GENDERS),
                Column("status", ENUM, True, PROMOTER_STATUSES),
                Column("updated_at", TIMESTAMP, True),
            ),
            key=("promoter_id",),
            version_column="updated_at",
            description="推手: people who share links",
        ),
        Export(
            "groups",
            (
                Column("group_id", STRING, True),
                Column("owner_id", STRING, True),
                Column("created_at", TIMESTAMP, True),
                Column("member_count", INT, True, min=0, max=500),
                Column("dissolved_at", TIMESTAMP),
                Column("snapshot_date", DATE, True),
            ),
            key=("group_id",),
            version_column="snapshot_date",
            description="社群: WeChat groups run by a promoter (daily snapshot)",
        ),
        Export(
            "links",
            (
                Column("link_id", STRING, True),
                Column("promoter_id", STRING, True),
                Column("group_id", STRING),
                Column("sku_id", STRING, True),
                Column("created_at", TIMESTAMP, True),
            ),
            key=("link_id",),
            description="share links (推广链接)",
        ),
        Export(
            "clicks",
            (
                Column("click_id", STRING, True),
                Column("link_id", STRING, True),
                Column("buyer_id", STRING, True),
                Column("clicked_at", TIMESTAMP, True),
            ),
            key=("click_id",),
            description="a buyer opening a share link",
        ),
        Export(
            "orders",
            (
                Column("order_id", STRING, True),
                Column("line_no", INT, True, min=1),
                Column("parent_order_id", STRING),
                Column("buyer_id", STRING, True),
                Column("sku_id", STRING, True),
                Column("quantity", INT, True, min=1),
                Column("unit_price", MONEY, True),
                Column("paid_amount", MONEY, True),
                Column("coupon_amount", MONEY),
                Column("shipping_amount", MONEY),
                Column("ordered_at", TIMESTAMP, True),
            ),
            key=("order_id", "line_no"),
            description="order lines (one row per order x SKU)",
        ),
        Export(
            "order_events",
            (
                Column("order_id", STRING, True),
                Column("line_no", INT, True, min=1),
                Column("event", ENUM, True, ORDER_EVENTS),
                Column("event_at", TIMESTAMP, True),
                Column("amount", MONEY),
                Column("event_id", STRING),
            ),
            key=("event_id",),  # or the whole row when event_id is empty
            description="status changes of order lines",
        ),
        Export(
            "skus",
            (
                Column("sku_id", STRING, True),
                Column("merchant_id", STRING, True),
                Column("category", STRING, True),
                Column("is_self_operated", BOOL, True),
                Column("positive_review_rate", RATE, min=0, max=1),
                Column("title", STRING),
            ),
            key=("sku_id",),
            description="products",
        ),
        Export(
            "commission_rules",
            (
                Column("rule_id", STRING, True),
                Column("scope", ENUM, True, RULE_SCOPES),
                Column("sku_id", STRING),
                Column("merchant_id", STRING),
                Column("category", STRING),
                Column("rate", RATE, True, min=0, max=0.9),
                Column("valid_from", TIMESTAMP, True),
                Column("valid_to", TIMESTAMP),
            ),
            key=("rule_id",),
            description="merchant settings (商家设置): the commission rate offered",
        ),
        Export(
            "buyers",
            (
                Column("buyer_id", STRING, True),
                Column("gender", ENUM, enum=GENDERS),
                Column("birth_year", INT),
                Column("city", STRING),
                Column("city_tier", INT, min=1, max=6),
                Column("registered_at", TIMESTAMP),
                Column("phone", STRING, pii=True),
            ),
            key=("buyer_id",),
            description="buyer profiles",
        ),
    ]
}

EXPORT_NAMES = tuple(EXPORTS)
FILE_SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".parquet")

# Lineage columns ingestion adds to every raw row.
LINEAGE_COLUMNS = (
    ("_delivery_date", "DATE"),
    ("_file_name", "VARCHAR"),
    ("_file_sha256", "VARCHAR"),
    ("_line_no", "BIGINT"),
)
