{#- Grain: one row per distinct delivery that cannot be processed (unknown or missing type,
    unparseable timestamp, missing ids): kept here and counted, never silently dropped, with how
    many landed lines carried it. Counting reads only delivery_id, so no JSON is parsed. -#}
{{ config(materialized='table') }}
with

unprocessable as (
    select * from {{ ref('int_unprocessable_events_deduplicated') }}
),

landed_lines as (
    select delivery_id from {{ ref('stg_edume__unknown_events') }}
    union all
    select delivery_id from {{ ref('stg_edume__course_events') }}
    union all
    select delivery_id from {{ ref('stg_edume__learner_events') }}
),

copies as (
    select delivery_id, count(*) as count_copies
    from landed_lines
    where delivery_id in (select delivery_id from unprocessable)
    group by delivery_id
),

final as (
    select
        unprocessable.delivery_id,
        unprocessable.event_type,
        unprocessable.invalid_reason,
        unprocessable.occurred_at,
        unprocessable.received_at,
        copies.count_copies
    from unprocessable
    inner join copies on copies.delivery_id = unprocessable.delivery_id
)

select * from final
