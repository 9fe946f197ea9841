{#- Grain: one row per team with mandatory training: the (learner, course) assignments that
    reach the team's members through the team (a learner in two such teams counts in both),
    and how many are completed, overdue or still within their deadline at as_of. -#}
{{ config(tags=['as_of']) }}
with

compliance as (
    select learner_id, course_id, is_completed, is_overdue, is_completed_late
    from {{ ref('fct_training_compliance') }}
),

learner_teams as (
    select entity_id as learner_id, team_id
    from {{ ref('int_team_memberships_resolved') }}
    where entity_kind = 'learner'
),

by_team as (
    select learner_teams.team_id, compliance.*
    from compliance
    inner join learner_teams on learner_teams.learner_id = compliance.learner_id
    inner join {{ ref('course_team_assignments') }} as course_teams
        on course_teams.team_id = learner_teams.team_id
        and course_teams.course_id = compliance.course_id
),

counts as (
    select
        team_id,
        count(*) as count_assignments,
        count(distinct learner_id) as count_learners,
        count(*) filter (where is_completed) as count_completed,
        count(*) filter (where is_completed_late) as count_completed_late,
        count(*) filter (where is_overdue) as count_overdue,
        count(*) filter (where not is_completed and not is_overdue) as count_within_deadline
    from by_team
    group by team_id
)

select
    *,
    -- In compliance: completed, or not yet due.
    1 - count_overdue / count_assignments as compliance_rate,
    count_completed / count_assignments as completion_rate
from counts
