{#- Grain: one row per (learner_id, course_id) for each mandatory course (seed
    mandatory_courses) the learner is currently assigned through at least one team (a current
    team of the learner that is currently assigned to the course). Unique on the pair and
    keyed by learner_course_key ('X:Y'), the primary key (an ART index on DuckDB): the
    onboarding gate's one lookup. is_overdue depends on var('as_of'). -#}
{{ config(tags=['as_of']) }}
with

mandatory as (
    select course_id, due_within_days from {{ ref('mandatory_courses') }}
),

course_teams as (
    select assignments.course_id, assignments.team_id, assignments.assigned_at,
        mandatory.due_within_days
    from {{ ref('course_team_assignments') }} as assignments
    inner join mandatory on mandatory.course_id = assignments.course_id
),

learner_teams as (
    select entity_id as learner_id, team_id, member_since
    from {{ ref('int_team_memberships_resolved') }}
    where entity_kind = 'learner'
),

assignments as (
    select
        learner_teams.learner_id,
        course_teams.course_id,
        min(course_teams.due_within_days) as due_within_days,
        -- Assigned when both the learner was in the team and the team had the course; the
        -- earliest such team counts.
        min(greatest(learner_teams.member_since, course_teams.assigned_at)) as assigned_at
    from learner_teams
    inner join course_teams on course_teams.team_id = learner_teams.team_id
    group by learner_teams.learner_id, course_teams.course_id
),

progress as (
    select learner_id, course_id, status, completed_at
    from {{ ref('int_learner_course_progress_aggregated') }}
),

final as (
    select
        {{ edume.learner_course_key('assignments.learner_id', 'assignments.course_id') }}
            as learner_course_key,
        assignments.learner_id,
        assignments.course_id,
        coalesce(progress.status, 'not_started') as status,
        {{ edume.utc('assignments.assigned_at') }} as assigned_at,
        {{ edume.utc(edume.add_days('assignments.assigned_at', 'assignments.due_within_days')) }}
            as due_at,
        {{ edume.utc('progress.completed_at') }} as completed_at,
        progress.completed_at is not null as is_completed,
        coalesce(
            progress.completed_at is null
            and {{ edume.add_days('assignments.assigned_at', 'assignments.due_within_days') }}
                < {{ edume.as_of() }},
            false
        ) as is_overdue,
        coalesce(
            progress.completed_at > {{ edume.add_days('assignments.assigned_at', 'assignments.due_within_days') }},
            false
        ) as is_completed_late
    from assignments
    left join progress
        on progress.learner_id = assignments.learner_id
        and progress.course_id = assignments.course_id
)

select * from final
