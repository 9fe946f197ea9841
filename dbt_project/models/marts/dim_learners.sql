{#- Grain: one row per learner_id (eduMe userId) seen in any learner event, whether or not a
    learner.added was received. Profile attributes come from the latest event (by occurred_at)
    carrying them (int_learner_profiles_aggregated); teams from the latest teams snapshot. -#}
with

profiles as (
    select * from {{ ref('int_learner_profiles_aggregated') }}
),

teams as (
    select
        entity_id as learner_id,
        {{ edume.sorted_distinct_list('team_id') }} as team_ids,
        count(*) as count_teams
    from {{ ref('int_team_memberships_resolved') }}
    where entity_kind = 'learner'
    group by entity_id
),

final as (
    select
        profiles.learner_id,
        profiles.external_user_id,
        profiles.first_name,
        profiles.last_name,
        profiles.group_id,
        teams.team_ids,
        coalesce(teams.count_teams, 0) as count_teams,
        {{ edume.utc('profiles.added_at') }} as added_at,
        {{ edume.utc('profiles.activated_at') }} as activated_at,
        {{ edume.utc('profiles.first_activity_at') }} as first_activity_at,
        {{ edume.utc('profiles.last_activity_at') }} as last_activity_at,
        {{ edume.utc('profiles.first_seen_at') }} as first_seen_at,
        profiles.count_courses,
        profiles.count_courses_started,
        profiles.count_courses_completed
    from profiles
    left join teams on teams.learner_id = profiles.learner_id
)

select * from final
