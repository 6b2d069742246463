"""J and F on COCO compressed RLE masks (the pipeline's storage format), and IoU matrices.

All masks of one call share one frame size (height, width); ``counts`` are COCO compressed RLE
counts (bytes or str) as stored in the ``rle_counts`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from nvos import rle
from nvos.metrics.boundary import DEFAULT_BOUND_TH, boundary_f
from nvos.metrics.region import jaccard

Counts = bytes | str


def _coco(counts: Counts, height: int, width: int) -> dict:
    raw = counts.encode("ascii") if isinstance(counts, str) else counts
    return {"size": [int(height), int(width)], "counts": raw}


def iou_matrix(
    pred_counts: Sequence[Counts],
    gt_counts: Sequence[Counts],
    height: int,
    width: int,
    empty_iou: float = 1.0,
) -> np.ndarray:
    """IoU of every prediction against every ground-truth mask, shape (P, G), float64.

    Uses ``pycocotools.mask.iou`` (no decoding), with DAVIS's rule that two empty masks have
    IoU ``empty_iou`` = 1 (pycocotools says 0; the temporal link term wants 0). Entry [p, g]
    equals ``jaccard(gt_g, pred_p)``. Used for oracle selection: for each ground-truth object the
    proposal with the highest IoU.
    """
    n_pred, n_gt = len(pred_counts), len(gt_counts)
    if n_pred == 0 or n_gt == 0:
        return np.zeros((n_pred, n_gt), dtype=np.float64)
    preds = [_coco(c, height, width) for c in pred_counts]
    gts = [_coco(c, height, width) for c in gt_counts]
    ious = np.asarray(mask_utils.iou(preds, gts, [0] * n_gt), dtype=np.float64).reshape(
        n_pred, n_gt
    )
    pred_empty = np.asarray(mask_utils.area(preds)) == 0
    gt_empty = np.asarray(mask_utils.area(gts)) == 0
    ious[np.outer(pred_empty, gt_empty)] = empty_iou
    return ious


def jaccard_rle(
    gt_counts: Counts,
    pred_counts: Counts,
    height: int,
    width: int,
    void_counts: Counts | None = None,
) -> float:
    """J of RLE masks, identical to ``jaccard`` on the decoded masks (H, W)."""
    if void_counts is None:
        return float(iou_matrix([pred_counts], [gt_counts], height, width)[0, 0])
    return jaccard(
        rle.decode(gt_counts, height, width),
        rle.decode(pred_counts, height, width),
        rle.decode(void_counts, height, width),
    )


def boundary_f_rle(
    gt_counts: Counts,
    pred_counts: Counts,
    height: int,
    width: int,
    void_counts: Counts | None = None,
    bound_th: float = DEFAULT_BOUND_TH,
) -> float:
    """F of RLE masks: ``boundary_f`` on the decoded masks (H, W)."""
    void = None if void_counts is None else rle.decode(void_counts, height, width)
    return boundary_f(
        rle.decode(gt_counts, height, width),
        rle.decode(pred_counts, height, width),
        void,
        bound_th,
    )
