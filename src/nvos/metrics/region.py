"""Region similarity J (Jaccard index) with the exact DAVIS 2017 semantics."""

from __future__ import annotations

import numpy as np

from nvos.metrics.masks import as_mask_pair, count


def jaccard_from_counts(intersection: int, union: int) -> float:
    """J from pixel counts: intersection / union, and 1.0 when the union is empty (DAVIS rule)."""
    if union == 0:
        return 1.0
    return intersection / union


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region similarity J of a predicted mask against the ground truth, as DAVIS ``db_eval_iou``.

    Args:
        gt: ground-truth mask (H, W); any dtype, cast to bool.
        pred: predicted mask (H, W).
        void: optional mask (H, W) of pixels that count neither in the intersection nor the union.

    Returns:
        |P ∩ G ∖ V| / |(P ∪ G) ∖ V|, or 1.0 when that union is empty (both masks empty outside
        the void). GT empty with a non-empty prediction, or the reverse, gives 0.0.
    """
    gt, pred, void = as_mask_pair(gt, pred, void)
    if void is not None:
        keep = ~void
        gt = gt & keep
        pred = pred & keep
    n_gt = count(gt)
    n_pred = count(pred)
    intersection = count(gt & pred) if n_gt and n_pred else 0
    return jaccard_from_counts(intersection, n_gt + n_pred - intersection)
