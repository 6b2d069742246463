"""Boundary F-measure F with the exact DAVIS 2017 semantics, computed on a tight crop.

Why the crop gives identical values (REFERENCE §1.2, ``docs/reference.md``):

- ``seg2bmap`` marks a pixel when its 2x2 block (itself, east, south, south-east) is not
  constant; in the image's last row / column the missing neighbours are ignored. A crop
  [y0, y1) x [x0, x1) whose first row / column is one pixel before the union box of both masks
  (or the image edge) and whose last row / column is one pixel after it (or the image edge) holds
  every boundary pixel of the full frame, and gives each one the full-frame value: either the crop
  edge is the image edge (same rule), or the crop's last row / column and everything beyond it is
  background (no boundary either way).
- ``cv2.dilate`` with its default border adds nothing from outside the image, and the matches
  are only read at boundary pixels, which all lie in the crop; so dilating the crop is exact.
- The tolerance ``bound_pix`` comes from the full frame's diagonal, never the crop's.

On the crop, boundary maps, disk dilations and counts run on bit-packed rows
(``nvos.metrics.bitpack``), which give the same pixels as cv2 on uint8 images; a disk that is not
a stack of centred runs (non-integer ``bound_th`` >= 1) uses ``cv2.dilate`` instead.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from nvos.metrics.bitpack import (
    boundary_maps,
    dilate_packed,
    disk_half_widths,
    disk_kernel,
    pack_rows,
    popcount,
)
from nvos.metrics.masks import Box, as_mask, as_mask_pair, bounding_box, count

DEFAULT_BOUND_TH = 0.008
"""DAVIS default boundary tolerance: a fraction of the image diagonal (values < 1) or pixels."""

_BLOCK_2X2 = np.ones((2, 2), dtype=np.uint8)


def bound_pixels(height: int, width: int, bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary tolerance in pixels: ``bound_th`` if >= 1, else ceil(bound_th * sqrt(H² + W²)).

    (H, W) is the full frame size (480x854 gives 8, 1080x1920 gives 18).
    """
    if bound_th >= 1:
        return bound_th
    return math.ceil(bound_th * math.sqrt(height * height + width * width))


def _boundary_map_u8(mask: np.ndarray) -> np.ndarray:
    """seg2bmap of a boolean mask (H, W) as uint8 0/1: max != min over the 2x2 block at (y, x).

    cv2's morphological gradient with a 2x2 element anchored at its top-left corner is
    max - min over {(y, x), (y, x+1), (y+1, x), (y+1, x+1)}, and cv2's default border ignores the
    neighbours past the last row / column: exactly the DAVIS last-row / last-column rules.
    """
    return cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_GRADIENT, _BLOCK_2X2, anchor=(0, 0))


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary map (H, W) bool of a mask (H, W), as DAVIS ``_seg2bmap``.

    A pixel is a boundary pixel when its label differs from its east, south or south-east
    neighbour; the last row compares with the east neighbour only, the last column with the south
    neighbour only, and the bottom-right pixel is never a boundary pixel (so a full-frame mask has
    no boundary).
    """
    mask = as_mask(mask, "mask")
    return _boundary_map_u8(mask).view(bool)


def _crop_box(box: Box, height: int, width: int) -> Box:
    """The crop around a union box: one pixel more on every side, clipped to the image."""
    y0, y1, x0, x1 = box
    return max(y0 - 1, 0), min(y1 + 1, height), max(x0 - 1, 0), min(x1 + 1, width)


def _counts_cv2(gt: np.ndarray, pred: np.ndarray, bound_pix: float) -> tuple[int, ...]:
    """(n_pred, n_gt, pred_match, gt_match) of cropped masks (h, w), with cv2 on uint8 images.

    Used for disks whose rows are not centred runs (non-integer ``bound_pix``).
    """
    gt_boundary = _boundary_map_u8(gt)
    pred_boundary = _boundary_map_u8(pred)
    kernel = disk_kernel(bound_pix)
    pred_match = count(np.logical_and(pred_boundary, cv2.dilate(gt_boundary, kernel)))
    gt_match = count(np.logical_and(gt_boundary, cv2.dilate(pred_boundary, kernel)))
    n_pred = int(cv2.countNonZero(pred_boundary))
    n_gt = int(cv2.countNonZero(gt_boundary))
    return n_pred, n_gt, pred_match, gt_match


def _counts_packed(
    gt: np.ndarray, pred: np.ndarray, half_widths: tuple[int, ...]
) -> tuple[int, ...]:
    """(n_pred, n_gt, pred_match, gt_match) of cropped masks (h, w), on bit-packed rows.

    pred_match = predicted boundary pixels within the disk of a ground-truth boundary pixel,
    gt_match the reverse; the disk's rows have half-widths ``half_widths``.
    """
    masks = pack_rows([gt, pred], pad_bits=max(half_widths[0], 1))
    boundaries = boundary_maps(masks, gt.shape[1])
    n_gt, n_pred = popcount(boundaries[0]), popcount(boundaries[1])
    if n_gt == 0 or n_pred == 0:
        return n_pred, n_gt, 0, 0
    dilated = dilate_packed(boundaries, half_widths)
    pred_match = popcount(boundaries[1] & dilated[0])
    gt_match = popcount(boundaries[0] & dilated[1])
    return n_pred, n_gt, pred_match, gt_match


def f_from_counts(n_pred: int, n_gt: int, pred_match: int, gt_match: int) -> float:
    """F = 2PR / (P + R) from boundary pixel counts, with the DAVIS empty-boundary rules.

    P = pred_match / n_pred, R = gt_match / n_gt; no pred boundary: P = 1; no gt boundary: R = 1
    (and P = 0 or R = 0 for the other side unless both are empty); F = 0 when P + R = 0.
    """
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = pred_match / float(n_pred)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def boundary_f(
    gt: np.ndarray,
    pred: np.ndarray,
    void: np.ndarray | None = None,
    bound_th: float = DEFAULT_BOUND_TH,
) -> float:
    """Boundary F-measure of a predicted mask against the ground truth (DAVIS ``db_eval_boundary``).

    Args:
        gt: ground-truth mask (H, W); any dtype, cast to bool.
        pred: predicted mask (H, W).
        void: optional mask (H, W); void pixels are set to background in both masks before the
            boundaries are taken (so the void's edge can create boundary pixels).
        bound_th: tolerance, a fraction of the diagonal of the (H, W) frame if < 1, else pixels.

    Returns:
        F in [0, 1]: precision = fraction of predicted boundary pixels within the tolerance disk
        of a ground-truth boundary pixel, recall the reverse. No boundary on either side: 1.0;
        on one side only: 0.0.
    """
    gt, pred, void = as_mask_pair(gt, pred, void)
    height, width = gt.shape
    if void is not None:
        keep = ~void
        gt = gt & keep
        pred = pred & keep
    box = bounding_box(gt | pred)
    if box is None:  # both empty: no boundary on either side
        return 1.0
    y0, y1, x0, x1 = _crop_box(box, height, width)
    gt, pred = gt[y0:y1, x0:x1], pred[y0:y1, x0:x1]
    bound_pix = bound_pixels(height, width, bound_th)  # from the full frame, not the crop
    half_widths = disk_half_widths(bound_pix)
    if half_widths is None:
        return f_from_counts(*_counts_cv2(gt, pred, bound_pix))
    return f_from_counts(*_counts_packed(gt, pred, half_widths))
