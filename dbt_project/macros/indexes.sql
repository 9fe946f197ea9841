{#- The one-column lookup key of a (learner, course) pair: 'learnerId:courseId', e.g.
    '90211:14148'. "Has learner X completed course Y?" is then one indexed lookup: the models
    keyed by it declare it their primary key in their contract, and DuckDB enforces a primary
    key with an ART index, which its optimizer uses for an equality on one column (not for a
    conjunction over a composite index). No separate index is created: it would duplicate the
    primary key's. -#}
{% macro learner_course_key(learner_id, course_id) -%}
    cast({{ learner_id }} as {{ dbt.type_string() }}) || ':' || cast({{ course_id }} as {{ dbt.type_string() }})
{%- endmacro %}
