{#- One row per landed delivery whose `type` is absent or not in the eduMe catalogue. Kept and
    counted (int_events_quarantined), never silently dropped. -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type is null
        or event_type not in {{ edume.sql_list(edume.course_event_types() + edume.learner_event_types()) }}
),

final as (
    select
        delivery_id,
        event_type,
        case when event_type is null then 'missing_type' else 'unknown_type' end as invalid_reason,
        event_timestamp as occurred_at,
        received_at,
        loaded_at,
        segment,
        line_number
    from source
)

select * from final
