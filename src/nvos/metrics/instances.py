"""J_union and J_ins: J of a prediction against an object made of several instances (DESIGN §8).

An object of the ground truth may be several instances (the pieces of a cut or torn object).
``J_union`` scores the prediction against the union of the instances (what the official DAVIS /
VOST J does when the pieces share one id); ``J_ins`` scores it against the best-matching single
instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from nvos.metrics.masks import as_mask
from nvos.metrics.region import jaccard


class InstanceScores(NamedTuple):
    """J of one prediction against the union of an object's instances and against the best one."""

    j_union: float
    j_ins: float


def connected_instances(mask: np.ndarray, connectivity: int = 8) -> list[np.ndarray]:
    """Split a mask (H, W) into its connected components, each a boolean mask (H, W).

    8-connectivity by default (diagonal neighbours join a component); 4 is also accepted.
    Components are ordered by cv2's labelling (row-major order of their first pixel). An empty
    mask gives an empty list.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = as_mask(mask, "mask")
    n_labels, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=connectivity)
    return [labels == label for label in range(1, n_labels)]


def instance_scores(
    pred: np.ndarray, instances: Sequence[np.ndarray], void: np.ndarray | None = None
) -> InstanceScores:
    """J_union and J_ins of a predicted mask (H, W) against an object's instance masks (H, W).

    Args:
        pred: predicted mask (H, W).
        instances: the object's instance masks, each (H, W). When the ground truth only gives
            the object's union, pass ``connected_instances(union)`` (8-connected components).
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
    masks = [as_mask(instance, f"instance {i}") for i, instance in enumerate(instances)]
    union = np.logical_or.reduce(masks)
    j_union = jaccard(union, pred, void)
    if len(masks) == 1:
        return InstanceScores(j_union, j_union)
    return InstanceScores(j_union, max(jaccard(mask, pred, void) for mask in masks))
