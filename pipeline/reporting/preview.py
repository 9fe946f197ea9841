"""A small preview of a mart (its first rows) for Dagster's UI, with no personal data.

Dagster's event storage keeps materialization metadata for as long as the run history, outside
the warehouse's access rules, so a learner's name or the company's own id for them
(``external_user_id``) must not go there. Learner identifiers are left out too: a pseudonymous
id still ties the row to one person. What remains (courses, activities, statuses, counts, dates)
is enough to see what the mart holds.

:func:`mart_preview` returns a pandas DataFrame; :func:`preview_markdown` renders it for
``dagster.MetadataValue.md``. Both are pure reads: no write, no lock taken (the caller holds the
connection, inside its run's writer lock or on a read-only file).
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

PREVIEW_ROWS = 5
# Columns never shown: names, contact details, the customer's ids for a person, learner ids.
PERSONAL = re.compile(
    r"name|email|phone|external|address|^learner_id$|^learner_course_key$|^learner_event_id$"
)


def personal_columns(columns: list[str]) -> list[str]:
    """The columns a preview leaves out (``course_title`` stays: a course is not a person)."""
    return [column for column in columns if PERSONAL.search(column)]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def mart_preview(
    con: duckdb.DuckDBPyConnection, mart: str, limit: int = PREVIEW_ROWS, schema: str = "marts"
) -> pd.DataFrame:
    """The first ``limit`` rows of ``schema.mart``, without :func:`personal_columns`.

    Rows come in storage order (no sort: a preview must not scan a large fact). Raises
    ``duckdb.CatalogException`` when the relation does not exist.
    """
    relation = f"{_quoted(schema)}.{_quoted(mart)}"
    columns = [row[0] for row in con.execute(f"describe {relation}").fetchall()]
    hidden = set(personal_columns(columns))
    shown = ", ".join(_quoted(column) for column in columns if column not in hidden)
    if not shown:
        return pd.DataFrame()
    return con.execute(f"select {shown} from {relation} limit {int(limit)}").df()


def preview_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style markdown table of ``frame``, nulls (``None``, ``NaN``, ``NA``) blank."""
    if frame.empty:
        return "_no rows_"
    return frame.astype(object).where(frame.notna(), "").to_markdown(index=False)
