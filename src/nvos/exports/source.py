"""What the exports read: masks per clip and phrase (a ``dense_masks`` or a ``predictions`` table),
the phrases they belong to, and the category of each phrase (its head noun).

Both tables have the mask columns ``clip_id, phrase_id, object_id, frame_index, score, height,
width, rle_counts``; a ``dense_masks`` table (``source`` column) has a mask per phrase on every
frame, a ``predictions`` table (``proposal_id`` column) on the annotated frames only. An empty
mask means "absent on that frame". Every mask row must belong to a phrase of the phrases table
(its text and char span join the masks back to the narration's words), appear once per
(clip, phrase, frame), and have the size of the clip's other rows; otherwise the export stops with
an :class:`~nvos.export.ExportError` naming the file and the row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage
from nvos.evaluation.overlaps import OverlapCounts
from nvos.export import ExportError
from nvos.types import PathLike

__all__ = [
    "ClipMasks",
    "ExportCounts",
    "HeadNouns",
    "MaskRow",
    "PhraseInfo",
    "read_masks",
    "read_phrases",
]

MASK_COLUMNS = [
    "clip_id", "phrase_id", "object_id", "frame_index", "score", "height", "width", "rle_counts"
]  # fmt: skip
PREPOSITIONS = frozenset(
    "of with in on from for at to into onto under over near by inside behind beside".split()
)


@dataclass
class ExportCounts:
    """What an export wrote and what it left out (never silently)."""

    format: str
    out: str
    clips: int = 0
    frames: int = 0
    tracks: int = 0
    masks: int = 0
    empty_masks: int = 0
    missing_masks: int = 0
    categories: int = 0
    skipped_clips_other_splits: int = 0
    overlaps: OverlapCounts = field(default_factory=OverlapCounts)
    """Pixels two phrases' masks claim (:mod:`nvos.evaluation.overlaps`; DAVIS PNGs only)."""


@dataclass(frozen=True)
class MaskRow:
    """One phrase's mask on one frame: COCO compressed RLE ``counts`` and its score."""

    frame_index: int
    score: float
    counts: bytes


@dataclass
class ClipMasks:
    """The masks of one clip: every frame any row names, and per phrase its rows by frame."""

    clip_id: str
    height: int
    width: int
    tracks: dict[int, dict[int, MaskRow]] = field(default_factory=dict)
    object_ids: dict[int, str | None] = field(default_factory=dict)

    @property
    def frames(self) -> list[int]:
        """The frames of the clip's rows, ascending."""
        return sorted({f for rows in self.tracks.values() for f in rows})


@dataclass(frozen=True)
class PhraseInfo:
    """A phrase of the phrases table, with its category (head noun)."""

    text: str
    char_start: int
    char_end: int
    object_id: str | None
    source: str
    category: str

    def fields(self, phrase_id: int) -> dict[str, Any]:
        """The phrase's fields in an export (the words it joins back to, its object)."""
        return {
            "phrase_id": phrase_id,
            "phrase": self.text,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "object_id": self.object_id,
            "phrase_source": self.source,
        }


def mask_kind(path: PathLike) -> str:
    """``dense_masks`` or ``predictions``: the table ``path`` holds (by its columns)."""
    names = set(pq.read_schema(path).names)
    if "source" in names and "proposal_id" not in names:
        return "dense_masks"
    if "proposal_id" in names:
        return "predictions"
    raise ExportError(f"{path}: neither a dense_masks nor a predictions table (columns {names})")


def read_masks(paths: Sequence[PathLike], clip_ids: set[str] | None = None) -> dict[str, ClipMasks]:
    """The masks of ``paths`` (dense_masks or predictions tables, read in batches) per clip, in
    order of first appearance; with ``clip_ids`` only those clips."""
    clips: dict[str, ClipMasks] = {}
    for path in paths:
        kind = mask_kind(path)
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(columns=MASK_COLUMNS, batch_size=4096):
            declared = pa.schema([storage.SCHEMAS[kind].field(c) for c in MASK_COLUMNS])
            table = storage.conform(pa.Table.from_batches([batch]), declared, str(path))
            for row in table.to_pylist():
                if clip_ids is None or row["clip_id"] in clip_ids:
                    _add(clips, row, path)
    return clips


def _add(clips: dict[str, ClipMasks], row: dict[str, Any], path: PathLike) -> None:
    clip_id, phrase_id, frame = row["clip_id"], int(row["phrase_id"]), int(row["frame_index"])
    where = f"{path}: clip {clip_id!r} phrase {phrase_id} frame {frame}"
    clip = clips.get(clip_id)
    if clip is None:
        clip = clips[clip_id] = ClipMasks(clip_id, int(row["height"]), int(row["width"]))
    if (row["height"], row["width"]) != (clip.height, clip.width):
        raise ExportError(
            f"{where}: mask of {row['height']}x{row['width']}, but the clip's other masks are "
            f"{clip.height}x{clip.width}"
        )
    rows = clip.tracks.setdefault(phrase_id, {})
    if frame in rows:
        raise ExportError(f"{where}: two masks for the same phrase and frame")
    if clip.object_ids.setdefault(phrase_id, row["object_id"]) != row["object_id"]:
        raise ExportError(f"{where}: object id {row['object_id']!r} differs from earlier rows")
    rows[frame] = MaskRow(frame, float(row["score"]), bytes(row["rle_counts"]))


class HeadNouns:
    """The category of a phrase: the lemma of its head noun, lower-case.

    With a spaCy pipeline ``nlp`` (the phrases stage's, :func:`nvos.phrases.load_spacy`) the head
    is the phrase's syntactic root ("wooden spoon" -> ``spoon``, "bottle of water" -> ``bottle``,
    "knives" -> ``knife``); without one, the last word before the first preposition. Results are
    cached per text.
    """

    def __init__(self, nlp: Any | None = None) -> None:
        self.nlp = nlp
        self.cache: dict[str, str] = {}

    def __call__(self, texts: Sequence[str]) -> list[str]:
        todo = sorted({t for t in texts if t not in self.cache})
        if self.nlp is not None:
            for text, doc in zip(todo, self.nlp.pipe(todo), strict=True):
                root = doc[:].root if len(doc) else None
                head = root.lemma_ if root is not None and not root.is_punct else ""
                self.cache[text] = head.lower() or _heuristic_head(text)
        else:
            self.cache.update((text, _heuristic_head(text)) for text in todo)
        return [self.cache[t] for t in texts]


def _heuristic_head(text: str) -> str:
    words = [w.strip(".,;:!?'\"()").lower() for w in text.split()]
    words = [w for w in words if w]
    for i, word in enumerate(words):
        if word in PREPOSITIONS and i > 0:
            return words[i - 1]
    return words[-1] if words else text.lower()


def read_phrases(
    phrases_path: PathLike, clip_ids: set[str], heads: Callable[[Sequence[str]], list[str]]
) -> dict[tuple[str, int], PhraseInfo]:
    """(clip_id, phrase_id) -> :class:`PhraseInfo` for the phrases of ``clip_ids``."""
    rows = [
        r
        for r in storage.read_table(phrases_path, "phrases").to_pylist()
        if r["clip_id"] in clip_ids
    ]
    categories = heads([r["text"] for r in rows])
    return {
        (r["clip_id"], int(r["phrase_id"])): PhraseInfo(
            r["text"], int(r["char_start"]), int(r["char_end"]), r["object_id"], r["source"], cat
        )
        for r, cat in zip(rows, categories, strict=True)
    }


def check_phrases(
    clips: dict[str, ClipMasks], phrases: dict[tuple[str, int], PhraseInfo], phrases_path: PathLike
) -> None:
    """Raise :class:`ExportError` for a mask row whose phrase is not in the phrases table."""
    for clip in clips.values():
        for phrase_id in clip.tracks:
            if (clip.clip_id, phrase_id) not in phrases:
                raise ExportError(
                    f"{phrases_path}: clip {clip.clip_id!r} has masks for phrase {phrase_id}, "
                    "which the phrases table does not have"
                )
