"""Inline SVG charts, generated in Python: no JavaScript, no network, no chart library.

Each function returns one ``<svg class="chart">`` element as a string, sized in pixels, with a
``<title>`` for screen readers. Every label passes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
FUNNEL_COLOURS = ("#c7d7f0", "#93b4e3", "#5b8fd6", "#2f6bc0", "#16407f")
REACHED_COLOUR, FINISHED_COLOUR, ALERT_COLOUR = "#f2c6a0", "#2f6bc0", "#c0392b"


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


def _rect(x: float, y: float, width: float, height: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{height:.1f}" '
        f'fill="{fill}"><title>{escape(tip)}</title></rect>'
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
            body.append(_rect(label_w, y, width, bar_h - 2, FUNNEL_COLOURS[index], tip))
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
        body.append(_rect(label_w, y + 2, plot_w * reached / peak, row_h - 6, REACHED_COLOUR, tip))
        body.append(
            _rect(label_w, y + 2, plot_w * finished / peak, row_h - 6, FINISHED_COLOUR, tip)
        )
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
        body.append(_rect(label_w, y + 3, width, row_h - 6, colour, f"{bar.label}: {bar.value:g}"))
        body.append(_text(label_w + width + 4, y + 14, f"{bar.value:g}"))
    return _svg(label_w + plot_w + 60, height, title, body)
