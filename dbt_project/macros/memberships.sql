{#- The entities an incremental run of int_team_memberships_resolved recomputes, as a predicate on
    (entity_kind, entity_id): every course (a few hundred snapshots at most) and the learners
    with a teams snapshot loaded since the newest loaded_at the table holds, listed as literals
    (touched_learner_ids) so that the engine filters snapshots by key before ranking them; `true`
    for a full build, and for a table built before it was incremental (no loaded_at column yet:
    the run recomputes every entity, and the column is added). -#}
{% macro touched_team_entities() -%}
    {%- if is_incremental() and 'loaded_at' in (
            adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
        {%- set learners = edume.touched_learner_ids('has_teams_snapshot') -%}
        (entity_kind = 'course' or {{ edume.in_touched_learners('entity_id', learners) }})
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
