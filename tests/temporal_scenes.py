"""A synthetic scene for the temporal tests: a textured square sliding over a textured background.

Frame t (RGB uint8, H x W) shows the square's top-left corner at (ROW, COL0 + STEP * t); its true
mask is :func:`square_mask`. Textures are noise at several scales with a fixed seed, so DIS flow has
something to follow at every pyramid level.
"""

from __future__ import annotations

import cv2
import numpy as np

HEIGHT, WIDTH = 240, 320
SIDE, ROW, COL0, STEP = 60, 80, 40, 3


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise with structure at several scales (blur sigma 2, 6 and 12), stretched to 0..255."""
    total = np.zeros((height, width, 3), np.float32)
    for sigma in (2.0, 6.0, 12.0):
        noise = rng.uniform(-1, 1, (height, width, 3)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        total += blurred / blurred.std()
    total -= total.min()
    return (255 * total / total.max()).astype(np.uint8)


_RNG = np.random.default_rng(7)
BACKGROUND = _texture(_RNG, HEIGHT, WIDTH)
OBJECT = _texture(_RNG, SIDE, SIDE)


def square_mask(t: int, col0: int = COL0) -> np.ndarray:
    """True mask (H, W) bool of the square on frame t (clipped at the frame's edge)."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    col = col0 + STEP * t
    mask[ROW : ROW + SIDE, max(col, 0) : max(col + SIDE, 0)] = True
    return mask


def scene_frame(t: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) frame t of the scene."""
    image = BACKGROUND.copy()
    col = COL0 + STEP * t
    image[ROW : ROW + SIDE, col : col + SIDE] = OBJECT[:, : max(0, min(SIDE, WIDTH - col))]
    return image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0
