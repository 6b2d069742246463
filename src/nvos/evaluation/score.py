"""Score one clip: J, F, J_union and J_ins of each tagged object on each annotated frame.

DESIGN §8: scored per (clip, tagged object, annotated frame) with the DAVIS J and F
(``nvos.metrics``) against the object's ground truth, the union of its instances (so ``J`` and
``J_union`` are the same number; ``J_union`` is kept as its own column because the paper's table
has it). ``J_ins`` scores against the best-matching single instance. A prediction at another
resolution is resized to the ground truth with nearest-neighbour
(:func:`nvos.evaluation.masks.decode_to_gt_size`); a missing prediction is an empty mask and is
counted. Per object: the mean over its frames.

Speed: each ground-truth mask is decoded once, to a C-contiguous array, with its box, crop and
instances (:class:`~nvos.evaluation.truth.ObjectFrameTruth`); J and J_ins come from pixel counts
inside the ground truth's box (:func:`region_scores`, equal to ``nvos.metrics.instance_scores``),
F from ``nvos.metrics.boundary_f`` (which crops to the masks' box itself). A clip is the unit of
work, so clips can be scored in parallel processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nvos.evaluation.masks import decode_to_gt_size
from nvos.evaluation.predictions import PredictedMask
from nvos.evaluation.truth import ClipTruth, ObjectFrameTruth, TaggedObject
from nvos.metrics import DEFAULT_BOUND_TH, InstanceScores, boundary_f
from nvos.metrics.instances import Components, best_jaccard
from nvos.metrics.masks import count
from nvos.metrics.region import jaccard_from_counts


@dataclass(frozen=True)
class ClipTask:
    """Everything needed to score one clip (picklable, for worker processes).

    ``predictions`` maps (object_id, frame_index) to the mask predicted for that object (by its
    first phrase) at an annotated frame; absent keys are missing predictions.
    """

    truth: ClipTruth
    objects: tuple[TaggedObject, ...]
    predictions: Mapping[tuple[str, int], PredictedMask]


@dataclass(frozen=True)
class FrameScores:
    """Per-frame scores of one object, each an array (T,) over the clip's annotated frames."""

    j: np.ndarray
    f: np.ndarray
    j_ins: np.ndarray
    missing: np.ndarray


@dataclass(frozen=True)
class ObjectScores:
    """One object's scores: means over its T annotated frames, and its missing-frame count.

    ``j_union`` equals ``j`` (both are J against the union of the instances).
    """

    clip_id: str
    object_id: str
    phrase_id: int
    phrase: str
    frames: int
    j: float
    f: float
    j_union: float
    j_ins: float
    missing_frames: int


def region_scores(gt: ObjectFrameTruth, pred: np.ndarray) -> InstanceScores:
    """J_union and J_ins of a predicted mask (H, W) bool C-contiguous against one ground truth.

    The same numbers as :func:`nvos.metrics.instance_scores` (``pred``, the instance masks), from
    pixel counts inside the ground truth's box: an instance's intersection with the prediction
    lies in that box, and its union is |instance| + |pred| - intersection (J = 1 when both are
    empty, DAVIS's rule, via :func:`nvos.metrics.region.jaccard_from_counts` and
    :func:`nvos.metrics.instances.best_jaccard`). Connected components are counted on their label
    image in one pass, however many there are.
    """
    n_pred = count(pred)
    if gt.box is None:
        j = jaccard_from_counts(0, n_pred)
        return InstanceScores(j, j)
    y0, y1, x0, x1 = gt.box
    crop = np.ascontiguousarray(pred[y0:y1, x0:x1])
    inter = count(gt.union_crop & crop) if n_pred else 0
    j_union = jaccard_from_counts(inter, gt.union_area + n_pred - inter)
    if len(gt.instances) == 1:
        return InstanceScores(j_union, j_union)
    if not n_pred:
        hits = np.zeros(len(gt.instance_areas), dtype=np.int64)
    elif isinstance(gt.instances, Components):
        hits = gt.instances.intersections(crop)  # one pass over the label image
    else:
        hits = np.array([count(instance & crop) for instance in gt.instances])
    return InstanceScores(j_union, best_jaccard(hits, np.array(gt.instance_areas), n_pred))


def score_frames(
    task: ClipTask, obj: TaggedObject, bound_th: float = DEFAULT_BOUND_TH
) -> FrameScores:
    """Per-frame J, F, J_ins and missing flags of one object over the clip's annotated frames."""
    truth = task.truth
    n = len(truth.frames)
    j, f, j_ins = np.empty(n), np.empty(n), np.empty(n)
    missing = np.zeros(n, dtype=bool)
    empty = np.zeros((truth.height, truth.width), dtype=bool)
    for t, frame_index in enumerate(truth.frames):
        gt = truth.object_frame(obj.object_id, frame_index)
        predicted = task.predictions.get((obj.object_id, frame_index))
        if predicted is None:
            missing[t] = True
            pred = empty
        else:
            where = f"clip {truth.clip_id!r} phrase {obj.phrase_id} frame {frame_index}"
            pred = decode_to_gt_size(
                predicted.counts,
                predicted.height,
                predicted.width,
                truth.height,
                truth.width,
                where,
            )
        j[t], j_ins[t] = region_scores(gt, pred)
        f[t] = boundary_f(gt.union, pred, bound_th=bound_th)
    return FrameScores(j, f, j_ins, missing)


def score_clip(task: ClipTask, bound_th: float = DEFAULT_BOUND_TH) -> list[ObjectScores]:
    """Scores of every tagged object of a clip, in the order of their first phrase.

    A clip without annotated frames scores no object (the caller counts it).
    """
    if not task.truth.frames:
        return []
    out = []
    for obj in task.objects:
        frames = score_frames(task, obj, bound_th)
        j = float(np.mean(frames.j))
        out.append(
            ObjectScores(
                clip_id=task.truth.clip_id,
                object_id=obj.object_id,
                phrase_id=obj.phrase_id,
                phrase=obj.phrase,
                frames=len(frames.j),
                j=j,
                f=float(np.mean(frames.f)),
                j_union=j,
                j_ins=float(np.mean(frames.j_ins)),
                missing_frames=int(frames.missing.sum()),
            )
        )
    return out
