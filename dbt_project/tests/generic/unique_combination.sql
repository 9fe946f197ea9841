{#- Fails with each combination of `columns` that occurs more than once: the key of a model
    whose grain is several columns. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as count_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
