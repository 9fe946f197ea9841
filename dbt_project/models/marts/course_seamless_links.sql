{#- Grain: one row per (course_id, team_id) for live (published) courses and their current
    teams: the base seamless link. An integrator appends `&e=<externalUserId>` and
    `&sig=<HMAC-SHA256 hex of the URL so far, keyed with the link-signing secret>`. -#}
with

assignments as (
    select * from {{ ref('course_team_assignments') }}
),

live_courses as (
    select course_id from {{ ref('dim_courses') }}
    where status = 'published'
),

final as (
    select
        assignments.course_id,
        assignments.team_id,
        'https://learn.edume.com/e/c/' || cast(assignments.course_id as {{ dbt.type_string() }})
            || '?g=' || cast(assignments.team_id as {{ dbt.type_string() }}) as seamless_link
    from assignments
    inner join live_courses
        on live_courses.course_id = assignments.course_id
)

select * from final
