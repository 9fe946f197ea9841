{#- Grain: one row per distinct processable course delivery (delivery_id). A body delivered
    several times counts once, with the earliest copy's received_at. -#}
with

staged as (
    select * from {{ ref('stg_edume__course_events') }}
    where invalid_reason is null
),

copies_ranked as (
    select
        *,
        row_number() over (
            partition by delivery_id order by received_at, segment, line_number
        ) as copy_number
    from staged
),

final as (
    select
        delivery_id,
        event_type,
        change_type,
        course_id,
        course_key,
        course_title,
        previous_course_title,
        changed_team_id,
        group_id,
        payload_version,
        has_teams_snapshot,
        has_modules_snapshot,
        has_activities_snapshot,
        occurred_at,
        received_at,
        -- Order of the course's events by when they occurred, never by arrival; equal
        -- timestamps are broken by delivery_id so every build agrees.
        row_number() over (
            partition by course_id order by occurred_at, delivery_id
        ) as course_event_number
    from copies_ranked
    where copy_number = 1
)

select * from final
