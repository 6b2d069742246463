"""Object shapes of the demo's kitchen style as polygons in object-local coordinates.

Coordinates and part roles: :mod:`nvos.demo.geometry`. :data:`SHAPE_BUILDERS` holds every shape
of every style (the workshop style's are in :mod:`nvos.demo.workshop_shapes`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nvos.demo.geometry import Part, ellipse, rounded_rect
from nvos.demo.workshop_shapes import WORKSHOP_SHAPES


def _cup(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(0.7 * s, -0.2 * s, 1.4 * s, 0.2 * s, 0.1 * s)),
        Part("body", ellipse(0, 0, s, s)),
        Part("inner", ellipse(0, 0, 0.72 * s, 0.72 * s)),
    ]


def _bowl(s: float) -> list[Part]:
    return [Part("body", ellipse(0, 0, s, s, 56)), Part("inner", ellipse(0, 0, 0.84 * s, 0.84 * s))]


def _plate(s: float) -> list[Part]:
    return [Part("body", ellipse(0, 0, s, s, 64)), Part("light", ellipse(0, 0, 0.66 * s, 0.66 * s))]


def _round(s: float) -> list[Part]:
    return [
        Part("body", ellipse(0, 0, s, 0.94 * s)),
        Part("stem", ellipse(0.1 * s, -0.1 * s, 0.25 * s, 0.2 * s, 8)),
    ]


def _ellipse(s: float) -> list[Part]:
    return [
        Part("body", ellipse(0, 0, s, 0.7 * s)),
        Part("body", ellipse(0.95 * s, 0, 0.2 * s, 0.18 * s, 12)),
        Part("body", ellipse(-0.95 * s, 0, 0.2 * s, 0.18 * s, 12)),
    ]


def _sponge(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.62 * s, s, 0.62 * s, 0.2 * s)),
        Part("inner", rounded_rect(-s, -0.62 * s, s, -0.15 * s, 0.2 * s)),
    ]


def _board(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.64 * s, s, 0.64 * s, 0.12 * s)),
        Part("light", rounded_rect(-0.88 * s, -0.52 * s, 0.88 * s, 0.52 * s, 0.08 * s)),
    ]


def _spoon(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.08 * s, 0.4 * s, 0.08 * s, 0.07 * s)),
        Part("body", ellipse(0.62 * s, 0, 0.38 * s, 0.25 * s)),
        Part("inner", ellipse(0.65 * s, 0, 0.27 * s, 0.16 * s)),
    ]


def _knife(s: float) -> list[Part]:
    blade = np.array(
        [
            [-0.3 * s, -0.13 * s],
            [0.75 * s, -0.13 * s],
            [s, -0.08 * s],
            [0.85 * s, 0.02 * s],
            [0.5 * s, 0.13 * s],
            [-0.3 * s, 0.13 * s],
        ]
    )
    return [
        Part("body", blade),
        Part("handle", rounded_rect(-s, -0.11 * s, -0.25 * s, 0.11 * s, 0.08 * s)),
    ]


def _spatula(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.07 * s, 0.25 * s, 0.07 * s, 0.06 * s)),
        Part("body", rounded_rect(0.2 * s, -0.3 * s, s, 0.3 * s, 0.08 * s)),
        Part("inner", rounded_rect(0.35 * s, -0.16 * s, 0.85 * s, -0.1 * s, 0.02 * s)),
        Part("inner", rounded_rect(0.35 * s, 0.1 * s, 0.85 * s, 0.16 * s, 0.02 * s)),
    ]


def _pan(s: float) -> list[Part]:
    return [
        Part("handle", rounded_rect(0.8 * s, -0.12 * s, 1.9 * s, 0.12 * s, 0.1 * s)),
        Part("body", ellipse(0, 0, s, s, 56)),
        Part("inner", ellipse(0, 0, 0.86 * s, 0.86 * s)),
    ]


def _bottle(s: float) -> list[Part]:
    return [
        Part("body", rounded_rect(-s, -0.38 * s, 0.45 * s, 0.38 * s, 0.15 * s)),
        Part("body", rounded_rect(0.35 * s, -0.17 * s, 0.82 * s, 0.17 * s, 0.05 * s)),
        Part("handle", rounded_rect(0.75 * s, -0.2 * s, s, 0.2 * s, 0.05 * s)),
    ]


def _carrot(s: float) -> list[Part]:
    body = np.array(
        [
            [-0.8 * s, -0.25 * s],
            [-0.55 * s, -0.28 * s],
            [s, -0.02 * s],
            [s, 0.02 * s],
            [-0.55 * s, 0.28 * s],
            [-0.8 * s, 0.25 * s],
        ]
    )
    leaves = np.array(
        [
            [-0.78 * s, -0.1 * s],
            [-s, -0.32 * s],
            [-0.92 * s, 0.0],
            [-s, 0.32 * s],
            [-0.78 * s, 0.1 * s],
        ]
    )
    return [Part("stem", leaves), Part("body", body)]


SHAPE_BUILDERS: dict[str, Callable[[float], list[Part]]] = {
    "cup": _cup,
    "bowl": _bowl,
    "plate": _plate,
    "round": _round,
    "ellipse": _ellipse,
    "rounded_rect": _sponge,
    "board": _board,
    "spoon": _spoon,
    "knife": _knife,
    "spatula": _spatula,
    "pan": _pan,
    "bottle": _bottle,
    "carrot": _carrot,
    **WORKSHOP_SHAPES,
}


def shape_parts(shape: str, size: float) -> list[Part]:
    """The parts of ``shape`` at size ``size`` (local pixels at scale 1)."""
    if shape not in SHAPE_BUILDERS:
        raise KeyError(f"unknown demo shape {shape!r} (known: {sorted(SHAPE_BUILDERS)})")
    return SHAPE_BUILDERS[shape](float(size))
