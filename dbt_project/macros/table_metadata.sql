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
        {#- One statement for both (each is a dbt round trip, at every micro-batch); the types
            are DESCRIBE's. -#}
        {%- set found = run_query(
            'select (select count(*) from ' ~ this ~ '), '
            ~ '(select to_json(list([column_name, data_type] order by column_index)) '
            ~ 'from duckdb_columns() where database_name = ' ~ dbt.string_literal(this.database)
            ~ ' and schema_name = ' ~ dbt.string_literal(this.schema)
            ~ ' and table_name = ' ~ dbt.string_literal(this.identifier) ~ ')') -%}
        {%- do log('edume_table_metadata ' ~ tojson(
            {'rows': found.rows[0][0], 'columns': fromjson(found.rows[0][1])}), info=True) -%}
    {%- endif -%}
{%- endmacro %}
