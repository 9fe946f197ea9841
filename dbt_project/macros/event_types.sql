{#- The eduMe event catalogue (shared/edume-webhooks.md section 3), one list per family. A type
    in neither list lands in stg_edume__unknown_events. -#}
{% macro course_event_types() -%}
    {{ return(['course.added', 'course.deleted', 'course.published', 'course.unpublished', 'course.updated']) }}
{%- endmacro %}

{% macro learner_event_types() -%}
    {{ return(['learner.added', 'learner.activated', 'learner.activity.started',
               'learner.activity.finished', 'learner.course.completed']) }}
{%- endmacro %}

{% macro sql_list(values) -%}
    ({% for value in values %}'{{ value }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
