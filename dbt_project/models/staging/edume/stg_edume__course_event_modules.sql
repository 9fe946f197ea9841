{#- One row per element of a course event's `modules` array, in course order. -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type in {{ edume.sql_list(edume.course_event_types()) }}
),

elements as (
    {{ edume.json_array_elements('source', 'body', '$.payload.modules', ['delivery_id']) }}
),

final as (
    select
        delivery_id,
        {{ edume.json_bigint('element', '$.moduleId') }} as module_id,
        position
    from elements
)

select * from final
