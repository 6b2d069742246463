"""Masked region crops, cut and resized in batches on the device (DESIGN §7, region encoder).

For each proposal of a frame the region encoder sees a **masked crop**, the image a CLIP user gets
from open_clip's own preprocessing of the masked window (:mod:`nvos.features.reference` does
exactly that, one region at a time, for ``features.crop.mode: reference``):

- the crop window is the proposal's box (x, y, w, h) made square around its centre, with side
  ``max(w, h) * (1 + 2 * margin)``, on the pixel grid (:func:`crop_windows`: side and corner
  rounded to whole pixels, at least one pixel), so the object keeps its aspect ratio and the
  centre crop of open_clip's transform is the whole window;
- pixels outside the mask get **the mean colour** (CLIP's normalisation mean, i.e. 0 after the
  model's normalisation ``(x - mean) / std``), and so does the part of the window outside the
  image (it is outside the mask too); the mask is applied at the frame's resolution, before
  resampling, as when the masked frame is cropped and resized;
- the masked window is resized to ``size`` × ``size`` with PIL's antialiased filter (the model's
  preprocessing ``interpolation``, bicubic for CLIP; :mod:`nvos.features.resample`) and clipped
  to the colour range, as PIL's uint8 output is.

On a GPU, the proposals of a frame are done together: their windows are gathered (padded to a
common side, in groups of similar sides, :data:`GROUP_SIDE_RATIO`, :data:`GROUP_ELEMENTS`) and
resized by two batched matrix products with PIL's weights (:mod:`nvos.features.resample`): a few
kernels per frame. On the CPU, where those dense products cost more than the filter's few taps,
each window is resized by ``torch.nn.functional.interpolate(..., antialias=True)``, the same
filter. Either way the result matches open_clip's transform to within PIL's uint8 rounding
(``benchmarks/features.py`` prints the difference). It is the model's input directly:
(N, 3, size, size) float32, normalised. A proposal with an empty mask has no box and no crop:
:func:`masked_crops` rejects it, and the features stage skips and counts it
(:mod:`nvos.features.stage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nvos.features.resample import INTERPOLATIONS, resample_matrix

__all__ = [
    "CROP_MODES",
    "GROUP_ELEMENTS",
    "GROUP_SIDE_RATIO",
    "CropPolicy",
    "crop_windows",
    "masked_crops",
    "normalise_frame",
]

CROP_MODES = ("fast", "reference")
"""``features.crop.mode``: batched crops on the device, or open_clip's transform per region."""

GROUP_ELEMENTS = 1 << 24
"""Most float32 elements (64 MiB) of the padded windows resized in one batch."""

GROUP_SIDE_RATIO = 0.7
"""Windows resized in one batch have sides of at least this fraction of the largest's."""


@dataclass(frozen=True)
class CropPolicy:
    """How a proposal becomes a region crop (recorded in the feature tables' metadata).

    Attributes:
        margin: Context added on every side, as a fraction of the box's long side (>= 0).
        size: Side of the square crop in pixels (the model's input size).
        mean, std: The model's per-channel normalisation (RGB, 0..1 scale); ``mean`` is the
            fill colour.
        interpolation: The model's resampling filter (one of
            :data:`~nvos.features.resample.INTERPOLATIONS` for the fast crops).
        mode: One of :data:`CROP_MODES`.
    """

    margin: float
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    mode: str = "fast"

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"crop margin must be >= 0, got {self.margin}")
        if self.size < 1:
            raise ValueError(f"crop size must be >= 1, got {self.size}")
        if self.mode not in CROP_MODES:
            raise ValueError(f"features.crop.mode must be one of {CROP_MODES}, got {self.mode!r}")
        if self.mode == "fast" and self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"the fast crops implement the resampling filters {INTERPOLATIONS}, the model's "
                f"is {self.interpolation!r}: set features.crop.mode: reference"
            )

    def describe(self) -> dict[str, object]:
        """JSON-able description for provenance."""
        return {
            "margin": self.margin,
            "size": self.size,
            "mode": self.mode,
            "window": "square around the box centre, side max(w, h) * (1 + 2 * margin), "
            "rounded to the pixel grid",
            "fill": "normalisation mean outside the mask and the image, applied before resampling",
            "resample": f"{self.interpolation}, antialiased, clipped to the colour range "
            + ("(batched, PIL's weights)" if self.mode == "fast" else "(open_clip's transform)"),
        }


def crop_windows(boxes_xywh: torch.Tensor, margin: float) -> torch.Tensor:
    """Square crop windows (N, 4) int64 ``(x0, y0, x1, y1)`` on the pixel grid, for boxes (N, 4)
    ``(x, y, w, h)``: side ``max(w, h) * (1 + 2 * margin)`` rounded (at least 1), corner the
    box centre minus half the side, rounded (halves up). Pixel ``i`` covers ``[i, i + 1)``; the
    window holds pixels ``x0 .. x1 - 1`` and may reach outside the image."""
    boxes = boxes_xywh.to(torch.float64)
    long_side = torch.maximum(boxes[:, 2], boxes[:, 3])
    side = torch.clamp(torch.floor(long_side * (1 + 2 * margin) + 0.5), min=1.0)
    x0 = torch.floor(boxes[:, 0] + boxes[:, 2] / 2 - side / 2 + 0.5)
    y0 = torch.floor(boxes[:, 1] + boxes[:, 3] / 2 - side / 2 + 0.5)
    return torch.stack([x0, y0, x0 + side, y0 + side], dim=1).to(torch.int64)


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
    return (frame - _channels(mean, frame)) / _channels(std, frame)


def masked_crops(
    frame: torch.Tensor,
    masks: torch.Tensor,
    boxes_xywh: torch.Tensor,
    policy: CropPolicy,
    batched: bool | None = None,
) -> torch.Tensor:
    """Masked crops of N proposals of one frame, resampled on ``frame.device``.

    Args:
        frame: (1, 3, H, W) float32 frame normalised with ``policy.mean``/``policy.std`` (see
            :func:`normalise_frame`).
        masks: (N, H, W) bool masks of the proposals (non-empty).
        boxes_xywh: (N, 4) boxes ``(x, y, w, h)`` of the masks (e.g. the proposals' ``bbox``).
        policy: Margin, output size, normalisation and filter.
        batched: Resize the windows in batches of matrix products (True) or one at a time
            (False); None: batched on a GPU (module docstring). Both give the same crops.

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
    out = frame.new_zeros((n, 3, policy.size, policy.size))
    if n == 0:
        return out
    boxes = boxes_xywh.to(device=frame.device)
    if bool((boxes[:, 2:] <= 0).any()):
        raise ValueError("masked_crops: a proposal has an empty box (empty mask); skip it first")
    windows = crop_windows(boxes, policy.margin)
    masks = masks.to(device=frame.device, dtype=torch.bool)
    if batched is None:
        batched = frame.device.type == "cuda"
    if batched:
        for group in _groups(windows[:, 2] - windows[:, 0]):
            sides = windows[group, 2] - windows[group, 0]
            width = int(sides.max())
            pixels = _window_pixels(frame, masks, group, windows[group, :2], width)
            weights = resample_matrix(sides, width, policy.size, policy.interpolation)
            out[group] = weights.unsqueeze(1) @ pixels @ weights.unsqueeze(1).transpose(-1, -2)
    else:
        for k, window in enumerate(windows.tolist()):
            out[k] = _resize_window(frame, masks[k], window, policy)
    low = _channels(policy.mean, out).neg() / _channels(policy.std, out)
    high = (1.0 - _channels(policy.mean, out)) / _channels(policy.std, out)
    return torch.maximum(torch.minimum(out, high), low)


def _channels(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """(1, 3, 1, 1) float32 tensor of per-channel ``values`` on ``like``'s device."""
    return torch.tensor(values, dtype=torch.float32, device=like.device).view(1, 3, 1, 1)


def _groups(sides: torch.Tensor) -> list[torch.Tensor]:
    """Indices of the windows in groups of similar sides, largest first: a group's sides are at
    least :data:`GROUP_SIDE_RATIO` of its largest (padding wastes at most half the work) and its
    windows, padded to that side, hold at most :data:`GROUP_ELEMENTS` values (at least one)."""
    order = torch.argsort(sides, descending=True, stable=True)
    ordered = sides[order].tolist()
    groups, start = [], 0
    while start < len(ordered):
        largest = ordered[start]
        end = start + 1
        limit = min(len(ordered), start + max(1, GROUP_ELEMENTS // (3 * largest**2)))
        while end < limit and ordered[end] >= GROUP_SIDE_RATIO * largest:
            end += 1
        groups.append(order[start:end])
        start = end
    return groups


def _window_pixels(
    frame: torch.Tensor, masks: torch.Tensor, index: torch.Tensor, corners: torch.Tensor, width: int
) -> torch.Tensor:
    """(n, 3, width, width) pixels of the windows with top-left ``corners`` (n, 2) ``(x0, y0)``
    of ``masks[index]``: the frame inside the mask, 0 outside it and outside the image."""
    height, frame_width = frame.shape[2:]
    offsets = torch.arange(width, device=frame.device)
    cols, rows = corners[:, 0:1] + offsets, corners[:, 1:2] + offsets  # (n, width)
    keep_rows = (rows >= 0) & (rows < height)
    keep_cols = (cols >= 0) & (cols < frame_width)
    rows, cols = rows.clamp(0, height - 1)[:, :, None], cols.clamp(0, frame_width - 1)[:, None, :]
    keep = masks[index[:, None, None], rows, cols] & keep_rows[:, :, None] & keep_cols[:, None, :]
    pixels = frame[0][:, rows, cols].transpose(0, 1)  # (n, 3, width, width)
    return pixels * keep.unsqueeze(1)


def _resize_window(
    frame: torch.Tensor, mask: torch.Tensor, window: Sequence[int], policy: CropPolicy
) -> torch.Tensor:
    """(3, size, size) crop of one window ``(x0, y0, x1, y1)`` of ``mask`` (H, W), resized by
    ``F.interpolate`` with antialiasing (PIL's filter)."""
    height, width = frame.shape[2:]
    x0, y0, x1, y1 = window
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    pixels = frame[:, :, top:bottom, left:right] * mask[top:bottom, left:right]
    pixels = F.pad(pixels, (left - x0, x1 - right, top - y0, y1 - bottom))
    size = (policy.size, policy.size)
    return F.interpolate(pixels, size, mode=policy.interpolation, antialias=True)[0]
