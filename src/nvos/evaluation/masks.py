"""Bring a predicted mask to the ground truth's size: the one rule the oracle and evaluation share.

Predictions (and the proposals they come from) live at the stored frames' resolution, which the
``frames`` stage may have reduced (long side at most ``frames.max_side``); the ground truth lives
at the video's resolution. Every comparison happens at the ground truth's size, after resizing the
predicted mask with nearest-neighbour (``cv2.INTER_NEAREST``), as DESIGN §8 requires.
"""

from __future__ import annotations

import cv2
import numpy as np

from nvos import rle
from nvos.errors import NvosError


class ResolutionError(NvosError, ValueError):
    """A predicted mask whose aspect ratio does not match the ground truth's frame."""


def check_same_frame(height: int, width: int, gt_height: int, gt_width: int, where: str) -> None:
    """Raise :class:`ResolutionError` unless (height, width) is a resize of (gt_height, gt_width).

    A resize keeps the aspect ratio up to rounding: each side must be within one pixel of the other
    side scaled by the ground truth's aspect ratio. ``where`` names the clip / frame in the error.
    """
    if height < 1 or width < 1:
        raise ResolutionError(f"{where}: predicted mask has an empty size {height}x{width}")
    if (height, width) == (gt_height, gt_width):
        return
    width_from_height = height * gt_width / gt_height
    height_from_width = width * gt_height / gt_width
    if abs(width_from_height - width) > 1.0 and abs(height_from_width - height) > 1.0:
        raise ResolutionError(
            f"{where}: predicted mask {height}x{width} is not a resize of the ground truth's "
            f"{gt_height}x{gt_width} frame (aspect ratios differ)"
        )


def to_gt_size(mask: np.ndarray, gt_height: int, gt_width: int) -> np.ndarray:
    """A predicted mask (h, w) as a boolean mask (gt_height, gt_width), nearest-neighbour resized.

    Returned unchanged (as a contiguous bool array) when it already has the ground truth's size.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask (H, W), got shape {mask.shape}")
    if mask.shape == (gt_height, gt_width):
        return mask
    resized = cv2.resize(
        mask.view(np.uint8), (int(gt_width), int(gt_height)), interpolation=cv2.INTER_NEAREST
    )
    return resized.view(bool)


def decode_to_gt_size(
    counts: bytes, height: int, width: int, gt_height: int, gt_width: int, where: str = "mask"
) -> np.ndarray:
    """Decode a predicted RLE mask of size (height, width); return it as (gt_height, gt_width) bool.

    Checks first that the prediction's frame is a resize of the ground truth's
    (:func:`check_same_frame`), so a prediction paired with the wrong frame is an error, not a
    silently stretched mask.
    """
    check_same_frame(height, width, gt_height, gt_width, where)
    return to_gt_size(rle.decode(counts, height, width), gt_height, gt_width)
