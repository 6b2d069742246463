"""Input checks and bounding boxes shared by the region and boundary metrics."""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""A box (y0, y1, x0, x1): rows y0..y1-1 and columns x0..x1-1, empty when y0 == y1."""


def as_mask(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous boolean mask (H, W), as DAVIS casts (``astype(bool)``).

    Raises ValueError naming ``name`` when the array is not 2-D.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask (H, W), got shape {array.shape}")
    if array.dtype != bool:
        array = array.astype(bool)
    return np.ascontiguousarray(array)


def as_mask_pair(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check and cast a (ground truth, prediction, void) triple of masks (H, W) of one shape."""
    gt = as_mask(gt, "ground-truth mask")
    pred = as_mask(pred, "predicted mask")
    if pred.shape != gt.shape:
        raise ValueError(f"predicted mask {pred.shape} and ground-truth mask {gt.shape} differ")
    if void is not None:
        void = as_mask(void, "void mask")
        if void.shape != gt.shape:
            raise ValueError(f"void mask {void.shape} and ground-truth mask {gt.shape} differ")
    return gt, pred, void


def count(mask: np.ndarray) -> int:
    """Number of True pixels of a contiguous boolean mask (H, W)."""
    return int(cv2.countNonZero(mask.view(np.uint8)))


def bounding_box(mask: np.ndarray) -> Box | None:
    """Tight box (y0, y1, x0, x1) of the True pixels of a contiguous boolean mask, None if empty."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    return y, y + h, x, x + w
