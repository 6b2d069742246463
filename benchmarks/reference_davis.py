"""Straightforward full-frame DAVIS 2017 J and F, the speed and value reference for nvos.metrics.

Written from the description of the official davis2017-evaluation metrics in
REFERENCE §1 (``docs/reference.md``; no code copied). Everything is computed on the full
(H, W) frame, exactly in the order the official functions do it: cast to bool, remove void,
boundary maps by east / south / south-east XOR, ``cv2.dilate`` with ``skimage.morphology.disk``,
precision / recall with the official empty-map rules. Used by ``benchmarks/metrics.py`` (timing)
and ``tests/test_metrics.py`` (golden values).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.morphology import disk


def reference_jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region similarity J of masks (H, W): |P∩G∖V| / |(P∪G)∖V|, 1 when the union is empty."""
    gt = gt.astype(bool)
    pred = pred.astype(bool)
    keep = np.ones_like(gt) if void is None else np.logical_not(void.astype(bool))
    inter = np.sum((pred & gt) & keep)
    union = np.sum((pred | gt) & keep)
    if np.isclose(union, 0):
        return 1.0
    return float(inter / union)


def reference_seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary map (H, W) bool: a pixel differs from its east, south or south-east neighbour.

    The last row compares with the east neighbour only, the last column with the south neighbour
    only, and the bottom-right pixel is never a boundary pixel.
    """
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def reference_boundary_f(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008
) -> float:
    """Boundary F-measure of a prediction (H, W) against the ground truth (H, W), full frame."""
    keep = np.ones(gt.shape, dtype=bool) if void is None else np.logical_not(void.astype(bool))
    if bound_th >= 1:
        bound_pix = bound_th
    else:
        bound_pix = math.ceil(bound_th * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    pred_boundary = reference_seg2bmap(pred.astype(bool) & keep)
    gt_boundary = reference_seg2bmap(gt.astype(bool) & keep)
    kernel = disk(bound_pix).astype(np.uint8)
    pred_dilated = cv2.dilate(pred_boundary.astype(np.uint8), kernel)
    gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), kernel)
    pred_match = pred_boundary & (gt_dilated > 0)
    gt_match = gt_boundary & (pred_dilated > 0)
    n_pred = int(np.sum(pred_boundary))
    n_gt = int(np.sum(gt_boundary))
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = int(np.sum(pred_match)) / float(n_pred)
        recall = int(np.sum(gt_match)) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
