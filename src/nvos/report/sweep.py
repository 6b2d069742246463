"""The report's "ROSA sweep" section: every setting of ``rosa.sweep`` with its val scores, the one
chosen on val marked (``sweep/sweep.csv``, :mod:`nvos.rosa.sweep`)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from nvos.report.table import format_score

__all__ = ["SWEEP_HEADER", "sweep_cells", "sweep_html", "sweep_markdown"]

SWEEP_HEADER = ("variant", "settings", "val J&F", "val J", "val VNA", "chosen")


def _sweep_text(rows: Sequence[Mapping[str, str]]) -> str:
    basis = rows[0]["basis"] if rows else "val_jf"
    how = "the highest val J&F" if basis == "val_jf" else "the lowest validation VNA (no labels)"
    return (
        f"The `rosa` row is the setting chosen by {how}; test was not read to choose. "
        "Scores ×100; val VNA: the lowest validation VNA loss of the train log."
    )


def _number(value: str, scale: bool) -> str:
    if not value:
        return "–"
    return format_score(float(value)) if scale else f"{float(value):.3f}"


def sweep_cells(rows: Sequence[Mapping[str, str]]) -> list[list[str]]:
    """One row of :data:`SWEEP_HEADER` cells per setting of a ``sweep.csv``."""
    return [
        [
            r["variant"],
            r["settings"],
            _number(r["val_jf"], True),
            _number(r["val_j"], True),
            _number(r["val_vna"], False),
            "**chosen**" if r["chosen"] == "True" else "",
        ]
        for r in rows
    ]


def sweep_markdown(rows: Sequence[Mapping[str, str]]) -> str:
    """The ``## ROSA sweep`` section of ``table.md``."""
    lines = ["## ROSA sweep (chosen on val)", "", _sweep_text(rows), ""]
    lines.append("| " + " | ".join(SWEEP_HEADER) + " |")
    lines.append("|:---|:---|---:|---:|---:|:---|")
    lines += ["| " + " | ".join(cells) + " |" for cells in sweep_cells(rows)]
    return "\n".join(lines) + "\n"


def sweep_html(rows: Sequence[Mapping[str, str]]) -> str:
    """The same section for ``index.html``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SWEEP_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.replace('**', ''))}</td>" for c in cells) + "</tr>"
        for cells in sweep_cells(rows)
    )
    return (
        f"<h2>ROSA sweep (chosen on val)</h2><p>{html.escape(_sweep_text(rows))}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
