{#- Grain: one row per course_id seen in a course event. The course's current state, derived
    from the events' occurred_at (latest wins; ties broken by delivery_id): title, key and group
    from the latest event carrying them, status from the latest status event, and which
    delivery holds the current modules and activities snapshots. -#}
with

events as (
    select * from {{ ref('int_course_events_deduplicated') }}
),

ranked as (
    select
        *,
        case event_type
            when 'course.added' then 'draft'
            when 'course.published' then 'published'
            when 'course.unpublished' then 'unpublished'
            when 'course.deleted' then 'deleted'
        end as status_after_event,
        row_number() over (
            partition by course_id
            order by case when course_title is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as title_recency,
        row_number() over (
            partition by course_id
            order by case when event_type = 'course.updated' then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as status_recency,
        row_number() over (
            partition by course_id
            order by case when has_modules_snapshot then 0 else 1 end,
                occurred_at desc, delivery_id desc
        ) as modules_recency,
        row_number() over (
            partition by course_id
            order by case when has_activities_snapshot then 0 else 1 end,
                occurred_at desc, delivery_id desc
        ) as activities_recency
    from events
),

per_course as (
    select
        course_id,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at,
        count(*) as count_course_events
    from events
    group by course_id
),

final as (
    select
        per_course.course_id,
        titled.course_key,
        titled.course_title,
        titled.group_id,
        coalesce(status_event.status_after_event, 'unknown') as status,
        status_event.status_changed_at,
        modules_snapshot.delivery_id as modules_delivery_id,
        activities_snapshot.delivery_id as activities_delivery_id,
        per_course.first_event_at,
        per_course.last_event_at,
        per_course.count_course_events
    from per_course
    left join ranked as titled
        on titled.course_id = per_course.course_id and titled.title_recency = 1
    left join (
        select course_id, status_after_event, occurred_at as status_changed_at
        from ranked
        where status_recency = 1 and status_after_event is not null
    ) as status_event
        on status_event.course_id = per_course.course_id
    left join ranked as modules_snapshot
        on modules_snapshot.course_id = per_course.course_id
        and modules_snapshot.modules_recency = 1
        and modules_snapshot.has_modules_snapshot
    left join ranked as activities_snapshot
        on activities_snapshot.course_id = per_course.course_id
        and activities_snapshot.activities_recency = 1
        and activities_snapshot.has_activities_snapshot
)

select * from final
