"""The results table in the paper's layout: rows = methods grouped by supervision, columns J, F,
J&F, J_union, J_ins (under the ``vost`` protocol: J, J_tr, J_union, J_ins).

Scores are read from ``metrics/<method>/<split>/summary.json`` (values in [0, 1]) and printed ×100
with one decimal, rounded half up as papers print them. The rows, their labels, groups and order
come from :mod:`nvos.report.rows`. Each table names its protocol.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from nvos.errors import NvosError
from nvos.report.rows import GROUPS, MISSING, RowInfo, order_methods
from nvos.types import PathLike

logger = logging.getLogger(__name__)


COLUMNS: tuple[str, ...] = ("J", "F", "J&F", "J_union", "J_ins")
"""The score columns, in the paper's order (keys of summary.json)."""

VOST_COLUMNS: tuple[str, ...] = ("J", "J_tr", "J_union", "J_ins")
"""The columns of a table under the ``vost`` protocol: VOST reports J (no F), and J_tr."""

ORACLE = "oracle"

PROTOCOL_TEXT: dict[str, str] = {
    "all_frames": "every annotated frame of every tagged object, nvos's rule",
    "davis": (
        "DAVIS 2017 semi-supervised: the first and last annotated frames of each clip are not "
        "scored, the objects are the labels of the first annotated frame"
    ),
    "vost": (
        "VOST: the frames and objects of davis; VOST reports J, not F; J_tr is J over the last "
        "quarter of each clip's evaluated frames (VOST's J_last, after the transformation)"
    ),
}
"""What each evaluation protocol scores (:mod:`nvos.evaluation.protocols`), one clause."""

SPLIT_ORDER = ("val", "test", "train")

LEGEND = (
    "Scores ×100 (one decimal). J: region similarity (Jaccard), F: boundary F-measure, "
    "J&F: their mean (DAVIS 2017 semantics, on the frames the table's protocol scores); J_union: "
    "J against the union of the object's instances; J_ins: J against the best-matching single "
    "instance; J_tr (vost protocol): J over the last quarter of each clip's evaluated frames. "
    "Per object: mean over its frames; per split: mean over objects. Rows are grouped by what "
    "the methods were trained with (the supervision column); the oracle chooses with the test "
    f"ground truth. {MISSING}: no metrics."
)
"""The column legend of ``table.md`` and ``index.html``."""


class MetricsError(NvosError, ValueError):
    """A summary.json that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class MethodScores:
    """One method's summary on one split (scores in [0, 1]; None where not computable).

    ``scores`` has :data:`COLUMNS` and ``J_tr`` (the protocol's ``J_last``; None unless ``vost``);
    ``overlaps`` the object-frames whose predicted pixels another object claims and those that
    lose all of them (:mod:`nvos.evaluation.overlaps`; 0 in summaries made before it).
    """

    method: str
    split: str
    scores: Mapping[str, float | None]
    objects: int
    frames: int
    missing_frames: int
    breakdowns: Mapping[str, Mapping[str, float | None]]
    protocol: str = "all_frames"
    overlap_object_frames: int = 0
    lost_object_frames: int = 0


def order_splits(splits: Sequence[str]) -> list[str]:
    """Splits in print order: val, test, train, then the others by name."""
    known = {split: i for i, split in enumerate(SPLIT_ORDER)}
    return sorted(set(splits), key=lambda s: (known.get(s, len(known)), s))


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` and ``noun`` in the right number: '1 object', '2 objects', '0 objects'."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


def format_score(value: float | None) -> str:
    """A score in [0, 1] as the paper prints it: ×100, one decimal, half up (None/NaN: '–')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    scaled = Decimal(repr(round(float(value) * 100, 9)))
    return str(scaled.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _score(value: Any, path: Path, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsError(f"{path}: {key!r} must be a number or null, got {value!r}")
    return float(value)


def _flatten_breakdowns(
    node: Any, path: Path, prefix: str = ""
) -> dict[str, Mapping[str, float | None]]:
    """Leaves of a breakdowns tree: every mapping with a 'J' key, named by its path ('a / b')."""
    if not isinstance(node, Mapping):
        return {}
    if "J" in node:
        return {prefix: {c: _score(node.get(c), path, c) for c in (*COLUMNS, "objects")}}
    leaves: dict[str, Mapping[str, float | None]] = {}
    for key in sorted(node):
        name = f"{prefix} / {key}" if prefix else str(key)
        leaves.update(_flatten_breakdowns(node[key], path, name))
    return leaves


def _short_names(
    leaves: dict[str, Mapping[str, float | None]],
) -> dict[str, Mapping[str, float | None]]:
    """Name each leaf by its last path component where that is unambiguous ('seen / unseen' ->
    'unseen'); keep the full path where two leaves share a last component."""
    last = [name.rsplit(" / ", 1)[-1] for name in leaves]
    return {
        (short if last.count(short) == 1 else name): leaf
        for (name, leaf), short in zip(leaves.items(), last, strict=True)
    }


def read_summary(path: PathLike, method: str, split: str) -> MethodScores:
    """Read one ``summary.json``; raise :class:`MetricsError` naming the file when malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise MetricsError(f"{path}: cannot read the summary: {error}") from error
    if not isinstance(data, Mapping):
        raise MetricsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in (*COLUMNS, "objects", "frames") if key not in data]
    if missing:
        raise MetricsError(f"{path}: missing keys {missing}")
    protocol = data.get("protocol") or {}
    overlaps = data.get("overlaps") or {}
    scores = {c: _score(data[c], path, c) for c in COLUMNS}
    scores["J_tr"] = _score(protocol.get("J_last"), path, "protocol.J_last")
    return MethodScores(
        method=method,
        split=split,
        scores=scores,
        objects=int(data["objects"]),
        frames=int(data["frames"]),
        missing_frames=int(data.get("missing_frames") or 0),
        breakdowns=_short_names(_flatten_breakdowns(data.get("breakdowns") or {}, path)),
        protocol=str(protocol.get("protocol") or "all_frames"),
        overlap_object_frames=int(overlaps.get("object_frames") or 0),
        lost_object_frames=int(overlaps.get("lost_object_frames") or 0),
    )


def load_summaries(
    summaries: Mapping[tuple[str, str], PathLike],
) -> dict[str, dict[str, MethodScores]]:
    """Each (method, split) -> ``summary.json`` read, as split -> method -> scores."""
    by_split: dict[str, dict[str, MethodScores]] = {}
    for (method, split), path in sorted(summaries.items()):
        by_split.setdefault(split, {})[method] = read_summary(path, method, split)
    return by_split


@dataclass(frozen=True)
class Row:
    """One row of a split's table: the method, its label, supervision text and group title, and
    its scores (None when the method has no metrics on the split)."""

    method: str
    label: str
    supervision: str
    group: str
    scores: MethodScores | None


@dataclass(frozen=True)
class SplitTable:
    """The rows of one split's table, in order, and the protocol its scores were made with."""

    split: str
    rows: tuple[Row, ...]

    @property
    def present(self) -> list[MethodScores]:
        """The scores of the methods that have metrics on this split."""
        return [row.scores for row in self.rows if row.scores is not None]

    @property
    def protocols(self) -> list[str]:
        """The protocols of the split's summaries (one, unless some summaries are stale)."""
        return sorted({s.protocol for s in self.present})

    @property
    def columns(self) -> tuple[str, ...]:
        """:data:`VOST_COLUMNS` when every summary used the ``vost`` protocol, else
        :data:`COLUMNS`."""
        return VOST_COLUMNS if self.protocols == ["vost"] else COLUMNS

    def grouped(self) -> list[tuple[str, list[Row]]]:
        """The rows under their group titles, groups without rows left out."""
        groups: list[tuple[str, list[Row]]] = []
        for row in self.rows:
            if not groups or groups[-1][0] != row.group:
                groups.append((row.group, []))
            groups[-1][1].append(row)
        return groups


def split_tables(
    metrics: Mapping[str, Mapping[str, MethodScores]],
    infos: Mapping[str, RowInfo] | None = None,
    methods: Sequence[str] | None = None,
) -> list[SplitTable]:
    """One table per split. Rows: ``methods`` when given, else every method found on any split,
    in :func:`order_methods`; a method without metrics on a split keeps its row, printed with
    '–'. ``infos``: the methods' labels and supervision (:func:`row_infos`)."""
    found = {method for per_split in metrics.values() for method in per_split}
    rows_methods = order_methods(list(methods) if methods is not None else sorted(found), infos)
    tables = []
    for split in order_splits(list(metrics)):
        rows = []
        for method in rows_methods:
            info = (infos or {}).get(method) or RowInfo(method)
            rows.append(Row(method, info.label, info.supervision_text, GROUPS[info.group][0],
                            metrics[split].get(method)))  # fmt: skip
        tables.append(SplitTable(split, tuple(rows)))
    return tables


def protocol_line(table: SplitTable) -> str:
    """The sentence naming the protocol the split's scores were made with."""
    protocols = table.protocols
    if not protocols:
        return ""
    if len(protocols) > 1:
        per = ", ".join(f"{s.method} {s.protocol}" for s in table.present)
        return f"Protocols differ between methods (stale metrics?): {per}."
    name = protocols[0]
    return f"Protocol: {name} ({PROTOCOL_TEXT.get(name, 'see docs/evaluation.md')})."


def overlaps_line(table: SplitTable) -> str:
    """The sentence on predictions two objects claim, per method that has any ('' if none)."""
    found = [s for s in table.present if s.overlap_object_frames]
    if not found:
        return ""
    per = ", ".join(
        f"{s.method} {plural(s.overlap_object_frames, 'object-frame')} "
        f"({s.lost_object_frames} losing all)"
        for s in found
    )
    return (
        "Overlapping predictions (pixels two objects claim on a frame; scored for each object "
        "here, but a one-label PNG such as `nvos export-davis` writes gives them to the higher "
        f"score): {per}."
    )


def breakdown_groups(table: SplitTable) -> list[str]:
    """The split's breakdown groups (sorted) that hold at least one object of some method; groups
    that are empty for every method (e.g. 'unseen' when every object is seen) are left out."""
    groups = {g for s in table.present for g in s.breakdowns}
    return sorted(
        g for g in groups if any((s.breakdowns.get(g) or {}).get("objects") for s in table.present)
    )


def _markdown_rows(
    header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] * text_columns + ["---:"] * (len(header) - text_columns)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def counts_line(table: SplitTable) -> str:
    """The split's object / frame counts (one line; per method where methods disagree)."""
    present = table.present
    if not present:
        return "No metrics on this split."
    counts = {(s.objects, s.frames) for s in present}
    if len(counts) == 1:
        objects, frames = counts.pop()
        line = f"{plural(objects, 'object')}, {plural(frames, 'scored object-frame')}."
    else:
        per_method = ", ".join(f"{s.method} {s.objects}/{s.frames}" for s in present)
        line = f"Objects / object-frames differ between methods: {per_method}."
    missing = [f"{s.method} {s.missing_frames}" for s in present if s.missing_frames]
    if missing:
        line += (
            " Missing predictions (scored as empty masks), in frames: " + ", ".join(missing) + "."
        )
    return line


def score_cells(scores: Mapping[str, float | None] | None, columns: Sequence[str]) -> list[str]:
    """``scores`` (None: no metrics) at ``columns``, as the tables print them."""
    return [format_score(None if scores is None else scores.get(c)) for c in columns]


def breakdown_columns(table: SplitTable) -> tuple[str, ...]:
    """The columns of the split's breakdown tables (the breakdowns have no J_tr)."""
    return tuple(c for c in table.columns if c in COLUMNS)


def markdown_table(table: SplitTable) -> str:
    """The split's table (its rows under their group titles) and its breakdowns as GitHub
    markdown."""
    columns = table.columns
    rows: list[list[str]] = []
    for group, members in table.grouped():
        rows.append([f"**{group}**", "", *[""] * len(columns)])
        rows += [
            [row.label, row.supervision,
             *score_cells(None if row.scores is None else row.scores.scores, columns)]
            for row in members
        ]  # fmt: skip
    lines = [f"## {table.split}", ""]
    lines += [protocol_line(table), ""] if table.present else []
    header = ["Method", "Supervision", *columns]
    lines += _markdown_rows(header, rows, text_columns=2) + [""]
    lines += [counts_line(table), ""]
    overlaps = overlaps_line(table)
    lines += [overlaps, ""] if overlaps else []
    sub_columns = breakdown_columns(table)
    for group in breakdown_groups(table):
        brows = []
        for row in table.rows:
            leaf = None if row.scores is None else row.scores.breakdowns.get(group)
            if leaf is None:
                continue
            objects = leaf.get("objects")
            brows.append(
                [row.label, *score_cells(leaf, sub_columns)]
                + [MISSING if objects is None else str(int(objects))]
            )
        lines += [f"### {table.split}: {group}", ""]
        lines += _markdown_rows(["Method", *sub_columns, "objects"], brows) + [""]
    return "\n".join(lines)


SKIPS_HEADER = ("stage", "jobs", "clips in", "clips out", "clips skipped", "frames skipped",
                "reasons")  # fmt: skip
SKIPS_TEXT = (
    "Every stage accounts for its clips: clips in = clips out + clips skipped. "
    "`skipped.csv` (beside the report folder) lists every skipped clip and frame with its reason."
)


def skips_cells(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row of :data:`SKIPS_HEADER` cells per stage of a ``reconciliation.csv``."""
    keys = ("stage", "jobs", "clips_in", "clips_out", "clips_skipped", "frames_skipped")
    return [[str(row[k]) for k in keys] + [str(row["reasons"]) or MISSING] for row in rows]


def skips_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``## Skipped clips`` section of ``table.md``."""
    lines = ["## Skipped clips", "", SKIPS_TEXT, ""]
    lines.append("| " + " | ".join(SKIPS_HEADER) + " |")
    lines.append("|:---|" + "---:|" * (len(SKIPS_HEADER) - 2) + ":---|")
    lines += ["| " + " | ".join(cells) + " |" for cells in skips_cells(rows)]
    return "\n".join(lines) + "\n"


def markdown_report(tables: Sequence[SplitTable], title: str = "Results", header: str = "") -> str:
    """``table.md``: a title, ``header`` (the run's facts), the column legend, one table per
    split."""
    body = [f"# {title}", "", *([header] if header else []), LEGEND, ""]
    body += [markdown_table(t) for t in tables]
    return "\n".join(body).rstrip() + "\n"
