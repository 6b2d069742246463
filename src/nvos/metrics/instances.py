"""J_union and J_ins: J of a prediction against an object made of several instances (DESIGN §8).

An object of the ground truth may be several instances (the pieces of a cut or torn object).
``J_union`` scores the prediction against the union of the instances (what the official DAVIS /
VOST J does when the pieces share one id); ``J_ins`` scores it against the best-matching single
instance.

Memory: when the instances are the connected components of a mask (:func:`connected_instances`),
they are kept as one label image with each component's box and area (:class:`Components`), not as
one full-size mask per component. J_ins then needs one pass over the label image whatever the
number of components (a fragmented 480p mask can have about 20,000).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

import cv2
import numpy as np

from nvos.metrics.masks import Box, as_mask, count
from nvos.metrics.region import jaccard


class InstanceScores(NamedTuple):
    """J of one prediction against the union of an object's instances and against the best one."""

    j_union: float
    j_ins: float


@dataclass(frozen=True, eq=False)
class Components(Sequence[np.ndarray]):
    """The connected components of a mask (H, W): a label image and each component's box and area.

    A sequence of N component masks: ``components[k]`` is component k as a full (H, W) bool mask,
    made when asked for (one at a time; nothing holds N full masks). :meth:`crop` gives a
    component inside its box and :meth:`intersections` its overlap with a mask, without any mask
    per component.

    Attributes:
        labels: (H, W) int32; 0 is background, k + 1 is component k.
        boxes: (N, 4) int64; row k is component k's tight box (y0, y1, x0, x1).
        areas: (N,) int64; pixel count of each component.
    """

    labels: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return int(self.areas.shape[0])

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, k: slice) -> list[np.ndarray]: ...

    def __getitem__(self, k: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(k, slice):
            return [self[i] for i in range(len(self))[k]]
        index = range(len(self))[k]  # IndexError past the end, negative indices allowed
        return self.labels == index + 1

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[k] for k in range(len(self)))

    def box(self, k: int) -> Box:
        """Component k's tight box (y0, y1, x0, x1)."""
        y0, y1, x0, x1 = (int(v) for v in self.boxes[k])
        return y0, y1, x0, x1

    def crop(self, k: int) -> np.ndarray:
        """Component k inside its box (:meth:`box`): a bool mask (h, w)."""
        y0, y1, x0, x1 = self.box(k)
        return self.labels[y0:y1, x0:x1] == k + 1

    def intersections(self, mask: np.ndarray) -> np.ndarray:
        """(N,) int64: the pixel count of ``mask`` (H, W) bool inside each component."""
        hits = np.bincount(self.labels[mask], minlength=len(self) + 1)
        return hits[1:].astype(np.int64)


def connected_instances(mask: np.ndarray, connectivity: int = 8) -> Components:
    """Split a mask (H, W) into its connected components (:class:`Components`).

    8-connectivity by default (diagonal neighbours join a component); 4 is also accepted.
    Components are ordered by cv2's labelling (row-major order of their first pixel). An empty
    mask gives no component.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = as_mask(mask, "mask")
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.view(np.uint8), connectivity=connectivity, ltype=cv2.CV_32S
    )
    stats = stats[1:].astype(np.int64)
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    boxes = np.stack([y, y + h, x, x + w], axis=1).reshape(n_labels - 1, 4)
    return Components(labels, boxes, stats[:, cv2.CC_STAT_AREA].copy())


def best_jaccard(intersections: np.ndarray, areas: np.ndarray, n_pred: int) -> float:
    """max over instances k of J_k = inter_k / (area_k + n_pred - inter_k) (1.0 for an empty
    union, the DAVIS rule), from pixel counts: ``intersections`` and ``areas`` (N,), N >= 1.

    The same float as :func:`nvos.metrics.region.jaccard_from_counts` per instance (one IEEE
    division each).
    """
    inter = np.asarray(intersections, dtype=np.int64)
    union = np.asarray(areas, dtype=np.int64) + n_pred - inter
    j = np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)
    return float(j.max())


def instance_scores(
    pred: np.ndarray, instances: Sequence[np.ndarray], void: np.ndarray | None = None
) -> InstanceScores:
    """J_union and J_ins of a predicted mask (H, W) against an object's instance masks (H, W).

    Args:
        pred: predicted mask (H, W).
        instances: the object's instance masks, each (H, W). When the ground truth only gives
            the object's union, pass ``connected_instances(union)`` (8-connected components,
            scored from the label image without a mask per component).
        void: optional void mask (H, W), passed to every J.

    Returns:
        j_union = J(union of the instances, pred); j_ins = max over instances of J(instance,
        pred). With no instance (object absent in this frame) both are J(empty, pred): 1.0 for an
        empty prediction, else 0.0.
    """
    pred = as_mask(pred, "predicted mask")
    if len(instances) == 0:
        j_empty = jaccard(np.zeros_like(pred), pred, void)
        return InstanceScores(j_empty, j_empty)
    if isinstance(instances, Components):
        return _component_scores(pred, instances, void)
    masks = [as_mask(instance, f"instance {i}") for i, instance in enumerate(instances)]
    union = np.logical_or.reduce(masks)
    j_union = jaccard(union, pred, void)
    if len(masks) == 1:
        return InstanceScores(j_union, j_union)
    return InstanceScores(j_union, max(jaccard(mask, pred, void) for mask in masks))


def _component_scores(
    pred: np.ndarray, components: Components, void: np.ndarray | None
) -> InstanceScores:
    """:func:`instance_scores` against the connected components of a mask, from counts."""
    union = components.labels > 0
    j_union = jaccard(union, pred, void)
    if len(components) == 1:
        return InstanceScores(j_union, j_union)
    if void is None:
        areas = components.areas
    else:
        void = as_mask(void, "void mask")
        pred = pred & ~void
        areas = components.intersections(~void)
    return InstanceScores(j_union, best_jaccard(components.intersections(pred), areas, count(pred)))
