{#- Grain: one row per distinct learner event (delivery_id), every learner.* type.

    The incremental int_learner_events_deduplicated under new names: on DuckDB a view over that
    table, so a run does not copy every event again; on Spark a table (the exporter reads each
    Spark mart's parquet files). -#}
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
        occurred_at,
        received_at,
        score,
        is_passed
    from events
)

select * from final
