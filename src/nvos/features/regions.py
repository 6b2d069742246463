"""Masked region crops, cut and resized in batches on the device (DESIGN §7, region encoder).

For each proposal of a frame the region encoder sees a **masked crop**:

- the crop window is the proposal's box (x, y, w, h) made square around its centre, with side
  ``max(w, h) * (1 + 2 * margin)`` (at least one pixel), so the object keeps its aspect ratio;
  the part of the window outside the image is outside the mask too (filled as below; frame and
  masks get a one-pixel ring of zeros so that nothing of the border pixels leaks outside);
- the window is resampled to ``size`` × ``size`` pixels with :func:`torchvision.ops.roi_align`
  (bilinear, ``aligned=True``, adaptive sampling: every output pixel averages the input pixels
  under it, so large boxes are downscaled without aliasing), for the frame and for every mask at
  once;
- pixels outside the mask get **the mean colour**: CLIP's normalisation mean, i.e. 0 after the
  model's normalisation ``(x - mean) / std``. The crop is ``crop(normalised frame) × crop(mask)``,
  the mask being resampled as a float, so the mask edge is blended (anti-aliased), not stair-cased.

The result is the model's input directly: (N, 3, size, size) float32, normalised. A proposal with
an empty mask has no box and no crop: :func:`masked_crops` rejects it, and the features stage skips
and counts it (see :mod:`nvos.features.stage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ["CropPolicy", "crop_windows", "masked_crops", "normalise_frame"]


@dataclass(frozen=True)
class CropPolicy:
    """How a proposal becomes a region crop (recorded in the feature tables' metadata).

    Attributes:
        margin: Context added on every side, as a fraction of the box's long side (>= 0).
        size: Side of the square crop in pixels (the model's input size).
    """

    margin: float
    size: int

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"crop margin must be >= 0, got {self.margin}")
        if self.size < 1:
            raise ValueError(f"crop size must be >= 1, got {self.size}")

    def describe(self) -> dict[str, object]:
        """JSON-able description for provenance."""
        return {
            "margin": self.margin,
            "size": self.size,
            "window": "square around the box centre, side max(w, h) * (1 + 2 * margin)",
            "fill": "normalisation mean (0 after normalisation), mask resampled as float",
            "resample": "torchvision roi_align, bilinear, aligned, adaptive sampling",
        }


def crop_windows(boxes_xywh: torch.Tensor, margin: float) -> torch.Tensor:
    """Square crop windows (N, 4) float32 ``(x0, y0, x1, y1)`` for boxes (N, 4) ``(x, y, w, h)``.

    Coordinates are continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``).
    """
    boxes = boxes_xywh.to(torch.float32)
    centre_x = boxes[:, 0] + boxes[:, 2] / 2
    centre_y = boxes[:, 1] + boxes[:, 3] / 2
    side = torch.clamp(torch.maximum(boxes[:, 2], boxes[:, 3]) * (1 + 2 * margin), min=1.0)
    half = side / 2
    return torch.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], dim=1)


def normalise_frame(
    image: np.ndarray | torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
) -> torch.Tensor:
    """(1, 3, H, W) float32 normalised frame on ``device`` from an RGB uint8 image (H, W, 3)."""
    pixels = torch.as_tensor(np.asarray(image)).to(device)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != torch.uint8:
        raise ValueError(
            f"expected an RGB uint8 image (H, W, 3), got {tuple(pixels.shape)} {pixels.dtype}"
        )
    frame = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
    mean_t = torch.tensor(mean, dtype=torch.float32, device=frame.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=frame.device).view(1, 3, 1, 1)
    return (frame - mean_t) / std_t


def masked_crops(
    frame: torch.Tensor,
    masks: torch.Tensor,
    boxes_xywh: torch.Tensor,
    policy: CropPolicy,
) -> torch.Tensor:
    """Masked crops of N proposals of one frame, resampled in one batch on ``frame.device``.

    Args:
        frame: (1, 3, H, W) float32 normalised frame (see :func:`normalise_frame`).
        masks: (N, H, W) bool or float masks of the proposals (non-empty).
        boxes_xywh: (N, 4) boxes ``(x, y, w, h)`` of the masks (e.g. the proposals' ``bbox``).
        policy: Margin and output size.

    Returns:
        (N, 3, size, size) float32 crops, normalised, 0 (the mean colour) outside the mask.

    Raises:
        ValueError: Mismatched shapes, or a box with zero width or height (an empty mask).
    """
    if frame.ndim != 4 or frame.shape[:2] != (1, 3):
        raise ValueError(f"frame must be (1, 3, H, W), got {tuple(frame.shape)}")
    n = masks.shape[0]
    if masks.shape[1:] != frame.shape[2:] or boxes_xywh.shape != (n, 4):
        raise ValueError(
            f"masks {tuple(masks.shape)} and boxes {tuple(boxes_xywh.shape)} do not match the "
            f"frame {tuple(frame.shape)}"
        )
    if n == 0:
        return frame.new_zeros((0, 3, policy.size, policy.size))
    boxes = boxes_xywh.to(device=frame.device, dtype=torch.float32)
    if bool((boxes[:, 2:] <= 0).any()):
        raise ValueError("masked_crops: a proposal has an empty box (empty mask); skip it first")
    # A one-pixel ring of zeros (the mean colour; an empty mask) around frame and masks makes
    # every sample outside the image exactly 0 (roi_align alone repeats the border pixel there).
    windows = crop_windows(boxes, policy.margin) + 1.0
    rois = torch.cat([torch.zeros((n, 1), device=frame.device), windows], dim=1)
    out = (policy.size, policy.size)
    padded = F.pad(frame, (1, 1, 1, 1))
    image_crops = roi_align(padded, rois, out, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    mask_rois = rois.clone()
    mask_rois[:, 0] = torch.arange(n, device=frame.device, dtype=torch.float32)
    mask_input = F.pad(
        masks.to(device=frame.device, dtype=torch.float32).unsqueeze(1), (1, 1, 1, 1)
    )
    mask_crops = roi_align(mask_input, mask_rois, out, 1.0, sampling_ratio=-1, aligned=True)
    return image_crops * mask_crops
