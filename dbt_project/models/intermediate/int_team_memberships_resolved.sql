{#- Grain: one row per (entity_kind, entity_id, team_id) currently assigned: the teams in the
    entity's latest snapshot by occurred_at, each with `member_since`, the occurred_at of the
    first snapshot of the unbroken run of snapshots (up to the latest) that contain the team.
    A team removed and re-assigned counts from its re-assignment. A table: several marts read it. -#}
{{ config(materialized='table') }}
with

snapshots as (
    select * from {{ ref('int_team_snapshots_collected') }}
),

snapshot_teams as (
    select distinct 'course' as entity_kind, delivery_id, team_id
    from {{ ref('stg_edume__course_event_teams') }}
    where team_id is not null
    union all
    select 'learner' as entity_kind, delivery_id, team_id
    from {{ ref('int_learner_team_snapshots_deduplicated') }}
),

current_teams as (
    select snapshots.entity_kind, snapshots.entity_id, snapshot_teams.team_id
    from snapshots
    inner join snapshot_teams
        on snapshot_teams.entity_kind = snapshots.entity_kind
        and snapshot_teams.delivery_id = snapshots.delivery_id
    where snapshots.snapshot_recency = 1
),

membership_history as (
    select
        current_teams.entity_kind,
        current_teams.entity_id,
        current_teams.team_id,
        snapshots.occurred_at,
        snapshots.snapshot_number,
        snapshot_teams.team_id is not null as is_member
    from current_teams
    inner join snapshots
        on snapshots.entity_kind = current_teams.entity_kind
        and snapshots.entity_id = current_teams.entity_id
    left join snapshot_teams
        on snapshot_teams.entity_kind = snapshots.entity_kind
        and snapshot_teams.delivery_id = snapshots.delivery_id
        and snapshot_teams.team_id = current_teams.team_id
),

last_absences as (
    select
        entity_kind,
        entity_id,
        team_id,
        coalesce(max(case when not is_member then snapshot_number end), 0) as last_absent_number
    from membership_history
    group by entity_kind, entity_id, team_id
),

final as (
    select
        membership_history.entity_kind,
        membership_history.entity_id,
        membership_history.team_id,
        min(membership_history.occurred_at) as member_since
    from membership_history
    inner join last_absences
        on last_absences.entity_kind = membership_history.entity_kind
        and last_absences.entity_id = membership_history.entity_id
        and last_absences.team_id = membership_history.team_id
    where membership_history.is_member
        and membership_history.snapshot_number > last_absences.last_absent_number
    group by membership_history.entity_kind, membership_history.entity_id, membership_history.team_id
)

select * from final
