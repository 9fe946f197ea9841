{#- Grain: one row per (course_id, team_id) currently assigned: the teams in the course's latest
    snapshot by occurred_at. A deleted course has no current assignment. -#}
with

memberships as (
    select entity_id as course_id, team_id, member_since
    from {{ ref('int_team_memberships_resolved') }}
    where entity_kind = 'course'
),

courses as (
    select course_id, status from {{ ref('int_course_states_resolved') }}
),

final as (
    select
        memberships.course_id,
        memberships.team_id,
        {{ edume.utc('memberships.member_since') }} as assigned_at
    from memberships
    inner join courses
        on courses.course_id = memberships.course_id
    where courses.status <> 'deleted'
)

select * from final
