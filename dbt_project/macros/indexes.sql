{#- "Has learner X completed course Y?" as one indexed lookup. DuckDB builds an ART index on
    `columns`; engines without indexes (Spark) do nothing.

    Use both hooks OUTSIDE the model's transaction (see lookup_index_hooks): when the model is
    rebuilt (a table, or an incremental model's first build or full refresh), the index is
    dropped and committed before dbt renames the old table aside, and re-created after the new
    table is committed: DuckDB does not rename a table that has an index, and an index that still
    exists while its table is renamed in an open transaction makes duckdb_indexes() fail in other
    dbt threads ("Table with name ...__dbt_backup does not exist"). An incremental run changes
    rows in place and keeps the index, which DuckDB maintains row by row. -#}
{% macro lookup_index_hooks(columns) -%}
    {{ return({
        'pre_hook': [{'sql': "{% if not edume.is_incremental() %}{{ edume.drop_lookup_index(this, " ~ columns ~ ") }}{% else %}select 1{% endif %}", 'transaction': false}],
        'post_hook': [{'sql': "{{ edume.create_lookup_index(this, " ~ columns ~ ") }}", 'transaction': false}],
    }) }}
{%- endmacro %}

{% macro lookup_index_name(relation, columns) -%}
    {{ relation.identifier }}__{{ columns | join('__') }}
{%- endmacro %}

{% macro create_lookup_index(relation, columns, unique=true) -%}
    {{ return(adapter.dispatch('create_lookup_index', 'edume')(relation, columns, unique)) }}
{%- endmacro %}

{% macro default__create_lookup_index(relation, columns, unique) -%}
    select 1
{%- endmacro %}

{% macro duckdb__create_lookup_index(relation, columns, unique) -%}
    create {% if unique %}unique {% endif %}index if not exists
        {{ edume.lookup_index_name(relation, columns) }}
        on {{ relation }} ({{ columns | join(', ') }})
{%- endmacro %}

{% macro drop_lookup_index(relation, columns) -%}
    {{ return(adapter.dispatch('drop_lookup_index', 'edume')(relation, columns)) }}
{%- endmacro %}

{% macro default__drop_lookup_index(relation, columns) -%}
    select 1
{%- endmacro %}

{% macro duckdb__drop_lookup_index(relation, columns) -%}
    drop index if exists {{ relation.database }}.{{ relation.schema }}.{{ edume.lookup_index_name(relation, columns) }}
{%- endmacro %}


{#- The one-column lookup key of a (learner, course) pair: 'learnerId:courseId', e.g.
    '90211:14148'. -#}
{% macro learner_course_key(learner_id, course_id) -%}
    cast({{ learner_id }} as {{ dbt.type_string() }}) || ':' || cast({{ course_id }} as {{ dbt.type_string() }})
{%- endmacro %}
