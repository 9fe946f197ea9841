{#- Grain: one row per distinct delivery carrying a `teams` array, for courses (the teams
    assigned to the course) and learners (the learner's teams). Both feed the same membership
    logic in int_team_memberships_resolved. -#}
with

course_snapshots as (
    select
        'course' as entity_kind, course_id as entity_id, delivery_id, occurred_at,
        cast(null as timestamp) as loaded_at  -- courses are recomputed at every run
    from {{ ref('int_course_events_deduplicated') }}
    where has_teams_snapshot
),

learner_snapshots as (
    select
        'learner' as entity_kind, learner_id as entity_id, delivery_id, occurred_at, loaded_at
    from {{ ref('int_learner_events_deduplicated') }}
    where has_teams_snapshot
),

snapshots as (
    select * from course_snapshots
    union all
    select * from learner_snapshots
),

final as (
    select
        *,
        row_number() over (
            partition by entity_kind, entity_id order by occurred_at, delivery_id
        ) as snapshot_number,
        row_number() over (
            partition by entity_kind, entity_id order by occurred_at desc, delivery_id desc
        ) as snapshot_recency
    from snapshots
)

select * from final
