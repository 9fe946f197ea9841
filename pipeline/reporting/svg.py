"""Inline SVG charts, generated in Python: no JavaScript, no network, no chart library.

Each function returns one ``<svg class="chart">`` element as a string, sized in pixels, with a
``<title>`` for screen readers. Every label passes through ``html.escape``. The marks that carry
data have a class (``bar``, ``point``, ``line``), one per datum, so a test can count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
FUNNEL_COLOURS = ("#c7d7f0", "#93b4e3", "#5b8fd6", "#2f6bc0", "#16407f")
REACHED_COLOUR, FINISHED_COLOUR, ALERT_COLOUR = "#f2c6a0", "#2f6bc0", "#c0392b"
GOOD_COLOUR, STARTED_COLOUR = "#2e8b57", "#93b4e3"
COMPLIANT_FROM = 0.9  # a team below this compliance rate is drawn in the alert colour


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" {FONT}>'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, content: str, anchor: str = "start", fill: str = "#222") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">'
        f"{escape(content)}</text>"
    )


def _rect(
    x: float, y: float, width: float, height: float, fill: str, tip: str, cls: str = ""
) -> str:
    css = f' class="{cls}"' if cls else ""
    return (
        f'<rect{css} x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
        f'height="{max(height, 0):.1f}" fill="{fill}"><title>{escape(tip)}</title></rect>'
    )


def _clip(label: str, limit: int = 30) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def funnel_chart(
    title: str, steps: Sequence[str], courses: Sequence[tuple[str, Sequence[int]]]
) -> str:
    """One group of horizontal bars per course, one bar per funnel step, on a shared scale."""
    label_w, plot_w, bar_h, gap = 230, 420, 11, 14
    group_h = len(steps) * bar_h + gap
    legend_h = 28
    height = legend_h + max(len(courses), 1) * group_h + 10
    peak = max((max(counts, default=0) for _, counts in courses), default=0) or 1
    body = []
    for index, (step, colour) in enumerate(zip(steps, FUNNEL_COLOURS, strict=False)):
        x = label_w - 120 + index * 110
        body.append(_rect(x, 8, 12, 12, colour, step))
        body.append(_text(x + 16, 18, step))
    for row, (course, counts) in enumerate(courses):
        top = legend_h + row * group_h
        body.append(_text(label_w - 8, top + group_h / 2, _clip(course), "end"))
        for index, count in enumerate(counts):
            y = top + index * bar_h
            width = plot_w * count / peak
            tip = f"{course}: {steps[index]} {count}"
            body.append(_rect(label_w, y, width, bar_h - 2, FUNNEL_COLOURS[index], tip, "bar"))
            body.append(_text(label_w + width + 4, y + bar_h - 3, str(count)))
    return _svg(label_w + plot_w + 60, height, title, body)


def dropoff_chart(title: str, activities: Sequence[tuple[str, int, int]]) -> str:
    """Per activity in course order: learners who reached it, the share who finished over it,
    and the drop-off rate at the right (red above 20 %)."""
    label_w, plot_w, row_h = 150, 260, 20
    height = 24 + max(len(activities), 1) * row_h + 6
    peak = max((reached for _, reached, _ in activities), default=0) or 1
    body = [
        _rect(label_w, 4, 10, 10, REACHED_COLOUR, "reached"),
        _text(label_w + 14, 13, "reached"),
        _rect(label_w + 80, 4, 10, 10, FINISHED_COLOUR, "finished"),
        _text(label_w + 94, 13, "finished"),
    ]
    for row, (label, reached, finished) in enumerate(activities):
        y = 22 + row * row_h
        rate = (reached - finished) / reached if reached else 0.0
        body.append(_text(label_w - 6, y + 12, _clip(label, 22), "end"))
        tip = f"{label}: reached {reached}, finished {finished}, drop-off {rate:.0%}"
        for count, colour in ((reached, REACHED_COLOUR), (finished, FINISHED_COLOUR)):
            body.append(_rect(label_w, y + 2, plot_w * count / peak, row_h - 6, colour, tip, "bar"))
        colour = ALERT_COLOUR if rate > 0.2 else "#555"
        body.append(_text(label_w + plot_w + 8, y + 12, f"{rate:.0%} drop", fill=colour))
    return _svg(label_w + plot_w + 70, height, title, body)


def bar_chart(title: str, bars: Sequence[Bar], colour: str = ALERT_COLOUR) -> str:
    """Plain horizontal bars with their values (e.g. rejected deliveries by reason)."""
    label_w, plot_w, row_h = 180, 240, 22
    height = max(len(bars), 1) * row_h + 8
    peak = max((bar.value for bar in bars), default=0) or 1
    body = []
    for row, bar in enumerate(bars):
        y = 4 + row * row_h
        width = plot_w * bar.value / peak
        body.append(_text(label_w - 6, y + 14, _clip(bar.label, 26), "end"))
        tip = f"{bar.label}: {bar.value:g}"
        body.append(_rect(label_w, y + 3, width, row_h - 6, colour, tip, "bar"))
        body.append(_text(label_w + width + 4, y + 14, f"{bar.value:g}"))
    return _svg(label_w + plot_w + 60, height, title, body)


def compliance_chart(title: str, teams: Sequence[tuple[str, float, int, int]]) -> str:
    """Per team (label, compliance rate 0..1, overdue, assignments): a bar as long as the rate,
    red below :data:`COMPLIANT_FROM`, with the rate and the overdue count at its end."""
    label_w, plot_w, row_h = 120, 300, 22
    height = 22 + max(len(teams), 1) * row_h + 6
    body = [_text(label_w, 13, "share of mandatory trainings completed or not yet due")]
    for row, (label, rate, overdue, assignments) in enumerate(teams):
        y = 20 + row * row_h
        colour = GOOD_COLOUR if rate >= COMPLIANT_FROM else ALERT_COLOUR
        tip = f"{label}: {rate:.0%} compliant, {overdue} overdue of {assignments}"
        body.append(_text(label_w - 6, y + 14, _clip(label, 18), "end"))
        body.append(_rect(label_w, y + 3, plot_w * rate, row_h - 6, colour, tip, "bar"))
        body.append(_text(label_w + plot_w + 6, y + 14, f"{rate:.0%} · {overdue} overdue"))
    return _svg(label_w + plot_w + 130, height, title, body)


def trend_chart(title: str, weeks: Sequence[tuple[str, int, int]]) -> str:
    """Courses started and completed per week (label, started, completed): two lines with a
    point per week, on a shared scale; every fourth week labelled on the x axis."""
    left, plot_w, plot_h, top = 40, 560, 160, 24
    peak = max((max(started, completed) for _, started, completed in weeks), default=0) or 1
    step = plot_w / max(len(weeks) - 1, 1)

    def x(index: int) -> float:
        return left + index * step

    def y(value: int) -> float:
        return top + plot_h - plot_h * value / peak

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        _text(left - 6, top + 4, str(peak), "end", "#666"),
        _text(left - 6, top + plot_h, "0", "end", "#666"),
    ]
    series = (("started", 1, STARTED_COLOUR), ("completed", 2, FINISHED_COLOUR))
    for number, (name, column, colour) in enumerate(series):
        body.append(_rect(left + 10 + number * 100, 6, 10, 10, colour, name))
        body.append(_text(left + 24 + number * 100, 15, name))
        points = " ".join(f"{x(i):.1f},{y(week[column]):.1f}" for i, week in enumerate(weeks))
        body.append(
            f'<polyline class="line" points="{points}" fill="none" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        for index, week in enumerate(weeks):
            body.append(
                f'<circle class="point" cx="{x(index):.1f}" cy="{y(week[column]):.1f}" r="3" '
                f'fill="{colour}"><title>{escape(f"week of {week[0]}: {week[column]} {name}")}'
                "</title></circle>"
            )
    for index, (label, _, _) in enumerate(weeks):
        if index % 4 == 0:
            body.append(_text(x(index), top + plot_h + 16, label, "middle", "#666"))
    return _svg(left + plot_w + 30, top + plot_h + 26, title, body)


def histogram_chart(title: str, bands: Sequence[Bar]) -> str:
    """Vertical bars, one per band in order (e.g. attempts per 10-point score band)."""
    left, bar_w, gap, plot_h, top = 8, 22, 4, 90, 8
    peak = max((band.value for band in bands), default=0) or 1
    body = []
    for index, band in enumerate(bands):
        x = left + index * (bar_w + gap)
        height = plot_h * band.value / peak
        tip = f"{band.label}: {band.value:g}"
        body.append(_rect(x, top + plot_h - height, bar_w, height, FINISHED_COLOUR, tip, "bar"))
        body.append(_text(x + bar_w / 2, top + plot_h + 14, band.label, "middle", "#666"))
    return _svg(left * 2 + len(bands) * (bar_w + gap), top + plot_h + 22, title, body)
