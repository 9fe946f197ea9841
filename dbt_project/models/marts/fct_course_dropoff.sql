{#- Grain: one row per (course_id, activity_id): every activity of the course's current
    structure plus any activity learners reached that the structure no longer lists. Learners
    who reached it (any event on it), finished it, did not finish it, and are stalled there
    (stalled in the course with this as their latest activity). reached = finished +
    not_finished. The stalled counts depend on var('as_of'). -#}
{{ config(tags=['as_of']) }}
with

structure as (
    select course_id, activity_id, activity_type, position
    from {{ ref('dim_course_activities') }}
),

reaches as (
    select
        course_id,
        activity_id,
        learner_id,
        max(activity_type) as activity_type,
        max(case when event_type = 'learner.activity.finished' then 1 else 0 end) as has_finished
    from {{ ref('int_learner_events_deduplicated') }}
    where course_id is not null and activity_id is not null
        and event_type in ('learner.activity.started', 'learner.activity.finished')
    group by course_id, activity_id, learner_id
),

reach_counts as (
    select
        course_id,
        activity_id,
        max(activity_type) as activity_type,
        count(*) as count_learners_reached,
        count(case when has_finished = 1 then 1 end) as count_learners_finished
    from reaches
    group by course_id, activity_id
),

stalls as (
    select course_id, last_activity_id as activity_id, count(*) as count_learners_stalled
    from {{ ref('fct_learner_course_progress') }}
    where is_stalled and last_activity_id is not null
    group by course_id, last_activity_id
),

activity_keys as (
    select course_id, activity_id from structure
    union
    select course_id, activity_id from reach_counts
    union
    select course_id, activity_id from stalls
),

final as (
    select
        activity_keys.course_id,
        activity_keys.activity_id,
        structure.position,
        coalesce(structure.activity_type, reach_counts.activity_type) as activity_type,
        structure.activity_id is not null as is_in_course_structure,
        coalesce(reach_counts.count_learners_reached, 0) as count_learners_reached,
        coalesce(reach_counts.count_learners_finished, 0) as count_learners_finished,
        coalesce(reach_counts.count_learners_reached, 0)
            - coalesce(reach_counts.count_learners_finished, 0) as count_learners_not_finished,
        coalesce(stalls.count_learners_stalled, 0) as count_learners_stalled,
        case
            when coalesce(reach_counts.count_learners_reached, 0) > 0
            then cast(reach_counts.count_learners_reached - reach_counts.count_learners_finished as double)
                / reach_counts.count_learners_reached
        end as dropoff_rate
    from activity_keys
    left join structure
        on structure.course_id = activity_keys.course_id
        and structure.activity_id = activity_keys.activity_id
    left join reach_counts
        on reach_counts.course_id = activity_keys.course_id
        and reach_counts.activity_id = activity_keys.activity_id
    left join stalls
        on stalls.course_id = activity_keys.course_id
        and stalls.activity_id = activity_keys.activity_id
)

select * from final
