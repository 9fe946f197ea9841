{#- One row per element of a learner event's `teams` array (the learner's teams at that time). -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type in {{ edume.sql_list(edume.learner_event_types()) }}
),

elements as (
    {{ edume.json_array_elements('source', 'body', '$.payload.teams', ['delivery_id', 'loaded_at']) }}
),

final as (
    select
        delivery_id,
        {{ edume.json_bigint('element', '$.teamId') }} as team_id,
        position,
        loaded_at
    from elements
)

select * from final
