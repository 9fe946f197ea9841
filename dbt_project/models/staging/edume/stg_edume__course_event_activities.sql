{#- One row per element of a course event's `activities` array, in course order. -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type in {{ edume.sql_list(edume.course_event_types()) }}
),

elements as (
    {{ edume.json_array_elements('source', 'body', '$.payload.activities', ['delivery_id']) }}
),

final as (
    select
        delivery_id,
        {{ edume.json_bigint('element', '$.activityId') }} as activity_id,
        {{ edume.json_text('element', '$.type') }} as activity_type,
        {{ edume.json_boolean('element', '$.published') }} as is_published,
        position
    from elements
)

select * from final
