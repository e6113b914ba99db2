-- One row per order_id, line_no: the row delivered last wins (later delivery date, then later
-- file name, then later row; settlement-rules §0).
-- Built after its versions view and that view's key check: this model records a file as
-- staged, which ends the check's interest in it (macros/staging_key_checks.sql).
-- depends_on: {{ ref('stg_exports__order_versions') }}
{{ config(
    unique_key=['order_id', 'line_no'],
    post_hook="{{ staging_record_files('orders', ['order_id', 'line_no']) }}",
) }}
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
    _line_no,
    {{ staging_stamp() }} as _staged_at  -- the run that wrote the row (macros/staging_tests_window.sql)
from {{ source('exports', 'orders') }} as exported
{{ staging_redelivered_only('orders', ['order_id', 'line_no'], 'exported') }}
qualify row_number() over (partition by order_id, line_no order by {{ delivered_last() }}) = 1
{{ staging_time_order('ordered_at') }}
