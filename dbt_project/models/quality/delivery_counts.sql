{#- Grain: one row. What the landing held at this build: lines loaded, distinct deliveries (the
    rest are eduMe's retries, removed by the dedup models), lines the loader could not read, and
    the newest arrival. Reads the raw tables, so it counts what the marts never see. -#}
with

events as (
    select delivery_id, received_at from {{ source('raw', 'edume_events') }}
),

rejected as (
    select count(*) as count_rejected_lines from {{ source('raw', 'edume_rejected_lines') }}
),

totals as (
    select
        count(*) as count_deliveries_landed,
        count(distinct delivery_id) as count_distinct_deliveries,
        max(received_at) as last_received_at
    from events
)

select
    totals.count_deliveries_landed,
    totals.count_distinct_deliveries,
    totals.count_deliveries_landed - totals.count_distinct_deliveries as count_duplicates,
    rejected.count_rejected_lines,
    {{ edume.utc('totals.last_received_at') }} as last_received_at
from totals
cross join rejected
