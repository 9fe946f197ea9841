{#- One row per landed learner.* delivery (duplicates included; deduplicated downstream).
    Learner payloads are this project's hypothesis (shared/edume-webhooks.md section 5): a real
    capture that differs changes this file only. -#}
with

source as (
    select * from {{ source('raw', 'edume_events') }}
    where event_type in {{ edume.sql_list(edume.learner_event_types()) }}
),

renamed as (
    select
        delivery_id,
        event_type,
        {{ edume.json_bigint('body', '$.payload.user.userId') }} as learner_id,
        {{ edume.json_text('body', '$.payload.user.externalUserId') }} as external_user_id,
        {{ edume.json_text('body', '$.payload.user.firstName') }} as first_name,
        {{ edume.json_text('body', '$.payload.user.lastName') }} as last_name,
        {{ edume.json_bigint('body', '$.payload.group.groupId') }} as group_id,
        {{ edume.json_bigint('body', '$.payload.course.courseId') }} as course_id,
        {{ edume.json_text('body', '$.payload.course.courseKey') }} as course_key,
        {{ edume.json_text('body', '$.payload.course.title') }} as course_title,
        {{ edume.json_bigint('body', '$.payload.module.moduleId') }} as module_id,
        {{ edume.json_text('body', '$.payload.activity.type') }} as activity_type,
        {{ edume.json_bigint('body', '$.payload.activity.activityId') }} as activity_id,
        {{ edume.json_double('body', '$.payload.result.score') }} as score,
        {{ edume.json_boolean('body', '$.payload.result.passed') }} as is_passed,
        {{ edume.parse_utc_timestamp(edume.json_text('body', '$.payload.completedAt')) }} as completed_at,
        {{ edume.json_bigint('body', '$.payload.version') }} as payload_version,
        {{ edume.json_is_array('body', '$.payload.teams') }} as has_teams_snapshot,
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
            when learner_id is null then 'missing_learner_id'
            when event_type like 'learner.activity.%'
                and (activity_type is null
                     or activity_type not in ('course', 'lesson', 'assessment', 'survey'))
                then 'unknown_activity_type'
            when event_type like 'learner.activity.%'
                and activity_type <> 'course' and activity_id is null
                then 'missing_activity_id'
            -- A standalone survey is the one learner event without a course.
            when course_id is null
                and not (event_type like 'learner.activity.%' and activity_type = 'survey')
                then 'missing_course_id'
        end as invalid_reason
    from renamed
)

select * from final
