"""The results table in the paper's layout: rows = methods, columns J, F, J&F, J_union, J_ins.

Scores are read from ``metrics/<method>/<split>/summary.json`` (values in [0, 1]) and printed ×100
with one decimal, rounded half up as papers print them. Row order: baselines (``sam_clip`` first,
then others by name), the ROSA variants (``rosa`` first, then ``rosa_*`` by name), the oracle last.
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
from nvos.types import PathLike

logger = logging.getLogger(__name__)


COLUMNS: tuple[str, ...] = ("J", "F", "J&F", "J_union", "J_ins")
"""The score columns, in the paper's order (keys of summary.json)."""

ORACLE = "oracle"
ROSA = "rosa"

DEFAULT_LABELS: dict[str, str] = {
    "oracle": "SAM upper bound (oracle)",
    "sam_clip": "SAM + CLIP (zero-shot)",
    "grounded_sam": "GroundedSAM",
    "sam3": "SAM 3",
    "rosa": "ROSA",
    "rosa_noctx": "ROSA w/o phrase context",
    "rosa_vna_only": "ROSA (L_VNA only)",
    "rosa_rpa_only": "ROSA (L_RPA only)",
}

SPLIT_ORDER = ("val", "test", "train")
MISSING = "–"


class MetricsError(NvosError, ValueError):
    """A summary.json that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class MethodScores:
    """One method's summary on one split (scores in [0, 1]; None where not computable)."""

    method: str
    split: str
    scores: Mapping[str, float | None]
    objects: int
    frames: int
    missing_frames: int
    breakdowns: Mapping[str, Mapping[str, float | None]]


SHORT_LABELS: dict[str, str] = {"sam_clip": "SAM + CLIP", "oracle": "Oracle keyframes"}
"""Base labels inside a composite name (``sam_clip+temporal``: "SAM + CLIP + temporal")."""

STEP = "+"
"""Separator of a composite method's steps: ``<base>+temporal``, ``<base>+temporal+flow``."""


def is_oracle(method: str) -> bool:
    """Whether ``method`` is the oracle or composed on it (``oracle+flow``): an upper bound."""
    return method.split(STEP, 1)[0] == ORACLE


def _base_key(method: str) -> tuple[int, int, str]:
    if method == ORACLE:
        return (2, 0, method)
    if method == ROSA:
        return (1, 0, method)
    if method.startswith(ROSA + "_"):
        return (1, 1, method)
    return (0, 0 if method == "sam_clip" else 1, method)


def method_sort_key(method: str) -> tuple[int, int, str, int, str]:
    """Sort key of a method: baselines, then ROSA variants, then the oracle; a composite method
    (``rosa+temporal``) right after its base, fewer steps first."""
    base, *steps = method.split(STEP)
    return (*_base_key(base), len(steps), method)


def order_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` (deduplicated) in the table's row order."""
    return sorted(set(methods), key=method_sort_key)


def order_splits(splits: Sequence[str]) -> list[str]:
    """Splits in print order: val, test, train, then the others by name."""
    known = {split: i for i, split in enumerate(SPLIT_ORDER)}
    return sorted(set(splits), key=lambda s: (known.get(s, len(known)), s))


def method_label(method: str, labels: Mapping[str, str] | None = None) -> str:
    """The row label of a method: ``labels`` first, then :data:`DEFAULT_LABELS`; a composite
    method joins its base's label (:data:`SHORT_LABELS` first) and its steps with " + "
    ("ROSA + temporal"); else its name."""
    if labels and method in labels:
        return labels[method]
    if method in DEFAULT_LABELS:
        return DEFAULT_LABELS[method]
    base, *steps = method.split(STEP)
    if steps:
        return " + ".join([SHORT_LABELS.get(base) or method_label(base, labels), *steps])
    return method


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
    return MethodScores(
        method=method,
        split=split,
        scores={c: _score(data[c], path, c) for c in COLUMNS},
        objects=int(data["objects"]),
        frames=int(data["frames"]),
        missing_frames=int(data.get("missing_frames") or 0),
        breakdowns=_short_names(_flatten_breakdowns(data.get("breakdowns") or {}, path)),
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
class SplitTable:
    """The rows of one split's table: (method, label, scores or None when the method is absent)."""

    split: str
    rows: tuple[tuple[str, str, MethodScores | None], ...]

    @property
    def present(self) -> list[MethodScores]:
        """The scores of the methods that have metrics on this split."""
        return [scores for _, _, scores in self.rows if scores is not None]


def split_tables(
    metrics: Mapping[str, Mapping[str, MethodScores]],
    labels: Mapping[str, str] | None = None,
    methods: Sequence[str] | None = None,
) -> list[SplitTable]:
    """One table per split. Rows: ``methods`` when given, else every method found on any split;
    a method without metrics on a split keeps its row, printed with '–'."""
    found = {method for per_split in metrics.values() for method in per_split}
    rows_methods = order_methods(list(methods) if methods is not None else sorted(found))
    tables = []
    for split in order_splits(list(metrics)):
        rows = tuple(
            (method, method_label(method, labels), metrics[split].get(method))
            for method in rows_methods
        )
        tables.append(SplitTable(split, rows))
    return tables


def breakdown_groups(table: SplitTable) -> list[str]:
    """The split's breakdown groups (sorted) that hold at least one object of some method; groups
    that are empty for every method (e.g. 'unseen' when every object is seen) are left out."""
    groups = {g for s in table.present for g in s.breakdowns}
    return sorted(
        g for g in groups if any((s.breakdowns.get(g) or {}).get("objects") for s in table.present)
    )


def _markdown_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
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


def markdown_table(table: SplitTable) -> str:
    """The split's table (and its breakdowns) as GitHub markdown."""
    rows = [
        [label] + [format_score(None if s is None else s.scores[c]) for c in COLUMNS]
        for _, label, s in table.rows
    ]
    lines = [f"## {table.split}", "", *_markdown_rows(["Method", *COLUMNS], rows), ""]
    lines += [counts_line(table), ""]
    for group in breakdown_groups(table):
        brows = []
        for _, label, s in table.rows:
            leaf = None if s is None else s.breakdowns.get(group)
            if leaf is None:
                continue
            objects = leaf.get("objects")
            brows.append(
                [label]
                + [format_score(leaf.get(c)) for c in COLUMNS]
                + [MISSING if objects is None else str(int(objects))]
            )
        lines += [f"### {table.split}: {group}", ""]
        lines += _markdown_rows(["Method", *COLUMNS, "objects"], brows) + [""]
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
    legend = (
        "Scores ×100 (one decimal). J: region similarity (Jaccard), F: boundary F-measure, "
        "J&F: their mean (DAVIS 2017 semantics, all annotated frames); J_union: J against the "
        "union of the object's instances; J_ins: J against the best-matching single instance. "
        "Per object: mean over its annotated frames; per split: mean over objects. "
        f"{MISSING}: no metrics."
    )
    body = [f"# {title}", "", *([header] if header else []), legend, ""]
    body += [markdown_table(t) for t in tables]
    return "\n".join(body).rstrip() + "\n"
