"""Region crops as a CLIP user makes them: PIL and open_clip's own eval transform, one at a time.

For each proposal: the pixels of its crop window (:func:`nvos.features.regions.crop_windows`)
inside the mask are copied onto a canvas of the mean colour (CLIP's normalisation mean as RGB
uint8), and the canvas goes through ``open_clip.image_transform(size, is_train=False, ...)`` with
the model's mean, std and interpolation: PIL resize of the shortest side (bicubic, antialiased),
centre crop (the whole square window), to tensor, normalise.

This is ``features.crop.mode: reference`` (the paper's zero-shot SAM + CLIP baseline fed CLIP
this way) and the yardstick of the batched crops of :mod:`nvos.features.regions`, which match it
to within PIL's uint8 rounding. It runs on the CPU, about one region per millisecond.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from nvos.features.regions import CropPolicy, crop_windows

__all__ = ["eval_transform", "fill_colour", "reference_crops"]


def eval_transform(policy: CropPolicy) -> Callable[[Image.Image], torch.Tensor]:
    """open_clip's eval transform for the policy's size, normalisation and interpolation."""
    import open_clip

    return open_clip.image_transform(
        policy.size,
        is_train=False,
        mean=policy.mean,
        std=policy.std,
        interpolation=policy.interpolation,
    )


def fill_colour(policy: CropPolicy) -> tuple[int, int, int]:
    """The mean colour as RGB uint8 (the nearest a PIL image holds)."""
    red, green, blue = (int(np.clip(np.round(v * 255), 0, 255)) for v in policy.mean)
    return red, green, blue


def reference_crops(
    image: np.ndarray,
    masks: np.ndarray,
    boxes_xywh: np.ndarray,
    policy: CropPolicy,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
) -> torch.Tensor:
    """(N, 3, size, size) float32 crops of N proposals, on the CPU, one region at a time.

    Args:
        image: RGB uint8 frame (H, W, 3).
        masks: (N, H, W) bool masks (non-empty).
        boxes_xywh: (N, 4) boxes ``(x, y, w, h)`` of the masks.
        policy: Margin, size, normalisation and interpolation (its ``mode`` is not used).
        transform: The eval transform (default :func:`eval_transform` of ``policy``).

    Raises:
        ValueError: Mismatched shapes, or a box with zero width or height (an empty mask).
    """
    height, width = image.shape[:2]
    if masks.shape[1:] != (height, width) or boxes_xywh.shape != (len(masks), 4):
        raise ValueError(
            f"masks {masks.shape} and boxes {boxes_xywh.shape} do not match the frame {image.shape}"
        )
    if (np.asarray(boxes_xywh)[:, 2:] <= 0).any():
        raise ValueError("reference_crops: a proposal has an empty box (empty mask); skip it first")
    transform = transform or eval_transform(policy)
    fill = fill_colour(policy)
    crops = []
    windows = crop_windows(torch.as_tensor(np.asarray(boxes_xywh)), policy.margin).tolist()
    for mask, (x0, y0, x1, y1) in zip(masks, windows, strict=True):
        canvas = Image.new("RGB", (x1 - x0, y1 - y0), fill)
        top, left, bottom, right = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
        inside = np.where(mask[top:bottom, left:right, None], image[top:bottom, left:right], fill)
        canvas.paste(Image.fromarray(inside.astype(np.uint8)), (left - x0, top - y0))
        crops.append(transform(canvas))
    if not crops:
        return torch.zeros((0, 3, policy.size, policy.size))
    return torch.stack(crops)
