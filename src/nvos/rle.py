"""COCO compressed RLE helpers on top of ``pycocotools.mask``.

Masks in the pipeline are boolean arrays of shape (H, W). On disk they are COCO compressed RLE
``counts`` (bytes) plus ``height``/``width`` columns, exactly as ``pycocotools.mask.encode`` makes
them from a Fortran-ordered uint8 array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class RLEError(ValueError):
    """A run-length encoding that cannot be decoded or does not fit its declared size."""


def encode(mask: np.ndarray) -> bytes:
    """Encode a boolean mask (H, W) as COCO compressed RLE counts."""
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return bytes(rle["counts"])


def encode_many(masks: np.ndarray) -> list[bytes]:
    """Encode a stack of boolean masks (N, H, W) in one pycocotools call."""
    if masks.ndim != 3:
        raise ValueError(f"expected (N, H, W) masks, got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    fortran = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))
    return [bytes(r["counts"]) for r in mask_utils.encode(fortran)]


def decode(counts: bytes | str, height: int, width: int) -> np.ndarray:
    """Decode COCO compressed RLE counts into a boolean mask (height, width)."""
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    rle = {"size": [int(height), int(width)], "counts": counts}
    try:
        return mask_utils.decode(rle).astype(bool)
    except Exception as error:  # pycocotools raises bare exceptions
        raise RLEError(f"cannot decode RLE of size {height}x{width}: {error}") from error


def area(counts: bytes, height: int, width: int) -> int:
    """Number of foreground pixels, without decoding the mask."""
    return int(mask_utils.area({"size": [int(height), int(width)], "counts": counts}))


def bbox(counts: bytes, height: int, width: int) -> tuple[float, float, float, float]:
    """Bounding box (x, y, w, h) of the mask, without decoding it."""
    box = mask_utils.toBbox({"size": [int(height), int(width)], "counts": counts})
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def check_json_rle(obj: Any) -> tuple[int, int, bytes]:
    """Validate a manifest RLE object ``{"size": [h, w], "counts": str}``.

    Returns (height, width, counts) and raises :class:`RLEError` with the reason otherwise. The
    counts are decoded once so that a string that is not a valid RLE of that size is rejected.
    """
    if not isinstance(obj, dict) or "size" not in obj or "counts" not in obj:
        raise RLEError("an RLE must be an object with 'size' and 'counts'")
    size = obj["size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise RLEError(f"RLE 'size' must be [height, width] of positive ints, got {size!r}")
    counts = obj["counts"]
    if isinstance(counts, list):  # uncompressed COCO RLE: convert
        if (
            not all(isinstance(v, int) and v >= 0 for v in counts)
            or sum(counts) != size[0] * size[1]
        ):
            raise RLEError("uncompressed RLE counts must be non-negative ints summing to h*w")
        counts = mask_utils.frPyObjects({"size": size, "counts": counts}, size[0], size[1])[
            "counts"
        ]
    if not isinstance(counts, (str, bytes)) or len(counts) == 0:
        raise RLEError("RLE 'counts' must be a non-empty string")
    raw = counts.encode("ascii") if isinstance(counts, str) else counts
    height, width = size
    if not _counts_sum_ok(raw, height * width):
        raise RLEError(f"RLE 'counts' is malformed or does not cover {height}x{width} pixels")
    return height, width, raw


def _counts_sum_ok(counts: bytes, n_pixels: int) -> bool:
    """Parse COCO's compressed counts string (LEB128-like, 5-bit chunks) and check its total."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(counts):
                return False
            c = counts[p] - 48
            if c < 0 or c > 63:
                return False
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return False
        runs.append(x)
    return sum(runs) == n_pixels
