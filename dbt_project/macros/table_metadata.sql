{#- What Dagster shows for each table dbt builds: its row count and its columns, logged by dbt
    itself as the node's last step (a post-hook of every table, incremental model and seed), so the
    Dagster step (pipeline/defs/assets.py) can record each materialization as dbt goes, while dbt
    still holds the warehouse file, instead of opening the file itself once dbt has exited.
    One log line: `edume_table_metadata {"rows": N, "columns": [[name, type], ...]}`.
    DuckDB only: on Spark, counting a table is a Spark job. Views are exempt: counting one runs
    its whole query. The hook renders to no SQL, so dbt runs no statement for it. -#}
{% macro log_table_metadata() -%}
    {%- if execute and target.type == 'duckdb'
        and model.config.materialized in ('table', 'incremental', 'seed') -%}
        {%- set counted = run_query('select count(*) from ' ~ this) -%}
        {%- set described = run_query('describe ' ~ this) -%}
        {%- set columns = [] -%}
        {%- for row in described.rows -%}
            {%- do columns.append([row[0], row[1]]) -%}
        {%- endfor -%}
        {%- do log('edume_table_metadata '
            ~ tojson({'rows': counted.rows[0][0], 'columns': columns}), info=True) -%}
    {%- endif -%}
{%- endmacro %}
