"""The per-learner relations exported as buckets of learner_id: a micro-batch rewrites only the
buckets of the learners whose rows it wrote, and the result always equals a whole export."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import duckdb
import pytest

from pipeline import export_bucketed
from pipeline.export import export_marts, mart_parquet_glob

PROGRESS = "fct_learner_course_progress"
STALLED = "stalled_learners"


class ProgressWarehouse:
    """A real DuckDB warehouse shaped like dbt's build of the two relations: the incremental
    progress and profile aggregates (every row they write stamped with ``built_at``), course
    titles in ``marts.dim_courses``, the progress mart as a view adding ``days_inactive`` as of
    an ``as_of`` literal, and ``reporting.stalled_learners`` joining the three. Each method is one
    dbt run (a new ``built_at``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs = 0
        self.as_of = "2024-06-01 00:00:00"
        with duckdb.connect(str(path)) as con:
            con.execute(
                """create schema intermediate; create schema marts; create schema reporting;
                create table intermediate.int_learner_course_progress_aggregated (
                    learner_course_key varchar primary key, learner_id bigint, course_id bigint,
                    status varchar, last_activity_at timestamp, built_at timestamp);
                create table intermediate.int_learner_profiles_aggregated (
                    learner_id bigint primary key, first_name varchar, built_at timestamp);
                create table marts.dim_courses (course_id bigint, course_title varchar);
                insert into marts.dim_courses values (1, 'Safety'), (2, 'Hygiene'), (3, 'Sales');
                """
            )
        self._views()

    def _stamp(self) -> str:
        self.runs += 1
        return f"timestamp '2026-12-01 00:00:00' + to_seconds({self.runs})"

    def _views(self) -> None:
        with duckdb.connect(str(self.path)) as con:
            con.execute(
                f"""create or replace view marts.{PROGRESS} as
                select learner_course_key, learner_id, course_id, status,
                    cast(last_activity_at as timestamptz) as last_activity_at,
                    greatest(date_diff('day', last_activity_at,
                        cast('{self.as_of}' as timestamp)), 0) as days_inactive
                from intermediate.int_learner_course_progress_aggregated;
                create or replace view reporting.{STALLED} as
                select progress.learner_id, learners.first_name, progress.course_id,
                    courses.course_title, progress.days_inactive
                from marts.{PROGRESS} as progress
                inner join intermediate.int_learner_profiles_aggregated as learners
                    using (learner_id)
                inner join marts.dim_courses as courses using (course_id)
                where progress.status = 'in_progress' and progress.days_inactive >= 7"""
            )

    def write(self, pairs: list[tuple[int, int, str, str]]) -> None:
        """One incremental run: (learner, course, status, last activity day) rows upserted, and
        the profiles of their learners rewritten (a new learner gets a name)."""
        stamp = self._stamp()
        with duckdb.connect(str(self.path)) as con:
            for learner, course, status, day in pairs:
                con.execute(
                    "insert or replace into intermediate.int_learner_course_progress_aggregated "
                    f"values ($key, $learner, $course, $status, $day::timestamp, {stamp})",
                    {
                        "key": f"{learner}:{course}",
                        "learner": learner,
                        "course": course,
                        "status": status,
                        "day": day,
                    },
                )
                con.execute(
                    "insert or replace into intermediate.int_learner_profiles_aggregated "
                    f"select $learner, coalesce((select first_name from "
                    f"intermediate.int_learner_profiles_aggregated where learner_id = $learner), "
                    f"'learner ' || $learner), {stamp}",
                    {"learner": learner},
                )
        self._views()

    def rename_learner(self, learner: int, name: str) -> None:
        stamp = self._stamp()
        with duckdb.connect(str(self.path)) as con:
            con.execute(
                "update intermediate.int_learner_profiles_aggregated "
                f"set first_name = $name, built_at = {stamp} where learner_id = $learner",
                {"name": name, "learner": learner},
            )
        self._views()

    def rename_course(self, course: int, title: str) -> None:
        with duckdb.connect(str(self.path)) as con:
            con.execute(
                "update marts.dim_courses set course_title = $title where course_id = $course",
                {"title": title, "course": course},
            )
        self._views()

    def move_as_of(self, as_of: str) -> None:
        self.as_of = as_of
        self._views()

    def full_refresh(self, drop_learner: int | None = None) -> None:
        """Every row rewritten with one new stamp (optionally without one learner's rows)."""
        stamp = self._stamp()
        with duckdb.connect(str(self.path)) as con:
            for table in (
                "intermediate.int_learner_course_progress_aggregated",
                "intermediate.int_learner_profiles_aggregated",
            ):
                if drop_learner is not None:
                    con.execute(f"delete from {table} where learner_id = {drop_learner}")
                con.execute(f"update {table} set built_at = {stamp}")
        self._views()

    def rows(self, relation: str) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(f"select * from {relation} order by all").fetchall()


def exported(exports: Path, relation: str) -> list[tuple]:
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        return con.execute(f"select * from {relation} order by all").fetchall()


def files_by_bucket(folder: Path) -> dict[str, list[os.stat_result]]:
    return {
        bucket.name: [path.stat() for path in sorted(bucket.glob("*.parquet"))]
        for bucket in sorted(folder.glob("bucket=*"))
    }


def bucket_count(folder: Path) -> int:
    """The bucket count of the folder's current version (empty buckets have no directory)."""
    return json.loads((folder / "_edume_export.json").read_text())["buckets"]


def learners_per_course(learners: range, status: str = "in_progress") -> list:
    return [(learner, course, status, "2024-05-01") for learner in learners for course in (1, 2)]


@pytest.fixture
def small_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few rows per bucket, so that a test's handful of learners spreads over many buckets."""
    monkeypatch.setattr(export_bucketed, "ROWS_PER_BUCKET", 4)


@pytest.fixture
def progress(tmp_path: Path, small_buckets: None) -> ProgressWarehouse:
    warehouse = ProgressWarehouse(tmp_path / "edume.duckdb")
    warehouse.write(learners_per_course(range(1, 41)))
    return warehouse


def assert_exports_equal_the_warehouse(exports: Path, warehouse: ProgressWarehouse) -> None:
    assert exported(exports, PROGRESS) == warehouse.rows(f"marts.{PROGRESS}")
    assert exported(exports, f"reporting.{STALLED}") == warehouse.rows(f"reporting.{STALLED}")


def test_the_per_learner_relations_are_bucket_folders_behind_the_same_views(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"

    result = export_marts(progress.path, exports)

    for folder in (exports / PROGRESS, exports / "reporting" / STALLED):
        assert folder.is_symlink()
        assert bucket_count(folder) == 16  # 80 rows, 4 a bucket: the nearest power of 2
        assert 10 <= len(files_by_bucket(folder)) <= 16  # 40 learners: a few buckets are empty
    assert not (exports / f"{PROGRESS}.parquet").exists()
    assert result.rows[PROGRESS] == 80 and result.rows[f"reporting.{STALLED}"] == 80
    assert_exports_equal_the_warehouse(exports, progress)
    with duckdb.connect() as con:
        pattern = mart_parquet_glob(exports, STALLED, schema="reporting")
        query = f"select count(*) from read_parquet('{pattern}', hive_partitioning = false)"
        assert con.execute(query).fetchone() == (80,)


def test_a_micro_batch_rewrites_only_the_buckets_of_the_learners_it_wrote(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    before = files_by_bucket(exports / PROGRESS)
    progress.write([(7, 3, "completed", "2024-05-30")])  # learner 7 completes a third course

    result = export_marts(progress.path, exports)

    after = files_by_bucket(exports / PROGRESS)
    rewritten = {
        bucket
        for bucket in after
        if [s.st_ino for s in after[bucket]] != [s.st_ino for s in before.get(bucket, [])]
    }
    assert len(rewritten) == 1  # learner 7's bucket, as one new file
    (bucket,) = rewritten
    assert len(after[bucket]) == 1 and after[bucket][0].st_nlink == 1
    assert all(stats[0].st_nlink == 2 for name, stats in after.items() if name != bucket)
    assert {p.parent.name for p in result.files_written if PROGRESS in str(p)} == {bucket}
    assert_exports_equal_the_warehouse(exports, progress)


def test_a_run_that_changed_nothing_makes_no_new_version(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    links = {name: os.readlink(exports / name) for name in (PROGRESS, f"reporting/{STALLED}")}

    result = export_marts(progress.path, exports)

    assert {name: os.readlink(exports / name) for name in links} == links
    assert not [p for p in result.files_written if "bucket=" in str(p)]


def test_a_renamed_learner_rewrites_only_their_stalled_bucket(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress_version = os.readlink(exports / PROGRESS)
    progress.rename_learner(12, "Ada")

    result = export_marts(progress.path, exports)

    assert os.readlink(exports / PROGRESS) == progress_version  # its rows did not change
    stalled = {p.parent.name for p in result.files_written if STALLED in str(p)}
    assert len(stalled) == 1
    assert ("Ada",) in {(row[1],) for row in exported(exports, f"reporting.{STALLED}")}
    assert_exports_equal_the_warehouse(exports, progress)


def test_a_renamed_course_rewrites_every_stalled_bucket(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress_version = os.readlink(exports / PROGRESS)
    progress.rename_course(2, "Hygiene 2025")

    result = export_marts(progress.path, exports)

    assert os.readlink(exports / PROGRESS) == progress_version
    stalled = {p.parent.name for p in result.files_written if STALLED in str(p)}
    assert len(stalled) == len(files_by_bucket(exports / "reporting" / STALLED)) > 1
    assert_exports_equal_the_warehouse(exports, progress)


def test_a_new_as_of_rewrites_both_in_full(tmp_path: Path, progress: ProgressWarehouse) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress.move_as_of("2024-06-02 00:00:00")  # every row's days_inactive moves by one

    result = export_marts(progress.path, exports)

    folders = len(files_by_bucket(exports / PROGRESS)) + len(
        files_by_bucket(exports / "reporting" / STALLED)
    )
    assert len({p.parent for p in result.files_written if "bucket=" in str(p)}) == folders
    assert_exports_equal_the_warehouse(exports, progress)


def test_a_learner_who_is_no_longer_stalled_leaves_the_export(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress.write([(5, 1, "completed", "2024-05-31"), (5, 2, "completed", "2024-05-31")])

    export_marts(progress.path, exports)

    assert 5 not in {row[0] for row in exported(exports, f"reporting.{STALLED}")}
    assert_exports_equal_the_warehouse(exports, progress)


def test_a_full_refresh_that_dropped_a_learner_is_exported_in_full(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress.full_refresh(drop_learner=9)

    result = export_marts(progress.path, exports)

    assert len({p.parent for p in result.files_written if PROGRESS in str(p)}) == len(
        files_by_bucket(exports / PROGRESS)
    )
    assert 9 not in {row[1] for row in exported(exports, PROGRESS)}
    assert_exports_equal_the_warehouse(exports, progress)


def test_incremental_exports_equal_a_whole_export_whatever_the_runs(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    incremental = tmp_path / "incremental"
    export_marts(progress.path, incremental)
    rng = random.Random(11)
    for run in range(25):
        action = rng.random()
        if action < 0.6:  # a micro-batch: a few learners, new or known, old days and new
            progress.write(
                [
                    (
                        rng.randint(1, 200),
                        rng.randint(1, 3),
                        rng.choice(["in_progress", "completed"]),
                        f"2024-05-{rng.randint(1, 31):02d}",
                    )
                    for _ in range(rng.randint(1, 6))
                ]
            )
        elif action < 0.75:
            progress.rename_learner(rng.randint(1, 60), f"name {run}")
        elif action < 0.85:
            progress.rename_course(rng.randint(1, 3), f"title {run}")
        elif action < 0.95:
            progress.move_as_of(f"2024-06-{rng.randint(1, 28):02d} 00:00:00")
        else:
            progress.full_refresh()
        export_marts(progress.path, incremental)
        assert_exports_equal_the_warehouse(incremental, progress)

    whole = tmp_path / "whole"
    export_marts(progress.path, whole)
    for relation in (PROGRESS, f"reporting.{STALLED}"):
        assert exported(incremental, relation) == exported(whole, relation)


def test_more_rows_rebucket_the_relation_in_full(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(progress.path, exports)
    progress.write(learners_per_course(range(100, 260)))  # 80 rows -> 400: 16 buckets -> 128

    export_marts(progress.path, exports)

    assert bucket_count(exports / PROGRESS) == 128
    assert_exports_equal_the_warehouse(exports, progress)


def test_an_empty_relation_is_one_empty_file_with_its_columns(tmp_path: Path) -> None:
    warehouse = ProgressWarehouse(tmp_path / "edume.duckdb")
    exports = tmp_path / "exports"

    export_marts(warehouse.path, exports)

    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        assert con.execute(f"select count(*) from {PROGRESS}").fetchone() == (0,)
        columns = [row[0] for row in con.execute(f"describe reporting.{STALLED}").fetchall()]
    assert columns == ["learner_id", "first_name", "course_id", "course_title", "days_inactive"]


def test_old_single_files_are_replaced_by_the_bucket_folders(
    tmp_path: Path, progress: ProgressWarehouse
) -> None:
    # An existing deployment: each relation as <name>.parquet, query.duckdb reading the file.
    exports = tmp_path / "exports"
    (exports / "reporting").mkdir(parents=True)
    legacy = [exports / f"{PROGRESS}.parquet", exports / "reporting" / f"{STALLED}.parquet"]
    with duckdb.connect() as con:
        for path in legacy:
            con.execute(f"copy (select 'old' as learner_id) to '{path}' (format parquet)")

    export_marts(progress.path, exports)

    assert not any(path.exists() for path in legacy)
    assert_exports_equal_the_warehouse(exports, progress)
