{#- The entities an incremental run of int_team_memberships_resolved recomputes, as a predicate on
    (entity_kind, entity_id): every course (a few hundred snapshots at most) and the learners
    with a teams snapshot loaded since the newest loaded_at the table holds, listed as literals
    (listed_keys) so that the engine filters snapshots by key before ranking them; `true` for a
    full build, and for a table built before it was incremental (no loaded_at column yet: the
    run recomputes every entity, and the column is added). -#}
{% macro touched_team_entities() -%}
    {%- if is_incremental() and 'loaded_at' in (
            adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
        {%- set learners = 'select distinct learner_id from '
            ~ ref('int_learner_events_deduplicated')
            ~ ' where has_teams_snapshot and loaded_at > ' ~ edume.incremental_watermark() -%}
        (entity_kind = 'course' or entity_id in ({{ edume.listed_keys(learners, learners) }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- int_team_memberships_resolved's pre-hook: delete the rows of the entities the run recomputes.
    An entity whose latest snapshot lists no team has no row left to replace them by key. -#}
{% macro forget_touched_team_entities() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ edume.touched_team_entities() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
