"""The README's analyst quick start, run as written against a demo's exports: the three queries
answer the seed's questions (funnel with titles, overdue training by team, stalled learners),
through pandas and pyarrow, on a read-only query.duckdb."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from demo_support import DemoRun

from pipeline.settings import REPO_ROOT


def quick_start_code() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Analyst quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(scope="module")
def answers(demo: DemoRun) -> dict:
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(demo.workspace)  # the README's relative path: exports/query.duckdb
        exec(compile(quick_start_code(), "README.md", "exec"), namespace)
    namespace["con"].close()
    return namespace


def exported(demo: DemoRun, sql: str) -> list[tuple]:
    with duckdb.connect(str(demo.workspace / "exports" / "query.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_funnel_has_every_course_with_its_title_as_a_pandas_frame(
    answers: dict, demo: DemoRun
) -> None:
    funnel = answers["funnel"]
    assert isinstance(funnel, pd.DataFrame)
    titles = {title for (title,) in exported(demo, "select course_title from dim_courses")}
    assert set(funnel["course_title"]) <= titles and len(funnel) == len(
        exported(demo, "select 1 from fct_learner_funnel")
    )
    assert funnel["count_learners_added"].sum() > 0


def test_overdue_training_by_team_adds_up_to_the_compliance_mart(
    answers: dict, demo: DemoRun
) -> None:
    by_team = answers["overdue_by_team"]
    assert isinstance(by_team, pd.DataFrame) and len(by_team) > 0
    (per_team,) = exported(demo, "select sum(count_overdue) from reporting.team_compliance")[0]
    assert by_team["learners_overdue"].sum() == per_team


def test_stalled_learners_to_remind_come_as_a_pyarrow_table(answers: dict, demo: DemoRun) -> None:
    to_remind = answers["to_remind"]
    assert isinstance(to_remind, pa.Table)
    (stalled,) = exported(
        demo, "select count(*) from fct_learner_course_progress where is_stalled"
    )[0]
    assert to_remind.num_rows == stalled > 0
    assert {"first_name", "course_title", "days_inactive"} <= set(to_remind.column_names)
