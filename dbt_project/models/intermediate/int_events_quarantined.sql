{#- Grain: one row per distinct delivery that cannot be processed (unknown or missing type,
    unparseable timestamp, missing ids). Kept here, counted, never silently dropped. -#}
with

unprocessable as (
    select delivery_id, event_type, invalid_reason, occurred_at, received_at
    from {{ ref('stg_edume__unknown_events') }}
    union all
    select delivery_id, event_type, invalid_reason, occurred_at, received_at
    from {{ ref('stg_edume__course_events') }}
    where invalid_reason is not null
    union all
    select delivery_id, event_type, invalid_reason, occurred_at, received_at
    from {{ ref('stg_edume__learner_events') }}
    where invalid_reason is not null
),

final as (
    select
        delivery_id,
        min(event_type) as event_type,
        min(invalid_reason) as invalid_reason,
        min(occurred_at) as occurred_at,
        min(received_at) as received_at,
        count(*) as count_copies
    from unprocessable
    group by delivery_id
)

select * from final
