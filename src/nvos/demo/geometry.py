"""Polygon primitives of the demo's object shapes (:mod:`nvos.demo.shapes`,
:mod:`nvos.demo.workshop_shapes`).

A shape is a list of :class:`Part` (drawn in order, later parts over earlier ones). Local
coordinates are pixels at scale 1 with the object's long axis along +x; the renderer rotates,
scales and translates them. Each part has a shading ``role``:

- ``body``: the object's colour with its material texture;
- ``inner``: the body colour darkened (inside of a cup / bowl / pan, scrub side of a sponge);
- ``light``: the body colour brightened (centre of a plate, top of a board);
- ``handle``: the noun's handle colour (knife / pan handle, bottle cap);
- ``stem``: leaf green (tomato stem, carrot leaves);
- ``steel``: bare steel, whatever the body colour (hammer head, screwdriver shaft, blades).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLES = ("body", "inner", "light", "handle", "stem", "steel")


@dataclass(frozen=True)
class Part:
    """One filled polygon of a shape: ``points`` (K, 2) float64 local (x, y), and its role."""

    role: str
    points: np.ndarray


def ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 40) -> np.ndarray:
    """Polygon (n, 2) of an axis-aligned ellipse centred at (cx, cy) with semi-axes (ax, ay)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, n: int = 6) -> np.ndarray:
    """Polygon (4n, 2) of the rectangle [x0, x1] x [y0, y1] with corner radius ``r``."""
    r = min(r, (x1 - x0) / 2.0, (y1 - y0) / 2.0)
    corners = [
        (x1 - r, y1 - r, 0.0),
        (x0 + r, y1 - r, 0.5),
        (x0 + r, y0 + r, 1.0),
        (x1 - r, y0 + r, 1.5),
    ]
    points = []
    for cx, cy, start in corners:
        t = np.pi * (start + np.linspace(0.0, 0.5, n))
        points.append(np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1))
    return np.concatenate(points, axis=0)


def extent(parts: list[Part]) -> float:
    """Largest distance of any part's vertex from the object's origin (pixels at scale 1)."""
    return float(max(np.linalg.norm(p.points, axis=1).max() for p in parts))
