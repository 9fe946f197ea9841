{#- Grain: one row. What the landing held at this build: lines loaded, distinct deliveries (the
    rest are eduMe's retries, removed by the dedup models), lines the loader could not read, and
    the newest arrival. Reads the raw tables, so it counts what the marts never see; the
    distinct deliveries are counted incrementally by int_delivery_envelopes_aggregated. -#}
with

rejected as (
    select count(*) as count_rejected_lines from {{ source('raw', 'edume_rejected_lines') }}
),

distinct_deliveries as (
    select coalesce(max(count_deliveries), 0) as count_distinct_deliveries
    from {{ ref('int_delivery_envelopes_aggregated') }}
    where header = '(delivery)'
),

totals as (
    select
        count(*) as count_deliveries_landed,
        max(received_at) as last_received_at
    from {{ source('raw', 'edume_events') }}
)

select
    totals.count_deliveries_landed,
    distinct_deliveries.count_distinct_deliveries,
    totals.count_deliveries_landed - distinct_deliveries.count_distinct_deliveries
        as count_duplicates,
    rejected.count_rejected_lines,
    {{ edume.utc('totals.last_received_at') }} as last_received_at
from totals
cross join distinct_deliveries
cross join rejected
