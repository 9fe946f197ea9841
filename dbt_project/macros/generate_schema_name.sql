{# Schemas are named by layer (staging, intermediate, marts), not prefixed by the target schema,
   so analysts find marts.<name> whatever the target. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
