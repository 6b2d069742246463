"""What a run expects of imported masks, the checks against it, and the files written.

A run's clips (``clips.parquet``), their tagged objects (each scored by its first phrase) and
annotated frames with the ground truth's size (``annotations.parquet``) are the
:class:`RunTargets`. Every imported mask (:class:`ImportedMask`, from :mod:`nvos.imports.formats`)
names its clip, object and frame; one that names an unknown clip, an object its clip does not
tag, a frame that is not annotated, or a size that is not a resize of the ground truth's frame
stops the import with its file and line (or entry). Two masks for one (clip, object, frame) are
an error naming both. The masks are then written as ``predictions/<method>/<shard>.parquet`` for
every shard of the run (rows of the object's first phrase, ``proposal_id`` -1), with a skip
ledger per shard (:mod:`nvos.skips`) and provenance naming the source.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nvos import storage
from nvos.errors import NvosError
from nvos.evaluation.masks import ResolutionError, check_same_frame
from nvos.evaluation.protocols import label_order
from nvos.evaluation.truth import group_truth, read_annotations, tagged_objects
from nvos.layout import RunLayout
from nvos.methods.rows import PredictionRows
from nvos.skips import Ledger, Skip, write_ledger
from nvos.types import PathLike

logger = logging.getLogger(__name__)

MAX_LISTED = 8


class PredictionImportError(NvosError, ValueError):
    """Imported masks that do not fit the run; the message names the file and line or entry."""


@dataclass(frozen=True)
class ImportedMask:
    """One imported mask: ``where`` it came from (``file:line`` or ``file entry n``), its clip,
    object and frame, its frame size (height, width), COCO RLE counts and score."""

    where: str
    clip_id: str
    object_id: str
    frame_index: int
    height: int
    width: int
    counts: bytes
    score: float = 1.0


@dataclass(frozen=True)
class ClipTarget:
    """One clip of the run: its shard, split, tagged objects (object_id -> first phrase_id, in
    label order), every object id in label order (:func:`~nvos.evaluation.protocols.label_order`,
    the labels ``export-davis`` writes), annotated frames and the ground truth's (height, width)
    (None without annotations)."""

    clip_id: str
    shard: str
    split: str
    objects: Mapping[str, int]
    labels: tuple[str, ...]
    frames: frozenset[int]
    size: tuple[int, int] | None


@dataclass(frozen=True)
class RunTargets:
    """The clips of a run, by id, in ``clips.parquet`` order, and its shards (sorted)."""

    clips: Mapping[str, ClipTarget]
    shards: tuple[str, ...]
    source: str

    @classmethod
    def of_run(cls, layout: RunLayout) -> RunTargets:
        """The targets of the run folder ``layout`` (its clips and annotations tables)."""
        return cls.of_tables(layout.clips, layout.annotations)

    @classmethod
    def of_tables(cls, clips_path: PathLike, annotations_path: PathLike) -> RunTargets:
        """The targets of a ``clips.parquet`` and its ``annotations.parquet``."""
        rows = storage.read_table(
            clips_path, "clips", columns=["clip_id", "split", "narration", "shard"]
        ).to_pylist()
        try:
            truths = group_truth(read_annotations(annotations_path), annotations_path)
            tagged = {r["clip_id"]: tagged_objects(r["narration"], r["clip_id"]) for r in rows}
        except ValueError as error:
            raise PredictionImportError(str(error)) from error
        clips = {}
        for row in rows:
            clip_id, truth = row["clip_id"], truths.get(row["clip_id"])
            objects = {obj.object_id: obj.phrase_id for obj in tagged[clip_id]}
            annotated = {oid for _, oid in truth.masks} if truth is not None else set()
            clips[clip_id] = ClipTarget(
                clip_id=clip_id,
                shard=row["shard"],
                split=row["split"],
                objects=objects,
                labels=tuple(label_order(list(objects), annotated)),
                frames=frozenset(truth.frames) if truth is not None else frozenset(),
                size=(truth.height, truth.width) if truth is not None else None,
            )
        shards = tuple(sorted({row["shard"] for row in rows}))
        return cls(clips, shards, str(clips_path))

    def clip(self, clip_id: str, where: str) -> ClipTarget:
        """The clip ``clip_id``; :class:`PredictionImportError` naming ``where`` if unknown."""
        found = self.clips.get(clip_id)
        if found is None:
            raise PredictionImportError(
                f"{where}: unknown clip {clip_id!r} (not in {self.source}; e.g. "
                f"{_listed(self.clips)})"
            )
        return found


def _listed(values: Iterable[Any]) -> str:
    values = list(values)
    more = f", ... ({len(values)} in all)" if len(values) > MAX_LISTED else ""
    return ", ".join(repr(v) for v in values[:MAX_LISTED]) + more or "none"


def check_mask(mask: ImportedMask, targets: RunTargets) -> ClipTarget:
    """Raise :class:`PredictionImportError` (naming ``mask.where``) unless the run has the mask's
    clip, tags its object, annotates its frame and the mask's size is a resize of that frame's;
    the clip's target otherwise."""
    clip = targets.clip(mask.clip_id, mask.where)
    where = f"{mask.where}: clip {mask.clip_id!r}"
    if mask.object_id not in clip.objects:
        raise PredictionImportError(
            f"{where}: unknown object {mask.object_id!r} (the narration tags "
            f"{_listed(clip.objects)})"
        )
    if clip.size is None:
        raise PredictionImportError(f"{where}: the clip has no annotated frame to predict")
    if mask.frame_index not in clip.frames:
        raise PredictionImportError(
            f"{where}: frame {mask.frame_index} is not an annotated frame (annotated: "
            f"{_listed(sorted(clip.frames))})"
        )
    try:
        check_same_frame(mask.height, mask.width, *clip.size, f"{where} frame {mask.frame_index}")
    except ResolutionError as error:
        raise PredictionImportError(f"wrong size: {error}") from None
    return clip


@dataclass
class ImportSummary:
    """What :func:`import_predictions` wrote and what it left out (counted, never silent)."""

    method: str
    format: str
    source: str
    masks: int = 0
    rows_per_shard: dict[str, int] = field(default_factory=dict)
    clips: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def import_predictions(
    masks: Iterable[ImportedMask],
    targets: RunTargets,
    layout: RunLayout,
    method: str,
    summary: ImportSummary,
    meta: Mapping[str, Any] | None = None,
) -> ImportSummary:
    """Check every mask against ``targets`` and write ``predictions/<method>/<shard>.parquet``
    and its skip ledger for every shard of the run (shards without a mask get no rows).

    Raises :class:`PredictionImportError` at the first mask that does not fit (see
    :func:`check_mask`) or at two masks for one (clip, object, frame); nothing is written then.
    """
    seen: dict[tuple[str, str, int], str] = {}
    by_shard: dict[str, list[ImportedMask]] = defaultdict(list)
    for mask in masks:
        clip = check_mask(mask, targets)
        key = (mask.clip_id, mask.object_id, mask.frame_index)
        if key in seen:
            raise PredictionImportError(
                f"{mask.where}: a second mask for clip {key[0]!r} object {key[1]!r} frame "
                f"{key[2]} (the first: {seen[key]})"
            )
        seen[key] = mask.where
        by_shard[clip.shard].append(mask)
    summary.masks = len(seen)
    record = storage.provenance(
        "import.predictions",
        dict(meta or {}),
        method=method,
        format=summary.format,
        source=summary.source,
    )
    for shard in targets.shards:
        _write_shard(targets, layout, method, shard, by_shard.get(shard, []), record, summary)
    logger.info("import %s: %s", method, summary)
    return summary


def _write_shard(
    targets: RunTargets,
    layout: RunLayout,
    method: str,
    shard: str,
    masks: list[ImportedMask],
    record: dict[str, Any],
    summary: ImportSummary,
) -> None:
    clips = [c for c in targets.clips.values() if c.shard == shard]
    order = {c.clip_id: i for i, c in enumerate(clips)}
    rows = PredictionRows()
    for m in sorted(masks, key=lambda m: (order[m.clip_id], m.object_id, m.frame_index)):
        phrase_id = targets.clips[m.clip_id].objects[m.object_id]
        rows.add(m.clip_id, phrase_id, m.object_id, m.frame_index, -1, m.score, m.height,
                 m.width, m.counts)  # fmt: skip
    predicted = set(rows.clip_ids)
    skips = []
    for clip in clips:
        if clip.clip_id in predicted:
            continue
        reason = (
            "no_tagged_object" if not clip.objects
            else "no_annotations" if clip.size is None
            else "not_in_import"
        )  # fmt: skip
        skips.append(Skip(clip.clip_id, reason))
    for reason, n in Counter(s.reason for s in skips).items():
        summary.skipped[f"clips_{reason}"] = summary.skipped.get(f"clips_{reason}", 0) + n
    stage = f"predictions/{method}"
    ledger = Ledger.of(stage, shard, [c.clip_id for c in clips], predicted, skips)
    rows.write(layout.predictions(method, shard), {**record, "shard": shard})
    write_ledger(ledger, layout.skipped(stage, shard))
    summary.rows_per_shard[shard] = len(rows)
    summary.clips += len(predicted)
