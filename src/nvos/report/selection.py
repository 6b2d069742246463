"""The report's section on temporal decoding: per ``<base>+temporal`` method, every grid point of
its settings with its val J, F, J&F, the chosen one marked (``temporal/<method>/selection.json``,
:mod:`nvos.temporal.select`)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nvos.report.rows import RowInfo, method_label
from nvos.report.table import MISSING, MetricsError, format_score

__all__ = ["read_selections", "selection_html", "selection_markdown"]

HEADER = ("link weight", "absent quantile", "absent score", "val J", "val F", "val J&F", "flips",
          "chosen")  # fmt: skip
TEXT = (
    "Each decoded method's settings are chosen on val (best J&F; ties: the first grid point): "
    "the link term's weight (0 = the per-frame choice) and the absent threshold, a quantile of "
    "the method's own best score per (phrase, keyframe) on val (–: no ABSENT state). The test "
    "rows above use the chosen setting. flips: % of consecutive keyframe pairs where the path "
    "changes object (link IoU of the two chosen proposals < 0.5)."
)


def read_selections(paths: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """method -> its ``selection.json``; raises :class:`MetricsError` naming a bad file."""
    out = {}
    for method, path in paths.items():
        try:
            out[method] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise MetricsError(f"{path}: cannot read the selection: {error}") from error
        if not isinstance(out[method].get("grid"), list):
            raise MetricsError(f"{path}: no 'grid' list")
    return out


def _number(value: Any) -> str:
    return MISSING if value is None else f"{float(value):.4g}"


def _cells(point: Mapping[str, Any]) -> list[str]:
    return [
        _number(point.get("link_weight")),
        _number(point.get("absent_quantile")),
        _number(point.get("absent_score")),
        *(format_score(point.get(key)) for key in ("J", "F", "J&F", "flips")),
        "✓" if point.get("chosen") else "",
    ]


def selection_markdown(
    selections: Mapping[str, Mapping[str, Any]], infos: Mapping[str, RowInfo] | None = None
) -> str:
    """The ``## Temporal decoding`` section of ``table.md`` ('' without selections)."""
    if not selections:
        return ""
    lines = ["## Temporal decoding: settings chosen on val", "", TEXT, ""]
    for method, record in selections.items():
        lines += [f"### {method_label(method, infos)}", ""]
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---:|" * (len(HEADER) - 1) + ":---:|")
        lines += ["| " + " | ".join(_cells(p)) + " |" for p in record["grid"]]
        lines.append("")
    return "\n".join(lines)


def selection_html(
    selections: Mapping[str, Mapping[str, Any]], infos: Mapping[str, RowInfo] | None = None
) -> Sequence[str]:
    """The same section as HTML fragments (none without selections)."""
    if not selections:
        return []
    parts = ["<h2>Temporal decoding: settings chosen on val</h2>", f"<p>{html.escape(TEXT)}</p>"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    for method, record in selections.items():
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(p)) + "</tr>"
            for p in record["grid"]
        )
        parts.append(f"<h3>{html.escape(method_label(method, infos))}</h3>")
        parts.append(f"<table><tr>{head}</tr>{rows}</table>")
    return parts
