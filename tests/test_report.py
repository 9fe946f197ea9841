"""The HTML report, opened in a real headless Chromium: no console errors, no network, charts
that are real pictures; and the report of a warehouse without marts says what is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from demo_support import DemoRun
from headless_chromium import Chromium, PageLog, decode_png, png_size

from pipeline.settings import REPO_ROOT

ARTEFACTS = REPO_ROOT / "test-artifacts"
SECTIONS = ("funnel", "dropoff", "stalled", "overdue", "catalogue", "quality")

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (make system-deps)"
)


@dataclass
class Opened:
    report: Path
    log: PageLog
    charts: list[dict]
    chart_pngs: list[bytes]
    text: str


@pytest.fixture(scope="module")
def opened(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    report = demo.workspace / "report.html"
    with Chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        browser.open(report.as_uri())
        charts = browser.evaluate("""JSON.stringify([...document.querySelectorAll('svg.chart')]
            .map(e => { const r = e.getBoundingClientRect();
                        return {section: e.closest('section').id, x: r.x + scrollX,
                                y: r.y + scrollY, width: r.width, height: r.height}; }))""")
        charts = json.loads(charts)
        firsts = {}
        for chart in charts:
            firsts.setdefault(chart["section"], chart)
        pngs = [
            browser.screenshot({k: firsts[s][k] for k in ("x", "y", "width", "height")})
            for s in ("funnel", "dropoff")
            if s in firsts
        ]
        ARTEFACTS.mkdir(exist_ok=True)
        (ARTEFACTS / "report.png").write_bytes(browser.screenshot())
        text = browser.evaluate("document.body.innerText")
    return Opened(report, browser.log, charts, pngs, text)


def test_report_loads_without_console_errors(opened: Opened) -> None:
    assert opened.log.console_errors == []


def test_report_makes_no_request_beyond_its_own_file(opened: Opened) -> None:
    assert opened.log.requests == [opened.report.as_uri()]


def test_report_source_has_no_script_and_no_external_resource(opened: Opened) -> None:
    html = opened.report.read_text()
    assert "<script" not in html
    assert re.findall(r'(?:src|href)="(?!data:|#)', html) == []
    assert "url(" not in html


def test_funnel_and_dropoff_charts_render_as_non_blank_pictures(opened: Opened) -> None:
    sections = {chart["section"] for chart in opened.charts}
    assert {"funnel", "dropoff", "quality"} <= sections
    assert len(opened.chart_pngs) == 2
    for png in opened.chart_pngs:
        image = decode_png(png)
        assert image.width > 300 and image.height > 80
        colours = image.colours()
        painted = [c for c in colours if c != (255, 255, 255)]
        assert len(painted) / len(colours) > 0.05  # bars, not an empty frame
        assert len({(r // 32, g // 32, b // 32) for r, g, b in painted}) >= 3  # several series


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


def test_report_of_a_warehouse_without_marts_says_what_is_missing(tmp_path: Path) -> None:
    warehouse = tmp_path / "empty.duckdb"
    duckdb.connect(str(warehouse)).close()
    out = tmp_path / "report.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "report",
            "--warehouse",
            str(warehouse),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("Not available") >= 5


def test_report_without_a_warehouse_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "report",
            "--warehouse",
            str(tmp_path / "missing.duckdb"),
            "--out",
            str(tmp_path / "r.html"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no warehouse at" in result.stderr and "materialize" in result.stderr
    assert not (tmp_path / "r.html").exists()
