"""A grouped bar chart of the methods' scores as inline SVG (no plotting dependency)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from nvos.report.table import COLUMNS, format_score

METRIC_COLOURS: dict[str, str] = {
    "J": "#4e79a7",
    "F": "#f28e2b",
    "J&F": "#59a14f",
    "J_union": "#e15759",
    "J_ins": "#b07aa1",
}

BAR = 14
GROUP_GAP = 22
PLOT_HEIGHT = 200
FONT = 11
CHAR_WIDTH = 0.62 * FONT
"""A generous estimate of the mean advance of an 11 px sans-serif character (DejaVu Sans: ~0.55
em), used to leave room for the labels; the browser test checks no label leaves the chart."""
AXIS = 48  # room left of the plot for the tick labels and the axis title
TOP = 46  # title and metric legend
ANGLE = 30  # method labels are rotated by this many degrees


def text_width(text: str) -> float:
    """Estimated width in pixels of ``text`` at :data:`FONT` (see :data:`CHAR_WIDTH`)."""
    return len(text) * CHAR_WIDTH


def bar_chart_svg(
    title: str,
    groups: Sequence[tuple[str, Mapping[str, float | None]]],
    metrics: Sequence[str] = COLUMNS,
) -> str:
    """SVG of ``groups`` = [(method label, {metric: score in [0, 1] or None})], scores ×100.

    One group of bars per method, one bar per metric (missing scores leave a gap), a y axis from
    0 to 100 with grid lines and a title, a legend of the metrics and the exact value as each
    bar's tooltip. Method labels are rotated under their group; the margins grow with the labels
    so that none is cut off, however long.
    """
    cos, sin = math.cos(math.radians(ANGLE)), math.sin(math.radians(ANGLE))
    group_width = len(metrics) * BAR + GROUP_GAP
    centres = [GROUP_GAP / 2 + g * group_width + len(metrics) * BAR / 2 for g in range(len(groups))]
    overhang = [text_width(label) * cos - c for (label, _), c in zip(groups, centres, strict=True)]
    left = AXIS + max([0.0, *overhang])
    labels_height = max([0.0, *(text_width(label) * sin for label, _ in groups)])
    legend_x = [0.0]
    for metric in metrics:
        legend_x.append(legend_x[-1] + 14 + text_width(metric) + 16)
    plot_right = left + max(1, len(groups)) * group_width
    width = round(max(plot_right, AXIS + legend_x[-1], 8 + text_width(title)) + 10)
    base = TOP + PLOT_HEIGHT
    height = round(base + 14 + labels_height + FONT + 6)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}" '
        f'font-family="sans-serif" font-size="{FONT}">',
        f'<text x="8" y="14" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="12" y="{TOP + PLOT_HEIGHT / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + PLOT_HEIGHT / 2:.1f})">score ×100</text>',
    ]
    for tick in range(0, 101, 25):
        y = base - tick * PLOT_HEIGHT / 100
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{plot_right:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for metric, x in zip(metrics, legend_x, strict=False):
        colour = METRIC_COLOURS.get(metric, "#888")
        parts.append(
            f'<rect x="{AXIS + x:.1f}" y="22" width="10" height="10" fill="{colour}"/>'
            f'<text x="{AXIS + x + 14:.1f}" y="31">{html.escape(metric)}</text>'
        )
    for (label, scores), centre in zip(groups, centres, strict=True):
        x0 = left + centre - len(metrics) * BAR / 2
        for m, metric in enumerate(metrics):
            value = scores.get(metric)
            if value is None or value != value:  # None or NaN: no bar
                continue
            bar_height = max(0.0, min(1.0, float(value))) * PLOT_HEIGHT
            parts.append(
                f'<rect x="{x0 + m * BAR:.1f}" y="{base - bar_height:.1f}" width="{BAR - 2}" '
                f'height="{bar_height:.1f}" fill="{METRIC_COLOURS.get(metric, "#888")}">'
                f"<title>{html.escape(label)} {html.escape(metric)}: {format_score(value)}</title>"
                "</rect>"
            )
        cx, cy = left + centre, base + 14
        parts.append(
            f'<text x="{cx:.1f}" y="{cy}" text-anchor="end" '
            f'transform="rotate(-{ANGLE} {cx:.1f} {cy})">{html.escape(label)}</text>'
        )
    parts.append(
        f'<line x1="{left:.1f}" y1="{base}" x2="{plot_right:.1f}" y2="{base}" stroke="#333"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
