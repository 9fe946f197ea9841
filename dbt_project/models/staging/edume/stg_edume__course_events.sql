{#- One row per landed course.* delivery (duplicates included; deduplicated downstream). -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type in {{ edume.sql_list(edume.course_event_types()) }}
),

renamed as (
    select
        delivery_id,
        event_type,
        {{ edume.json_text('body', '$.payload.change.type') }} as change_type,
        {{ edume.json_bigint('body', '$.payload.course.courseId') }} as course_id,
        {{ edume.json_text('body', '$.payload.course.courseKey') }} as course_key,
        {{ edume.json_text('body', '$.payload.course.title') }} as course_title,
        {{ edume.json_text('body', '$.payload.change.previousTitle') }} as previous_course_title,
        {{ edume.json_bigint('body', '$.payload.change.teamId') }} as changed_team_id,
        {{ edume.json_bigint('body', '$.payload.group.groupId') }} as group_id,
        {{ edume.json_bigint('body', '$.payload.version') }} as payload_version,
        {{ edume.json_is_array('body', '$.payload.teams') }} as has_teams_snapshot,
        {{ edume.json_is_array('body', '$.payload.modules') }} as has_modules_snapshot,
        {{ edume.json_is_array('body', '$.payload.activities') }} as has_activities_snapshot,
        event_timestamp as occurred_at,
        received_at,
        loaded_at,
        segment,
        line_number
    from source
),

final as (
    select
        *,
        case
            when occurred_at is null then 'unparseable_timestamp'
            when course_id is null then 'missing_course_id'
        end as invalid_reason
    from renamed
)

select * from final
