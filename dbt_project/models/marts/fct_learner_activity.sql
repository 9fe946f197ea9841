{#- Grain: one row per distinct learner event (delivery_id), every learner.* type.

    The incremental int_learner_events_deduplicated under the marts' names, as a table like every
    mart (design.md): analysts and BI tools see base tables only. -#}
with

events as (
    select * from {{ ref('int_learner_events_deduplicated') }}
),

final as (
    select
        delivery_id as learner_event_id,
        learner_id,
        course_id,
        module_id,
        activity_id,
        event_type,
        activity_type,
        occurred_at,
        received_at,
        score,
        is_passed
    from events
)

select * from final
