"""Textures of the demo: counter tops and material shading of objects.

Kitchen style: wood, tiles and stone counters; gloss, speckle, grain, brushed, pores and skin
materials. Workshop style: cutting-mat, concrete, pegboard and tread-plate bench tops; ribbed,
enamel, weave, satin, hammered and polished materials.

All functions are vectorised numpy / cv2; images are float32 RGB in 0..255.
"""

from __future__ import annotations

import cv2
import numpy as np

from nvos.demo.vocabulary import Counter


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth value noise (height, width) float32 in about [0, 1], features ~``cell`` pixels."""
    gh = max(2, int(np.ceil(height / cell)) + 2)
    gw = max(2, int(np.ceil(width / cell)) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def counter_texture(
    rng: np.random.Generator, counter: Counter, height: int, width: int
) -> np.ndarray:
    """A counter top seen from above: float32 RGB image (height, width, 3)."""
    base = np.asarray(counter.colour, dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if counter.texture == "wood":
        plank = float(rng.uniform(38, 64))
        index = np.floor(yy / plank)
        tint = 0.88 + 0.24 * rng.random(int(index.max()) + 1).astype(np.float32)
        warp = smooth_noise(rng, height, width, 40.0)
        grain = np.sin(yy * 0.9 + 9.0 * warp + 3.0 * index) * 0.5 + 0.5
        fine = smooth_noise(rng, height, width, 3.0)
        shade = tint[index.astype(int)] * (0.86 + 0.16 * grain**3 + 0.05 * fine)
        shade = np.where((yy % plank) < 1.5, 0.62, shade)
    elif counter.texture == "tiles":
        tile = float(rng.uniform(34, 52))
        ti, tj = np.floor(yy / tile).astype(int), np.floor(xx / tile).astype(int)
        tint = 0.93 + 0.1 * rng.random((int(ti.max()) + 1, int(tj.max()) + 1)).astype(np.float32)
        shade = tint[ti, tj] * (0.97 + 0.04 * smooth_noise(rng, height, width, 6.0))
        grout = ((yy % tile) < 2.0) | ((xx % tile) < 2.0)
        shade = np.where(grout, 0.7, shade)
    elif counter.texture == "stone":
        veins = np.abs(np.sin(xx * 0.02 + yy * 0.013 + 7.0 * smooth_noise(rng, height, width, 50)))
        speck = smooth_noise(rng, height, width, 2.0)
        shade = 0.9 + 0.1 * speck + 0.12 * (veins < 0.08)
    else:
        shade = bench_shade(rng, counter.texture, yy, xx)
    return (base[None, None, :] * shade[..., None]).astype(np.float32)


def bench_shade(
    rng: np.random.Generator, texture: str, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Brightness (H, W) float32 of a workshop bench top at pixel rows ``yy`` / columns ``xx``."""
    height, width = yy.shape
    if texture == "mat":  # self-healing cutting mat: a fine grid, every fifth line bold
        cell = float(rng.uniform(11, 15))
        fy, fx = np.floor(yy / cell).astype(int), np.floor(xx / cell).astype(int)
        line_y, line_x = (yy % cell) < 1.0, (xx % cell) < 1.0
        bold = (line_y & (fy % 5 == 0)) | (line_x & (fx % 5 == 0))
        wear = smooth_noise(rng, height, width, 30.0)
        return np.where(bold, 1.45, np.where(line_y | line_x, 1.2, 0.94 + 0.08 * wear))
    if texture == "concrete":  # blotches, grit and small dark pits
        blotch = smooth_noise(rng, height, width, 28.0)
        grit = rng.random((height, width), dtype=np.float32)
        pits = smooth_noise(rng, height, width, 1.5) > 0.92
        return 0.82 + 0.22 * blotch + 0.06 * grit - 0.3 * pits
    if texture == "pegboard":  # hardboard with a square lattice of holes
        pitch = float(rng.uniform(17, 23))
        dy, dx = (yy % pitch) - pitch / 2, (xx % pitch) - pitch / 2
        holes = dy * dy + dx * dx < 2.6**2
        return np.where(holes, 0.3, 0.95 + 0.08 * smooth_noise(rng, height, width, 12.0))
    if texture == "tread":  # steel tread plate: raised bars in alternating directions
        pitch = float(rng.uniform(14, 18))
        cy, cx = np.floor(yy / pitch).astype(int), np.floor(xx / pitch).astype(int)
        u, v = (xx % pitch) / pitch - 0.5, (yy % pitch) / pitch - 0.5
        along = np.where((cy + cx) % 2 == 0, u + v, u - v)
        across = np.where((cy + cx) % 2 == 0, u - v, u + v)
        bar = (np.abs(along) < 0.42) & (np.abs(across) < 0.09)
        return np.where(bar, 1.25, 0.9 + 0.05 * smooth_noise(rng, height, width, 8.0))
    raise KeyError(f"unknown counter texture {texture!r}")


def lighting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative lighting (height, width) float32: a directional gradient and a vignette."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.12, 0.3)
    x = (xx - width / 2) / width
    y = (yy - height / 2) / height
    gradient = strength * (x * np.cos(theta) + y * np.sin(theta))
    vignette = 0.22 * (x**2 + y**2)
    return (1.0 + gradient - vignette).astype(np.float32)


def material_shading(
    texture: str, u: np.ndarray, v: np.ndarray, size: float, tile: np.ndarray
) -> np.ndarray:
    """Brightness multiplier of a material at object-local coordinates.

    ``u``, ``v``: local pixel coordinates (h, w) float32 (object axis along u); ``size``: the
    noun's size; ``tile``: the object's own random pattern (32, 32) float32 in [0, 1].
    Returns (h, w) float32, about 1 on average.
    """
    ti = tile[
        np.floor(v).astype(np.int64) % tile.shape[0], np.floor(u).astype(np.int64) % tile.shape[1]
    ]
    if texture == "gloss":
        d2 = (u + 0.35 * size) ** 2 + (v + 0.35 * size) ** 2
        return 0.94 + 0.32 * np.exp(-d2 / (0.08 * size * size + 4.0)) + 0.03 * ti
    if texture == "speckle":
        return 0.95 + 0.1 * ti
    if texture == "grain":
        return 0.9 + 0.14 * np.sin(v * 1.3 + 2.5 * np.sin(u * 0.12)) + 0.04 * ti
    if texture == "brushed":
        return 0.86 + 0.08 * np.sin(v * 2.1) + 0.22 * np.exp(-((v - 0.15 * size) ** 2) / 6.0)
    if texture == "pores":
        return 1.0 - 0.3 * (ti > 0.78)
    if texture == "skin":
        r2 = (u * u + v * v) / (size * size)
        highlight = np.exp(-((u + 0.35 * size) ** 2 + (v + 0.35 * size) ** 2) / (0.05 * size**2))
        return np.clip(1.08 - 0.25 * r2, 0.7, 1.1) + 0.25 * highlight
    return workshop_shading(texture, u, v, size, tile, ti)


def workshop_shading(
    texture: str, u: np.ndarray, v: np.ndarray, size: float, tile: np.ndarray, ti: np.ndarray
) -> np.ndarray:
    """:func:`material_shading` of the workshop materials; ``ti`` (h, w) the tile at (u, v)."""
    if texture == "ribbed":  # rubber grip: ribs across the long axis
        return 0.86 + 0.18 * (np.sin(u * 1.7) > 0.2) + 0.03 * ti
    if texture == "enamel":  # hard paint: a sharp straight specular streak
        streak = np.exp(-((u - 0.6 * v - 0.2 * size) ** 2) / (0.01 * size * size + 3.0))
        return 0.95 + 0.3 * streak + 0.04 * ti
    if texture == "weave":  # canvas: a fine cross-hatch
        return 0.9 + 0.06 * (np.sin(u * 1.9) + np.sin(v * 1.9)) + 0.05 * ti
    if texture == "satin":  # vinyl: a soft gradient across the object
        return 0.98 + 0.1 * np.clip(v / size, -1.0, 1.0) + 0.02 * ti
    if texture == "hammered":  # forged steel: coarse dimples
        coarse = tile[
            np.floor(v / 3.0).astype(np.int64) % tile.shape[0],
            np.floor(u / 3.0).astype(np.int64) % tile.shape[1],
        ]
        return 0.86 + 0.2 * coarse
    if texture == "polished":  # turned brass: concentric rings
        return 0.92 + 0.12 * np.cos(np.sqrt(u * u + v * v) * 1.3) + 0.02 * ti
    raise KeyError(f"unknown material texture {texture!r}")
