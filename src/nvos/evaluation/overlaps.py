"""Pixels claimed by two objects' predictions on one frame, and what a one-label image keeps.

nvos scores each object's mask on its own, so two objects may claim a pixel (two phrases picking
one proposal). An indexed PNG (``nvos export-davis``, the official DAVIS / VOST evaluators) has
one label per pixel: where masks overlap the higher score wins (:func:`compose_labels`), and an
object can lose part or all of its mask there. :func:`count_overlaps` counts the pixels claimed
twice, the object-frames that lose pixels and those that lose every pixel; the export reports
them for the PNGs it writes, and the evaluation (:func:`clip_overlaps`) for every scored method,
so the report shows how far an official score on the export can differ from nvos's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nvos.evaluation.masks import decode_to_gt_size
from nvos.evaluation.predictions import PredictedMask
from nvos.evaluation.score import ClipTask

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ObjectMask:
    """One object's mask on one frame: label 1..K, score (decides overlaps), (H, W) bool."""

    label: int
    score: float
    mask: np.ndarray


@dataclass
class OverlapCounts:
    """Pixels claimed by several objects' masks (summed over frames), the object-frames that
    lose pixels in the one-label image, those that lose all, and a few examples."""

    pixels: int = 0
    object_frames: int = 0
    lost_object_frames: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: OverlapCounts) -> None:
        """Add ``other``'s counts (and examples, up to the first few) to these."""
        self.pixels += other.pixels
        self.object_frames += other.object_frames
        self.lost_object_frames += other.lost_object_frames
        self.examples.extend(other.examples[: MAX_EXAMPLES - len(self.examples)])

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable counts (the ``overlaps`` entry of ``summary.json``)."""
        return {
            "pixels": self.pixels,
            "object_frames": self.object_frames,
            "lost_object_frames": self.lost_object_frames,
            "examples": list(self.examples),
        }


def compose_labels(masks: Sequence[ObjectMask], height: int, width: int) -> np.ndarray:
    """Paint object masks of size (height, width) into a (height, width) uint8 label map.

    Where masks overlap, the higher score wins; equal scores go to the lower label.
    """
    labels = np.zeros((height, width), dtype=np.uint8)
    for item in sorted(masks, key=lambda m: (m.score, -m.label)):  # the last painted wins
        if item.mask.shape != (height, width):
            raise ValueError(
                f"mask of label {item.label} is {item.mask.shape}, not {height}x{width}"
            )
        labels[item.mask] = item.label
    return labels


def count_overlaps(
    masks: Sequence[ObjectMask], labels: np.ndarray, counts: OverlapCounts, where: str
) -> None:
    """Count in ``counts`` the pixels claimed by several of ``masks``, the object-frames that
    lose pixels to another object in the label map ``labels`` (H, W), and those that lose all."""
    if len(masks) < 2:
        return
    counts.pixels += int((np.sum([m.mask for m in masks], axis=0) > 1).sum())
    for m in masks:
        area = int(m.mask.sum())
        kept = int((labels[m.mask] == m.label).sum())
        if kept == area:
            continue
        counts.object_frames += 1
        counts.lost_object_frames += int(kept == 0)
        if len(counts.examples) < MAX_EXAMPLES:
            counts.examples.append(f"{where} label {m.label}: {kept} of {area} pixels")


def clip_overlaps(task: ClipTask) -> OverlapCounts:
    """The overlaps of one clip's scored predictions on its evaluated frames, labels in the
    order of the task's objects (first phrase first), masks at the ground truth's size."""
    truth = task.truth
    labels = {obj.object_id: i + 1 for i, obj in enumerate(task.objects)}
    per_frame: dict[int, list[tuple[str, PredictedMask]]] = defaultdict(list)
    for (object_id, frame), predicted in task.predictions.items():
        if object_id in labels:
            per_frame[frame].append((object_id, predicted))
    counts = OverlapCounts()
    for frame in sorted(per_frame):
        if len(per_frame[frame]) < 2:
            continue
        masks = []
        for object_id, p in per_frame[frame]:
            where = f"clip {truth.clip_id!r} frame {frame} object {object_id!r}"
            mask = decode_to_gt_size(p.counts, p.height, p.width, truth.height, truth.width, where)
            masks.append(ObjectMask(labels[object_id], p.score, mask))
        composed = compose_labels(masks, truth.height, truth.width)
        count_overlaps(masks, composed, counts, f"{truth.clip_id}/{frame}")
    return counts
