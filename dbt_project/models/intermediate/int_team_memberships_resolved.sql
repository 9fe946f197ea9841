{#- Grain: one row per (entity_kind, entity_id, team_id) currently assigned: the teams in the
    entity's latest snapshot by occurred_at, each with `member_since`, the occurred_at of the
    first snapshot of the unbroken run of snapshots (up to the latest) that contain the team.
    A team removed and re-assigned counts from its re-assignment. A table: several marts read it.

    Incremental: a run recomputes, from all their snapshots, every course and the learners with
    a snapshot loaded since the newest loaded_at this table holds (edume.touched_team_entities).
    Their rows are deleted first (the pre-hook: an entity whose latest snapshot lists no team
    keeps no row, so replacing rows by key alone would leave its old ones), then their current
    rows are inserted, so it equals a full refresh. -#}
-- depends_on: {{ ref('int_learner_events_deduplicated') }}
{{ config(
    materialized='incremental',
    unique_key=['entity_kind', 'entity_id', 'team_id'],
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
    pre_hook="{{ edume.forget_touched_team_entities() }}",
) }}
with

all_snapshots as (
    select * from {{ ref('int_team_snapshots_collected') }}
),

snapshots as (
    select * from all_snapshots
    where {{ edume.touched_team_entities() }}
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
        snapshots.loaded_at,
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
        coalesce(max(case when not is_member then snapshot_number end), 0) as last_absent_number,
        max(loaded_at) as loaded_at
    from membership_history
    group by entity_kind, entity_id, team_id
),

final as (
    select
        membership_history.entity_kind,
        membership_history.entity_id,
        membership_history.team_id,
        min(membership_history.occurred_at) as member_since,
        -- the newest loaded_at among ALL the entity's snapshots: the incremental watermark
        any_value(last_absences.loaded_at) as loaded_at
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
