"""The HTML report, opened in a real headless Chromium: no console errors, no network, charts
that are real pictures with one mark per figure dbt computed; it reads the exports, not the
warehouse (it does not wait for a writer); exports without the reporting relations say what is
missing; and the mart previews for Dagster carry no personal data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from demo_support import DemoRun
from headless_chromium import Chromium, PageLog, decode_png, png_size

from pipeline.export import DESIGNED_MARTS
from pipeline.reporting.preview import mart_preview, personal_columns, preview_markdown
from pipeline.settings import REPO_ROOT
from pipeline.warehouse_lock import warehouse_lock

ARTEFACTS = REPO_ROOT / "test-artifacts"
SECTIONS = (
    "funnel",
    "dropoff",
    "stalled",
    "overdue",
    "compliance",
    "trend",
    "scores",
    "catalogue",
    "quality",
)
PICTURED = ("funnel", "dropoff", "compliance", "trend", "scores")


@dataclass
class Opened:
    report: Path
    log: PageLog
    charts: list[dict]
    chart_pngs: dict[str, bytes]  # the first chart of each PICTURED section
    text: str


@pytest.fixture(scope="module")
def opened(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    report = demo.workspace / "report.html"
    with Chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        browser.open(report.as_uri())
        charts = browser.evaluate("""JSON.stringify([...document.querySelectorAll('svg.chart')]
            .map(e => { const r = e.getBoundingClientRect();
                        const count = s => e.querySelectorAll(s).length;
                        return {section: e.closest('section').id, x: r.x + scrollX,
                                y: r.y + scrollY, width: r.width, height: r.height,
                                bars: count('rect.bar'), points: count('circle.point'),
                                lines: count('polyline.line'),
                                title: e.querySelector('title').textContent}; }))""")
        charts = json.loads(charts)
        firsts = {}
        for chart in charts:
            firsts.setdefault(chart["section"], chart)
        pngs = {
            s: browser.screenshot({k: firsts[s][k] for k in ("x", "y", "width", "height")})
            for s in PICTURED
            if s in firsts
        }
        ARTEFACTS.mkdir(exist_ok=True)
        (ARTEFACTS / "report.png").write_bytes(browser.screenshot())
        text = browser.evaluate("document.body.innerText")
    return Opened(report, browser.log, charts, pngs, text)


def test_report_loads_without_console_errors(opened: Opened) -> None:
    assert opened.log.console_errors == []


def test_report_makes_no_request_beyond_its_own_file(opened: Opened) -> None:
    assert opened.log.requests == [opened.report.as_uri()]


def test_report_source_has_no_script_and_no_external_resource(demo: DemoRun) -> None:
    html = (demo.workspace / "report.html").read_text()
    assert "<script" not in html
    assert re.findall(r'(?:src|href)="(?!data:|#)', html) == []
    assert "url(" not in html


def exported(demo: DemoRun, sql: str) -> list[tuple]:
    """What dbt computed, as exported: the demo's query.duckdb, read-only."""
    with duckdb.connect(str(demo.workspace / "exports" / "query.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def charts_in(opened: Opened, section: str) -> list[dict]:
    return [chart for chart in opened.charts if chart["section"] == section]


def test_every_chart_renders_as_a_non_blank_picture(opened: Opened) -> None:
    sections = {chart["section"] for chart in opened.charts}
    assert {*PICTURED, "quality"} <= sections
    assert set(opened.chart_pngs) == set(PICTURED)
    for section, png in opened.chart_pngs.items():
        image = decode_png(png)
        assert image.width > 250 and image.height > 80, section
        colours = image.colours()
        painted = [c for c in colours if c != (255, 255, 255)]
        # Bars fill a good share of their frame; the trend's lines and points a smaller one.
        least = 0.01 if section == "trend" else 0.05
        assert len(painted) / len(colours) > least, section  # marks, not an empty frame
        assert len({(r // 32, g // 32, b // 32) for r, g, b in painted}) >= 3, section


def test_screenshot_of_the_whole_report_is_kept_as_an_artefact(opened: Opened) -> None:
    width, height = png_size((ARTEFACTS / "report.png").read_bytes())
    assert width >= 1000 and height > 2000  # the whole page, not the first screen


def test_every_section_shows_the_demos_data(opened: Opened, demo: DemoRun) -> None:
    truth = json.loads((demo.workspace / "truth.json").read_text())
    assert "Not available" not in opened.text
    for course in truth["courses"].values():
        assert course["title"] in opened.text
    assert re.search(r"Showing (the first \d+ of )?\d+ stalled learners", opened.text)
    assert re.search(r"Showing (the first \d+ of )?\d+ overdue mandatory trainings", opened.text)
    assert "https://learn.edume.com/e/c/" in opened.text
    assert "signature_mismatch" in opened.text
    assert "learner.badge.awarded" in opened.text
    duplicates = truth["deliveries"]["accepted"] - truth["deliveries"]["distinct_accepted"]
    assert f"{duplicates:,} duplicates" in opened.text


def test_compliance_chart_has_one_bar_per_team_with_its_overdue_count(
    opened: Opened, demo: DemoRun
) -> None:
    teams = exported(demo, "select team_id, count_overdue from reporting.team_compliance")
    assert teams  # the demo assigns mandatory training: an empty chart would prove nothing
    (chart,) = charts_in(opened, "compliance")
    assert chart["bars"] == len(teams)
    for team_id, overdue in teams:
        assert f"team {team_id}" in opened.text
        assert f"{overdue} overdue" in opened.text
    assert sum(overdue for _, overdue in teams) >= 1


def test_trend_chart_has_two_lines_and_a_point_per_week_and_series(
    opened: Opened, demo: DemoRun
) -> None:
    weeks = exported(demo, "select week_start, count_completed from reporting.weekly_completions")
    completed = exported(
        demo, "select count(*) from fct_learner_course_progress where completed_at is not null"
    )[0][0]
    assert len(weeks) >= 12  # the simulated 90 days, empty weeks included
    assert sum(count for _, count in weeks) == completed > 0
    (chart,) = charts_in(opened, "trend")
    assert chart["lines"] == 2
    assert chart["points"] == 2 * len(weeks)
    assert f"{completed:,} course completions over {len(weeks)} weeks" in opened.text


def test_one_score_histogram_per_assessment_with_a_bar_per_band(
    opened: Opened, demo: DemoRun
) -> None:
    assessments = exported(
        demo,
        "select course_id, activity_id, count(*) as bands, sum(count_attempts) "
        "from reporting.assessment_scores group by all",
    )
    attempts = exported(
        demo,
        "select count(*) from fct_learner_activity "
        "where activity_type = 'assessment' and score is not null",
    )[0][0]
    assert assessments and attempts > 0
    assert sum(row[3] for row in assessments) == attempts
    charts = charts_in(opened, "scores")
    assert len(charts) == len(assessments)
    assert [chart["bars"] for chart in charts] == [10] * len(assessments)
    for course_id, activity_id, _, _ in assessments:
        assert any(f"assessment {activity_id}" in chart["title"] for chart in charts), course_id


def test_funnel_chart_has_a_bar_per_course_and_step(opened: Opened, demo: DemoRun) -> None:
    courses = exported(demo, "select count(*) from reporting.course_funnel")[0][0]
    (chart,) = charts_in(opened, "funnel")
    assert chart["bars"] == 5 * courses > 0


def test_dropoff_charts_have_a_course_each_and_two_bars_per_activity(
    opened: Opened, demo: DemoRun
) -> None:
    activities = dict(
        exported(demo, "select course_id, count(*) from reporting.activity_dropoff group by all")
    )
    charts = charts_in(opened, "dropoff")
    assert len(charts) == len(activities) > 0
    assert sum(chart["bars"] for chart in charts) == 2 * sum(activities.values())


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "report", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_reads_the_exports_while_a_writer_holds_the_warehouse(
    demo: DemoRun, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    with warehouse_lock(demo.warehouse, timeout_s=60):
        result = run_report("--exports", str(demo.workspace / "exports"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "query.duckdb" in out.read_text()
    assert "Not available" not in out.read_text()


def test_report_of_exports_without_the_reporting_relations_says_what_is_missing(
    tmp_path: Path,
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    duckdb.connect(str(exports / "query.duckdb")).close()
    out = tmp_path / "report.html"
    result = run_report("--exports", str(exports), "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("Not available") >= 9


def test_report_without_exports_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = run_report("--exports", str(tmp_path / "none"), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 1
    assert "no exports at" in result.stderr and "materialize" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_mart_previews_show_first_rows_without_names_or_ids_of_people(demo: DemoRun) -> None:
    learner = ["learner_id", "first_name", "last_name", "external_user_id", "count_courses"]
    assert personal_columns(learner) == learner[:4]
    with duckdb.connect(str(demo.warehouse), read_only=True) as con:
        people = con.execute(
            "select first_name, last_name, external_user_id from marts.dim_learners"
        ).fetchall()
        names = {str(value) for row in people for value in row if value is not None}
        assert names
        for mart in DESIGNED_MARTS:
            frame = mart_preview(con, mart)
            columns = [row[0] for row in con.execute(f"describe marts.{mart}").fetchall()]
            assert list(frame.columns) == [c for c in columns if c not in personal_columns(columns)]
            assert 0 < len(frame) <= 5, mart
            markdown = preview_markdown(frame)
            cells = {cell.strip() for line in markdown.splitlines() for cell in line.split("|")}
            assert markdown.startswith("|") and len(markdown.splitlines()) == len(frame) + 2
            assert names.isdisjoint(cells), mart
