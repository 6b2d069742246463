"""A grouped bar chart of the methods' scores as inline SVG (no plotting dependency)."""

from __future__ import annotations

import html
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
LEFT, TOP, BOTTOM = 44, 34, 110


def bar_chart_svg(
    title: str,
    groups: Sequence[tuple[str, Mapping[str, float | None]]],
    metrics: Sequence[str] = COLUMNS,
) -> str:
    """SVG of ``groups`` = [(method label, {metric: score in [0, 1] or None})], scores ×100.

    One group of bars per method, one bar per metric (missing scores leave a gap), a y axis from
    0 to 100 with grid lines, a legend of the metrics and the exact value as each bar's tooltip.
    """
    group_width = len(metrics) * BAR + GROUP_GAP
    width = LEFT + max(1, len(groups)) * group_width + 10
    height = TOP + PLOT_HEIGHT + BOTTOM
    base = TOP + PLOT_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{LEFT}" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for tick in range(0, 101, 25):
        y = base - tick * PLOT_HEIGHT / 100
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for i, metric in enumerate(metrics):
        x = LEFT + i * 70
        colour = METRIC_COLOURS.get(metric, "#888")
        parts.append(
            f'<rect x="{x}" y="20" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="29">{html.escape(metric)}</text>'
        )
    for g, (label, scores) in enumerate(groups):
        x0 = LEFT + GROUP_GAP / 2 + g * group_width
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
        cx = x0 + len(metrics) * BAR / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {base + 14})">{html.escape(label)}</text>'
        )
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts)
