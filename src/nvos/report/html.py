"""``report/index.html``: the tables, bar charts, per-split counts and the qualitative overlays.

A single self-contained page (inline CSS and SVG) that references only files written beside it
(``table.md`` and ``overlays/*.jpg``), by relative paths.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nvos.report.chart import bar_chart_svg
from nvos.report.facts import RunFacts
from nvos.report.overlays import GT_LEGEND, Overlay, colour_hex
from nvos.report.rows import RowInfo, is_oracle
from nvos.report.table import (
    MISSING,
    SKIPS_HEADER,
    SKIPS_TEXT,
    SplitTable,
    breakdown_columns,
    breakdown_groups,
    counts_line,
    overlaps_line,
    protocol_line,
    score_cells,
    skips_cells,
)
from nvos.report.videos import ClipVideo

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.oracle td { color: #666; font-style: italic; }
tr.group th { text-align: left; padding-top: 0.6em; border-bottom: 1px solid #888; }
.legend { list-style: none; padding: 0; }
.legend li { display: inline-block; margin-right: 1.2em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
          vertical-align: middle; border: 1px solid #444; }
.swatch.gt { background: #202020; border: 2px solid #fff; outline: 1px solid #444; }
.overlays img { margin: 0 0.5em 0.5em 0; max-width: 100%; }
.narration { font-style: italic; }
.facts th, .facts td { text-align: left; border: none; padding: 0.1em 1em 0.1em 0; }
.facts th { font-weight: normal; color: #555; }
.warning { background: #fff3cd; border: 1px solid #d4a106; padding: 0.6em 0.9em; }
figure { margin: 0.5em 0 1.5em; }
"""


@dataclass(frozen=True)
class ClipSection:
    """One clip of the qualitative section: its id, split, narration and overlays (in order)."""

    clip_id: str
    split: str
    narration: str
    overlays: tuple[Overlay, ...]
    video: ClipVideo | None = None


def _cells(values: Sequence[str]) -> str:
    return "".join(f"<td>{html.escape(v)}</td>" for v in values)


def _table_html(table: SplitTable) -> str:
    columns = table.columns
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("Method", "Supervision", *columns))
    rows = []
    for group, members in table.grouped():
        rows.append(
            f'<tr class="group"><th colspan="{2 + len(columns)}">{html.escape(group)}</th></tr>'
        )
        for row in members:
            cells = score_cells(None if row.scores is None else row.scores.scores, columns)
            css = ' class="oracle"' if is_oracle(row.method) else ""
            rows.append(f"<tr{css}>{_cells([row.label, row.supervision, *cells])}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _counts_html(table: SplitTable) -> str:
    names = ("Method", "objects", "object-frames", "missing frames", "overlap object-frames")
    head = "<tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    body = []
    for row in table.rows:
        s = row.scores
        values = (
            [str(s.objects), str(s.frames), str(s.missing_frames), str(s.overlap_object_frames)]
            if s is not None
            else [MISSING] * 4
        )
        body.append(f"<tr>{_cells([row.label, *values])}</tr>")
    return f"<table class='counts'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _breakdowns_html(table: SplitTable) -> str:
    parts = []
    columns = breakdown_columns(table)
    for group in breakdown_groups(table):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ("Method", *columns, "objects"))
        rows = []
        for row in table.rows:
            leaf = None if row.scores is None else row.scores.breakdowns.get(group)
            if leaf is None:
                continue
            objects = leaf.get("objects")
            cells = score_cells(leaf, columns)
            cells.append(MISSING if objects is None else str(int(objects)))
            rows.append(f"<tr>{_cells([row.label, *cells])}</tr>")
        parts.append(
            f"<h3>{html.escape(table.split)}: {html.escape(group)}</h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return "".join(parts)


def _skips_html(rows: Sequence[Mapping[str, object]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SKIPS_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for cells in skips_cells(rows)
    )
    return (
        f"<h2>Skipped clips</h2><p>{html.escape(SKIPS_TEXT)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _clip_html(section: ClipSection) -> str:
    legend = section.overlays[0].legend if section.overlays else ()
    items = "".join(
        f'<li><span class="swatch" style="background:{colour_hex(e.colour)}"></span>'
        f"{html.escape(e.text)}</li>"
        for e in legend
    )
    items += (
        '<li><span class="swatch gt"></span>'
        f"{html.escape(GT_LEGEND)}: white outline, all tagged objects</li>"
    )
    images = "".join(
        f'<img src="{html.escape(o.path)}" alt="{html.escape(o.clip_id)} frame {o.frame_index}" '
        f'title="frame {o.frame_index}">'
        for o in section.overlays
    )
    video = ""
    if section.video is not None:
        video = (
            f'<p class="video"><a href="{html.escape(section.video.path)}">&#9654; video of the '
            f"dense masks ({section.video.frames} frames, MP4)</a></p>"
        )
    return (
        f"<section><h3>{html.escape(section.clip_id)} ({html.escape(section.split)})</h3>"
        f'<p class="narration">{html.escape(section.narration)}</p>'
        f'<ul class="legend">{items}</ul><div class="overlays">{images}</div>{video}</section>'
    )


def _facts_html(facts: RunFacts, infos: Mapping[str, RowInfo] | None) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in facts.rows(infos)
    )
    note = facts.random_note
    warning = f'<p class="warning"><strong>{html.escape(note)}</strong></p>' if note else ""
    return f'{warning}<table class="facts"><tbody>{rows}</tbody></table>'


def render_html(
    title: str,
    facts: RunFacts,
    tables: Sequence[SplitTable],
    clips: Sequence[ClipSection],
    overlay_text: str,
    links: Mapping[str, str],
    legend_text: str,
    skips: Sequence[Mapping[str, object]] = (),
    infos: Mapping[str, RowInfo] | None = None,
    sections: Sequence[str] = (),
) -> str:
    """The report page: the run's facts, one section per split, the overlays, the skips.

    ``overlay_text``: the sentences on which method the overlays show and why (shown only with
    ``clips``); ``links``: text -> relative path of files beside the page; ``skips``: the rows of
    ``reconciliation.csv`` (:func:`nvos.skips.read_reconciliation`), if any; ``infos``: the
    methods' labels and supervision (:func:`nvos.report.rows.row_infos`); ``sections``: further
    HTML sections shown after the tables (e.g. the temporal decoding's selection,
    :mod:`nvos.report.selection`, and a sweep's table, :mod:`nvos.report.sweep`). Sections with
    nothing to show are left out.
    """
    body = [f"<h1>{html.escape(title)}</h1>", _facts_html(facts, infos)]
    if links:
        anchors = " · ".join(
            f'<a href="{html.escape(path)}">{html.escape(text)}</a>' for text, path in links.items()
        )
        body.append(f"<p>{anchors}</p>")
    body.append(f"<p>{html.escape(legend_text)}</p>")
    for table in tables:
        groups = [
            (row.label, {c: row.scores.scores.get(c) for c in table.columns})
            for row in table.rows
            if row.scores is not None
        ]
        body += [f"<h2>Split {html.escape(table.split)}</h2>"]
        body += [f"<p>{html.escape(line)}</p>" for line in (protocol_line(table),) if line]
        body += [_table_html(table), f"<p>{html.escape(counts_line(table))}</p>"]
        body += [f"<p>{html.escape(line)}</p>" for line in (overlaps_line(table),) if line]
        body += [_counts_html(table), _breakdowns_html(table)]
        if any(v is not None for _, scores in groups for v in scores.values()):
            chart = bar_chart_svg(f"{table.split}: scores ×100", groups, table.columns)
            body.append(f"<figure>{chart}</figure>")
    body += list(sections)
    if clips:
        body.append("<h2>Qualitative results</h2>")
        body.append(f"<p>{html.escape(overlay_text)}</p>")
        body += [_clip_html(section) for section in clips]
    if skips:
        body.append(_skips_html(skips))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
