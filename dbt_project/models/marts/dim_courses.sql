{#- Grain: one row per course_id ever seen, in a course event or a learner event. A course
    known only through learner events has status `unknown`, so every foreign key resolves. -#}
with

states as (
    select * from {{ ref('int_course_states_resolved') }}
),

learner_courses as (
    select course_id, first_seen_at, course_key, course_title, group_id
    from {{ ref('int_course_learner_mentions_aggregated') }}
),

course_ids as (
    select course_id from states
    union
    select course_id from learner_courses
),

modules as (
    select course_id, count(*) as count_modules
    from {{ ref('dim_course_modules') }}
    group by course_id
),

activities as (
    select
        course_id,
        count(case when activity_type = 'lesson' then 1 end) as count_lessons,
        count(case when activity_type = 'assessment' then 1 end) as count_assessments,
        count(case when activity_type = 'survey' then 1 end) as count_surveys
    from {{ ref('dim_course_activities') }}
    group by course_id
),

teams as (
    select course_id, count(*) as count_teams
    from {{ ref('course_team_assignments') }}
    group by course_id
),

final as (
    select
        course_ids.course_id,
        coalesce(states.course_key, learner_courses.course_key) as course_key,
        coalesce(states.course_title, learner_courses.course_title) as course_title,
        coalesce(states.group_id, learner_courses.group_id) as group_id,
        coalesce(states.status, 'unknown') as status,
        coalesce(states.status = 'published', false) as is_live,
        coalesce(modules.count_modules, 0) as count_modules,
        coalesce(activities.count_lessons, 0) as count_lessons,
        coalesce(activities.count_assessments, 0) as count_assessments,
        coalesce(activities.count_surveys, 0) as count_surveys,
        coalesce(teams.count_teams, 0) as count_teams,
        states.course_id is not null as has_course_events,
        {{ edume.utc("case
            when states.first_event_at is null then learner_courses.first_seen_at
            when learner_courses.first_seen_at is null then states.first_event_at
            else least(states.first_event_at, learner_courses.first_seen_at)
        end") }} as first_seen_at,
        {{ edume.utc('states.last_event_at') }} as last_changed_at
    from course_ids
    left join states on states.course_id = course_ids.course_id
    left join learner_courses on learner_courses.course_id = course_ids.course_id
    left join modules on modules.course_id = course_ids.course_id
    left join activities on activities.course_id = course_ids.course_id
    left join teams on teams.course_id = course_ids.course_id
)

select * from final
