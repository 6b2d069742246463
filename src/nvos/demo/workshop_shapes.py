"""Object shapes of the demo's workshop style: tools and containers on a work bench.

Coordinates and part roles: :mod:`nvos.demo.geometry`. Tools are drawn with a coloured grip
(``body``, what their colour word names) and bare ``steel`` working parts kept smaller than the
grip, so the colour word still names most of the object's pixels. No shape is a scaled copy of a
kitchen shape: tools have a head, jaws or blades; containers are polygons or carry a bail.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nvos.demo.geometry import Part, ellipse, rounded_rect


def regular_polygon(radius: float, sides: int, phase: float = 0.0) -> np.ndarray:
    """Polygon (sides, 2) of a regular polygon centred at the origin, first vertex at ``phase``."""
    t = phase + np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def band(radius: float, width: float, start: float, stop: float, n: int = 24) -> np.ndarray:
    """Polygon (2n, 2) of a circular band (radii ``radius`` .. ``radius + width``) between angles
    ``start`` and ``stop`` (radians), e.g. a bucket's bail."""
    t = np.linspace(start, stop, n)
    outer = np.stack([(radius + width) * np.cos(t), (radius + width) * np.sin(t)], axis=1)
    inner = np.stack([radius * np.cos(t[::-1]), radius * np.sin(t[::-1])], axis=1)
    return np.concatenate([outer, inner], axis=0)


def _hammer(s: float) -> list[Part]:
    claw = s * np.array([[0.56, 0.2], [0.76, 0.2], [0.74, 0.5], [0.6, 0.4]])
    return [
        Part("body", rounded_rect(-s, -0.13 * s, 0.56 * s, 0.13 * s, 0.1 * s)),
        Part("inner", rounded_rect(-0.95 * s, -0.13 * s, -0.88 * s, 0.13 * s, 0.02 * s)),
        Part("steel", rounded_rect(0.5 * s, -0.4 * s, 0.8 * s, 0.22 * s, 0.04 * s)),
        Part("steel", claw),
    ]


def _screwdriver(s: float) -> list[Part]:
    tip = s * np.array([[0.55, -0.06], [0.92, -0.06], [1.0, 0.0], [0.92, 0.06], [0.55, 0.06]])
    grooves = [
        Part("inner", rounded_rect(-0.85 * s, y - 0.035 * s, -0.2 * s, y + 0.035 * s, 0.02 * s))
        for y in (-0.12 * s, 0.0, 0.12 * s)
    ]
    return [
        Part("steel", tip),
        Part("body", rounded_rect(-s, -0.24 * s, 0.0, 0.24 * s, 0.12 * s)),
        *grooves,
        Part("steel", rounded_rect(-0.02 * s, -0.09 * s, 0.08 * s, 0.09 * s, 0.02 * s)),
    ]


def _wrench(s: float) -> list[Part]:
    t = np.linspace(np.radians(40), np.radians(320), 30)
    head = np.stack([0.72 * s + 0.3 * s * np.cos(t), 0.3 * s * np.sin(t)], axis=1)
    notch = s * np.array([[0.8, -0.12], [0.66, -0.1], [0.66, 0.1], [0.8, 0.12]])
    head = np.concatenate([head, notch])
    return [
        Part("body", rounded_rect(-0.7 * s, -0.11 * s, 0.6 * s, 0.11 * s, 0.08 * s)),
        Part("body", head),
        Part("body", ellipse(-0.74 * s, 0, 0.26 * s, 0.26 * s, 24)),
        Part("inner", regular_polygon(0.13 * s, 6) + np.array([-0.74 * s, 0.0])),
    ]


def _pliers(s: float) -> list[Part]:
    grip = s * np.array([[-0.1, 0.02], [-1.0, 0.2], [-1.0, 0.52], [-0.1, 0.24]])
    jaws = s * np.array([[0.0, -0.13], [0.55, -0.05], [0.55, 0.05], [0.0, 0.13]])
    return [
        Part("body", grip),
        Part("body", grip * np.array([1.0, -1.0])),
        Part("steel", jaws),
        Part("steel", ellipse(0.0, 0.0, 0.13 * s, 0.13 * s, 16)),
    ]


def _scissors(s: float) -> list[Part]:
    blade = s * np.array([[-0.3, -0.1], [1.0, -0.02], [1.0, 0.01], [-0.3, 0.04]])
    return [
        Part("body", ellipse(-0.62 * s, -0.28 * s, 0.38 * s, 0.26 * s, 28)),
        Part("body", ellipse(-0.62 * s, 0.28 * s, 0.38 * s, 0.26 * s, 28)),
        Part("inner", ellipse(-0.62 * s, -0.28 * s, 0.2 * s, 0.11 * s, 20)),
        Part("inner", ellipse(-0.62 * s, 0.28 * s, 0.2 * s, 0.11 * s, 20)),
        Part("steel", blade),
        Part("steel", blade * np.array([1.0, -1.0])),
        Part("steel", ellipse(-0.2 * s, 0.0, 0.08 * s, 0.08 * s, 12)),
    ]


def _tape(s: float) -> list[Part]:
    return [
        Part("body", ellipse(0, 0, s, s, 48)),
        Part("handle", ellipse(0, 0, 0.6 * s, 0.6 * s, 40)),
        Part("inner", ellipse(0, 0, 0.47 * s, 0.47 * s, 32)),
    ]


def _brush(s: float) -> list[Part]:
    handle = s * np.array([[-1.0, -0.16], [0.16, -0.26], [0.16, 0.26], [-1.0, 0.16]])
    return [
        Part("body", np.concatenate([handle, ellipse(-s, 0, 0.16 * s, 0.16 * s, 12)[3:10]])),
        Part("steel", rounded_rect(0.14 * s, -0.25 * s, 0.36 * s, 0.25 * s, 0.03 * s)),
        Part("handle", rounded_rect(0.34 * s, -0.23 * s, 0.78 * s, 0.23 * s, 0.08 * s)),
    ]


def _ruler(s: float) -> list[Part]:
    parts = [Part("body", rounded_rect(-s, -0.15 * s, s, 0.15 * s, 0.03 * s))]
    for i, x in enumerate(np.linspace(-0.9 * s, 0.9 * s, 19)):  # long and short ticks
        end = (-0.02 if i % 2 == 0 else -0.08) * s
        parts.append(Part("inner", rounded_rect(x - 0.012 * s, -0.15 * s, x + 0.012 * s, end, 0)))
    return parts


def _nut(s: float) -> list[Part]:
    return [
        Part("body", regular_polygon(s, 6, np.pi / 6)),
        Part("inner", ellipse(0, 0, 0.48 * s, 0.48 * s, 24)),
    ]


def _jar(s: float) -> list[Part]:
    return [
        Part("body", regular_polygon(s, 8, np.pi / 8)),
        Part("light", ellipse(0, 0, 0.8 * s, 0.8 * s, 40)),
        Part("inner", ellipse(0, 0, 0.66 * s, 0.66 * s, 40)),
    ]


def _chamfered(hx: float, hy: float, c: float) -> np.ndarray:
    """Polygon (8, 2): the rectangle [-hx, hx] x [-hy, hy] with corners cut by ``c``."""
    corner = np.array([[hx - c, -hy], [hx, -hy + c], [hx, hy - c], [hx - c, hy]])
    return np.concatenate([corner, -corner])


def _tray(s: float) -> list[Part]:
    slot = [
        Part("inner", rounded_rect(x - 0.05 * s, -0.2 * s, x + 0.05 * s, 0.2 * s, 0.05 * s))
        for x in (-0.85 * s, 0.85 * s)
    ]
    return [
        Part("body", _chamfered(s, 0.62 * s, 0.18 * s)),
        Part("light", _chamfered(0.92 * s, 0.54 * s, 0.14 * s)),
        *slot,
    ]


def _bucket(s: float) -> list[Part]:
    return [
        Part("steel", band(1.0 * s, 0.08 * s, np.radians(-110), np.radians(110))),
        Part("body", ellipse(0, 0, s, s, 56)),
        Part("inner", ellipse(0, 0, 0.86 * s, 0.86 * s, 48)),
        Part("steel", ellipse(0, -0.93 * s, 0.09 * s, 0.09 * s, 12)),
        Part("steel", ellipse(0, 0.93 * s, 0.09 * s, 0.09 * s, 12)),
    ]


def _toolbox(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.55 * s, s, 0.55 * s, 0.04 * s)),
        Part("inner", rounded_rect(-0.92 * s, -0.47 * s, 0.92 * s, 0.47 * s, 0.02 * s)),
        Part("body", rounded_rect(-0.92 * s, -0.04 * s, 0.92 * s, 0.04 * s, 0.0)),
        Part("steel", rounded_rect(-0.35 * s, -0.07 * s, 0.35 * s, 0.07 * s, 0.04 * s)),
        Part("steel", rounded_rect(-0.7 * s, 0.5 * s, -0.56 * s, 0.6 * s, 0.01 * s)),
        Part("steel", rounded_rect(0.56 * s, 0.5 * s, 0.7 * s, 0.6 * s, 0.01 * s)),
    ]


def _rag(s: float) -> list[Part]:
    t = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)
    r = s * (0.8 + 0.14 * np.sin(3 * t + 0.5) + 0.07 * np.cos(5 * t))
    outline = np.stack([r * np.cos(t), 0.8 * r * np.sin(t)], axis=1)
    fold = s * np.array([[-0.5, -0.1], [0.3, -0.35], [0.45, -0.2], [-0.3, 0.1]])
    return [Part("body", outline), Part("inner", fold)]


WORKSHOP_SHAPES: dict[str, Callable[[float], list[Part]]] = {
    "hammer": _hammer,
    "screwdriver": _screwdriver,
    "wrench": _wrench,
    "pliers": _pliers,
    "scissors": _scissors,
    "tape": _tape,
    "brush": _brush,
    "ruler": _ruler,
    "nut": _nut,
    "jar": _jar,
    "tray": _tray,
    "bucket": _bucket,
    "toolbox": _toolbox,
    "rag": _rag,
}
