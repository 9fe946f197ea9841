{#- Grain: one row per learner_id (eduMe userId) seen in any learner event, whether or not a
    learner.added was received. Profile attributes come from the latest event (by occurred_at)
    carrying them; teams from the latest teams snapshot. -#}
with

events as (
    select * from {{ ref('int_learner_events_deduplicated') }}
),

ranked as (
    select
        learner_id,
        external_user_id,
        first_name,
        last_name,
        group_id,
        row_number() over (
            partition by learner_id
            order by case when external_user_id is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as external_id_recency,
        row_number() over (
            partition by learner_id
            order by case when first_name is null and last_name is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as name_recency,
        row_number() over (
            partition by learner_id
            order by case when group_id is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as group_recency
    from events
),

profiles as (
    select
        learner_id,
        max(case when external_id_recency = 1 then external_user_id end) as external_user_id,
        max(case when name_recency = 1 then first_name end) as first_name,
        max(case when name_recency = 1 then last_name end) as last_name,
        max(case when group_recency = 1 then group_id end) as group_id
    from ranked
    group by learner_id
),

milestones as (
    select
        learner_id,
        min(case when event_type = 'learner.added' then occurred_at end) as added_at,
        min(case when event_type = 'learner.activated' then occurred_at end) as activated_at,
        min(case when event_type <> 'learner.added' and event_type <> 'learner.activated'
            then occurred_at end) as first_activity_at,
        max(case when event_type <> 'learner.added' and event_type <> 'learner.activated'
            then occurred_at end) as last_activity_at,
        min(occurred_at) as first_seen_at
    from events
    group by learner_id
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

courses as (
    select
        learner_id,
        count(*) as count_courses,
        count(case when status <> 'not_started' then 1 end) as count_courses_started,
        count(case when status = 'completed' then 1 end) as count_courses_completed
    from {{ ref('int_learner_course_progress_aggregated') }}
    group by learner_id
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
        milestones.added_at,
        milestones.activated_at,
        milestones.first_activity_at,
        milestones.last_activity_at,
        milestones.first_seen_at,
        coalesce(courses.count_courses, 0) as count_courses,
        coalesce(courses.count_courses_started, 0) as count_courses_started,
        coalesce(courses.count_courses_completed, 0) as count_courses_completed
    from profiles
    inner join milestones on milestones.learner_id = profiles.learner_id
    left join teams on teams.learner_id = profiles.learner_id
    left join courses on courses.learner_id = profiles.learner_id
)

select * from final
