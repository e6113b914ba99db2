-- Every delivered version of every order line (a view over the raw export, one row per
-- delivered row, no version rule: a view costs nothing to keep current and the readers
-- filter it): the marts read it for their calendar (marts_bounds) and for the first
-- order date a re-delivered order changes (marts_refresh_from, an order's ordered_at may
-- move between versions).
{{ config(materialized='view') }}
select
    order_id,
    line_no,
    parent_order_id,
    buyer_id,
    sku_id,
    quantity,
    unit_price,
    paid_amount,
    coupon_amount,
    shipping_amount,
    ordered_at,
    _delivery_date,
    _file_name,
    _line_no
from {{ source('exports', 'orders') }}
