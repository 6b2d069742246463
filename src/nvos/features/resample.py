"""Antialiased resampling weights equal to PIL's ``Image.resize`` (what open_clip's transform uses).

PIL resizes separably. Resizing ``n`` pixels to ``m``, output pixel ``i`` is the weighted sum of the
input pixels ``j`` (``0 <= j < n``) with weights ``filter((j + 0.5 - c_i) / s)``, normalised to
sum 1, where ``c_i = (i + 0.5) * n / m`` is the output pixel's centre in input coordinates and
``s = max(n / m, 1)`` stretches the filter when downsampling (antialiasing: every input pixel
contributes, none is skipped). The filters are PIL's: ``bicubic`` (Keys, ``a = -0.5``, support 2)
and ``bilinear`` (the triangle, support 1). ``torch.nn.functional.interpolate(...,
antialias=True)`` implements the same scheme.

:func:`resample_matrix` builds these weights as dense matrices, one per window, so that many
windows of different sizes are resized in one batched matrix product
(:func:`nvos.features.regions.masked_crops`): ``crop = M @ window @ M.T`` for a square window.
PIL itself additionally rounds to uint8 after each of its two passes; that rounding (at most half
a grey level per pass) is the only difference.
"""

from __future__ import annotations

import torch

__all__ = ["INTERPOLATIONS", "resample_matrix"]

INTERPOLATIONS = ("bicubic", "bilinear")
"""The resampling filters the fast crops implement (open_clip's eval ``interpolation`` values)."""

_SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}


def _filter(x: torch.Tensor, interpolation: str) -> torch.Tensor:
    """PIL's filter ``interpolation`` at ``x`` (any shape)."""
    x = x.abs()
    if interpolation == "bilinear":
        return torch.clamp(1.0 - x, min=0.0)
    a = -0.5  # PIL's bicubic
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def resample_matrix(
    sides: torch.Tensor, width: int, size: int, interpolation: str = "bicubic"
) -> torch.Tensor:
    """Weights (N, size, width) float32 resizing N windows of ``sides`` (N,) pixels to ``size``.

    Row ``i`` of matrix ``k`` holds the weights of output pixel ``i`` over input pixels
    ``0 .. width - 1``; columns at and beyond ``sides[k]`` are 0, so windows padded to a common
    ``width`` are resized exactly. Computed in float64 (as PIL does), returned in float32 on
    ``sides.device``.

    Raises:
        ValueError: An unknown ``interpolation``, a side < 1 or > ``width``, or ``size`` < 1.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"resampling filter {interpolation!r} is not one of {INTERPOLATIONS} (the CLIP "
            f"model's preprocessing interpolation); use features.crop.mode: reference"
        )
    if size < 1 or len(sides) and (int(sides.min()) < 1 or int(sides.max()) > width):
        raise ValueError(f"resample_matrix: sides {sides.tolist()} must lie in 1..{width}")
    n = sides.to(torch.float64).view(-1, 1, 1)
    scale = n / size
    stretch = torch.clamp(scale, min=1.0)
    centre = torch.arange(size, dtype=torch.float64, device=sides.device).view(1, -1, 1) + 0.5
    inputs = torch.arange(width, dtype=torch.float64, device=sides.device).view(1, 1, -1)
    weights = _filter((inputs + 0.5 - centre * scale) / stretch, interpolation)
    weights = weights * (inputs < n)
    return (weights / weights.sum(dim=-1, keepdim=True)).to(torch.float32)
