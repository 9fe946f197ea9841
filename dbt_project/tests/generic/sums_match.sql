{#- Fails with one row when the query `left_sql` and `right_sql` (each returning one number)
    disagree: for "counts add up" invariants that span two models. -#}
{% test sums_match(model, left_sql, right_sql) %}
select left_total, right_total
from (select ({{ left_sql }}) as left_total, ({{ right_sql }}) as right_total) as totals
where coalesce(left_total, 0) <> coalesce(right_total, 0)
{% endtest %}
