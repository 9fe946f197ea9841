{#- A post-hook that makes `columns` of the model one indexed lookup, e.g. "has learner X
    completed course Y?" on (learner_id, course_id). DuckDB builds an ART index (unique: the
    dbt test on the key also guarantees it); engines without indexes (Spark) do nothing. -#}
{% macro create_lookup_index(relation, columns, unique=true) -%}
    {{ return(adapter.dispatch('create_lookup_index', 'edume')(relation, columns, unique)) }}
{%- endmacro %}

{% macro default__create_lookup_index(relation, columns, unique) -%}
    select 1
{%- endmacro %}

{% macro duckdb__create_lookup_index(relation, columns, unique) -%}
    create {% if unique %}unique {% endif %}index if not exists
        {{ relation.identifier }}__{{ columns | join('__') }}
        on {{ relation }} ({{ columns | join(', ') }})
{%- endmacro %}


{#- The one-column lookup key of a (learner, course) pair: 'learnerId:courseId', e.g.
    '90211:14148'. -#}
{% macro learner_course_key(learner_id, course_id) -%}
    cast({{ learner_id }} as {{ dbt.type_string() }}) || ':' || cast({{ course_id }} as {{ dbt.type_string() }})
{%- endmacro %}
