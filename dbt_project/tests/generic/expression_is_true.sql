{#- Fails with the rows of `model` for which `expression` is not true (NULL counts as a failure
    unless the expression handles it). Used for row-level invariants such as
    "completed_at >= started_at". -#}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not coalesce(({{ expression }}), false)
{% endtest %}
