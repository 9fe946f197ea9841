{#- Grain: one row per distinct learner event (delivery_id), every learner.* type.

    A view over the incremental int_learner_events_deduplicated, under the marts' column names:
    a micro-batch upserts only its own events there, and nothing here is copied again (BI tools
    read the exports, which materialise it). Its keys are enforced by that table's constraints.
    On Spark, where the exports read the marts' files, it is a table. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view') }}
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
        {{ edume.utc('occurred_at') }} as occurred_at,
        {{ edume.utc('received_at') }} as received_at,
        score,
        is_passed
    from events
)

select * from final
