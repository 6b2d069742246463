"""What is scored: the tagged objects of a clip and their ground truth on its annotated frames.

An evaluation clip's narration tags each object phrase as ``[phrase]<object_id>``
(:func:`nvos.tags.parse_tags`); ``phrase_id`` is the 0-based order of the phrase in the narration.
The same object may be tagged by several phrases ("[the pan]<3> ... [it]<3>"): it is one object
(DESIGN §8 scores per tagged object), described by its **first** phrase.

The ground truth of an object at an annotated frame (a frame with at least one row in
``annotations.parquet`` for the clip) is the union of its instance masks; an object with no row at
that frame is absent there (an empty mask).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nvos import rle, storage
from nvos.metrics import connected_instances
from nvos.metrics.instances import Components
from nvos.metrics.masks import Box, bounding_box, count
from nvos.tags import TagError, parse_tags
from nvos.types import PathLike


@dataclass(frozen=True, slots=True)
class TaggedObject:
    """An object tagged in a narration: its id, its phrases' ids (reading order), first phrase."""

    object_id: str
    phrase_ids: tuple[int, ...]
    phrase: str

    @property
    def phrase_id(self) -> int:
        """The phrase whose predictions score this object (its first phrase)."""
        return self.phrase_ids[0]


def tagged_objects(narration: str, clip_id: str = "?") -> tuple[TaggedObject, ...]:
    """The distinct tagged objects of a narration, in order of their first phrase.

    Raises ValueError naming the clip when the narration's tags are malformed.
    """
    try:
        phrases = parse_tags(narration).phrases
    except TagError as error:
        raise ValueError(f"clip {clip_id!r}: malformed narration tags: {error}") from error
    ids: dict[str, list[int]] = {}
    texts: dict[str, str] = {}
    for phrase_id, phrase in enumerate(phrases):
        ids.setdefault(phrase.object_id, []).append(phrase_id)
        texts.setdefault(phrase.object_id, phrase.text)
    return tuple(TaggedObject(oid, tuple(pids), texts[oid]) for oid, pids in ids.items())


@dataclass(frozen=True)
class ClipTruth:
    """The ground truth of one clip.

    Attributes:
        clip_id: The clip.
        height, width: The ground truth's frame size (H, W).
        frames: The annotated frame indices, ascending.
        masks: (frame_index, object_id) -> the object's instance RLEs at that frame, in instance
            order (COCO compressed counts of (H, W) masks).
    """

    clip_id: str
    height: int
    width: int
    frames: tuple[int, ...]
    masks: Mapping[tuple[int, str], tuple[bytes, ...]]

    def object_frame(self, object_id: str, frame_index: int) -> ObjectFrameTruth:
        """Decode the object's ground truth at one annotated frame (absent: empty)."""
        return ObjectFrameTruth.decode(
            self.masks.get((frame_index, object_id), ()), self.height, self.width
        )


@dataclass(frozen=True)
class ObjectFrameTruth:
    """One object's decoded ground truth at one frame, ready for J, J_ins and F.

    Attributes:
        union: The object mask (H, W) bool, C-contiguous (empty when the object is absent).
        box: Tight box (y0, y1, x0, x1) of ``union``; None when it is empty.
        union_crop: ``union`` inside ``box`` (h, w) bool (0 x 0 when empty).
        instances: The instances inside ``box``: the listed instance masks, each (h, w) bool,
            when the data gives several, otherwise the 8-connected components of the union
            (:class:`~nvos.metrics.instances.Components` of the crop, which holds every foreground
            pixel, so they are the full frame's components; a label image, not a mask each).
            Empty when the object is absent.
        union_area, instance_areas: Their pixel counts.
    """

    union: np.ndarray
    box: Box | None
    union_crop: np.ndarray
    instances: tuple[np.ndarray, ...] | Components
    union_area: int
    instance_areas: tuple[int, ...]

    @classmethod
    def decode(cls, counts: Sequence[bytes], height: int, width: int) -> ObjectFrameTruth:
        """Decode an object's instance RLEs (possibly none) of size (height, width)."""
        masks = [np.ascontiguousarray(rle.decode(c, height, width)) for c in counts]
        if not masks:
            union = np.zeros((height, width), dtype=bool)
        elif len(masks) == 1:
            union = masks[0]
        else:
            union = np.logical_or.reduce(masks)
        box = bounding_box(union)
        if box is None:
            return cls(union, None, np.zeros((0, 0), dtype=bool), (), 0, ())
        y0, y1, x0, x1 = box
        crop = np.ascontiguousarray(union[y0:y1, x0:x1])
        if len(masks) > 1:
            listed = tuple(np.ascontiguousarray(m[y0:y1, x0:x1]) for m in masks)
            return cls(union, box, crop, listed, count(crop), tuple(count(m) for m in listed))
        components = connected_instances(crop)
        areas = tuple(int(a) for a in components.areas)
        return cls(union, box, crop, components, count(crop), areas)


def read_annotations(annotations_path: PathLike, clip_ids: Iterable[str] | None = None) -> pa.Table:
    """Rows of ``annotations.parquet`` (declared columns plus an optional ``exhaustive`` column).

    ``clip_ids`` keeps only those clips (filtered while reading).
    """
    filters = None
    if clip_ids is not None:
        wanted = pa.array(sorted(set(clip_ids)), pa.string())
        filters = pc.field("clip_id").isin(wanted)
    table = pq.read_table(annotations_path, filters=filters)
    declared = storage.conform(table, storage.SCHEMAS["annotations"], str(annotations_path))
    if "exhaustive" in table.column_names:
        declared = declared.append_column("exhaustive", table.column("exhaustive"))
    return declared


def group_truth(table: pa.Table, source: PathLike = "annotations") -> dict[str, ClipTruth]:
    """Group annotation rows per clip into :class:`ClipTruth` (nothing decoded yet).

    Raises ValueError naming the clip when its masks do not all share one frame size, or when an
    (object, frame, instance) appears twice.
    """
    columns = {
        name: table.column(name).to_pylist()
        for name in ("clip_id", "frame_index", "object_id", "instance", "height", "width")
    }
    counts = table.column("rle_counts").to_pylist()
    rows: dict[str, list[int]] = {}
    for i, clip_id in enumerate(columns["clip_id"]):
        rows.setdefault(clip_id, []).append(i)
    truths: dict[str, ClipTruth] = {}
    for clip_id, indices in rows.items():
        sizes = {(columns["height"][i], columns["width"][i]) for i in indices}
        if len(sizes) != 1:
            raise ValueError(
                f"{source}: clip {clip_id!r} has masks of several sizes {sorted(sizes)}"
            )
        height, width = sizes.pop()
        instances: dict[tuple[int, str], dict[int, bytes]] = {}
        for i in indices:
            key = (int(columns["frame_index"][i]), str(columns["object_id"][i]))
            per_object = instances.setdefault(key, {})
            instance = int(columns["instance"][i])
            if instance in per_object:
                raise ValueError(
                    f"{source}: clip {clip_id!r} frame {key[0]} object {key[1]!r}: instance "
                    f"{instance} appears twice"
                )
            per_object[instance] = counts[i]
        masks = {key: tuple(v[k] for k in sorted(v)) for key, v in instances.items()}
        frames = tuple(sorted({frame for frame, _ in masks}))
        truths[clip_id] = ClipTruth(clip_id, int(height), int(width), frames, masks)
    return truths


def exhaustive_flags(table: pa.Table) -> dict[tuple[str, str], bool] | None:
    """(clip_id, object_id) -> exhaustive, from an optional ``exhaustive`` annotation column.

    An object is exhaustive when all its rows say so (a null counts as False). None when the
    table has no such column.
    """
    if "exhaustive" not in table.column_names:
        return None
    flags = pc.fill_null(table.column("exhaustive").cast(pa.bool_()), False).to_pylist()
    out: dict[tuple[str, str], bool] = {}
    for clip_id, object_id, flag in zip(
        table.column("clip_id").to_pylist(),
        table.column("object_id").to_pylist(),
        flags,
        strict=True,
    ):
        key = (clip_id, object_id)
        out[key] = out.get(key, True) and bool(flag)
    return out
