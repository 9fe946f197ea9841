{#- Grain: one row per (course_id, activity_id) in the course's latest activities snapshot, in
    course order. -#}
with

courses as (
    select course_id, activities_delivery_id
    from {{ ref('int_course_states_resolved') }}
    where activities_delivery_id is not null
),

snapshot_activities as (
    select distinct delivery_id, activity_id, activity_type, is_published, position
    from {{ ref('stg_edume__course_event_activities') }}
    where activity_id is not null
),

first_occurrences as (
    select
        courses.course_id,
        snapshot_activities.activity_id,
        snapshot_activities.activity_type,
        snapshot_activities.is_published,
        snapshot_activities.position,
        row_number() over (
            partition by courses.course_id, snapshot_activities.activity_id
            order by snapshot_activities.position
        ) as occurrence
    from courses
    inner join snapshot_activities
        on snapshot_activities.delivery_id = courses.activities_delivery_id
),

final as (
    select
        course_id,
        activity_id,
        activity_type,
        coalesce(is_published, false) as is_published,
        cast(row_number() over (partition by course_id order by position) as bigint) as position
    from first_occurrences
    where occurrence = 1
)

select * from final
