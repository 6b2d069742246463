"""VISOR polygons → label maps, rasterised exactly as the VISOR tools do (REFERENCE §3.2).

VISOR sparse annotations give each entity of a frame as a list of polygons (``segments``), each a
list of ``[x, y]`` float points in 1920×1080 pixel coordinates. The VISOR-VOS conversion
(``visor_to_davis.py`` / ``utils/vis.py``) draws them on a 1080×1920 canvas with one
``cv2.fillPoly`` call per entity, after casting the points to int32 (truncation towards zero); an
empty polygon becomes ``[[0, 0]]``. Entities are drawn in annotation order, so a later entity
overwrites an earlier one where they overlap. Because all polygons of an entity go through one
``fillPoly`` call, where two of its polygons overlap OpenCV's even-odd filling leaves a hole
(the VISOR tools behave the same). Masks are then resized to the output resolution with
nearest-neighbour interpolation.

Here each entity gets its own label (1..N in annotation order, 0 = background), so entities that
share a name stay separate instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from nvos.errors import NvosError

VISOR_SIZE: tuple[int, int] = (1080, 1920)
"""(height, width) of the pixel space of VISOR sparse polygons (full HD)."""


class PolygonError(NvosError, ValueError):
    """A ``segments`` value that is not a list of polygons of [x, y] number pairs."""


def entity_polygons(segments: Any) -> list[np.ndarray]:
    """Validate one entity's ``segments`` and return its polygons as int32 arrays (N_i, 2).

    Points are truncated to int32 as the VISOR tools do; an empty polygon becomes ``[[0, 0]]``.
    An empty ``segments`` list gives no polygon (the entity draws nothing). Raises
    :class:`PolygonError` naming the polygon (and point) that is malformed.
    """
    if not isinstance(segments, list):
        raise PolygonError(f"segments must be a list of polygons, got {type(segments).__name__}")
    polygons: list[np.ndarray] = []
    for p, polygon in enumerate(segments):
        if not isinstance(polygon, list):
            raise PolygonError(
                f"segments[{p}] must be a list of [x, y] points, got {type(polygon).__name__}"
            )
        points = polygon if polygon else [[0.0, 0.0]]
        for k, point in enumerate(points):
            if not (
                isinstance(point, list | tuple)
                and len(point) == 2
                and all(_is_number(v) for v in point)
            ):
                raise PolygonError(f"segments[{p}][{k}] is not an [x, y] number pair: {point!r}")
        polygons.append(np.array(points, dtype=np.float64).astype(np.int32))
    return polygons


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
    )


def rasterise(
    entities: Sequence[Sequence[np.ndarray]], size: tuple[int, int] = VISOR_SIZE
) -> np.ndarray:
    """A label map (H, W) int32 of a frame's entities: entity i (0-based, annotation order) is
    label i + 1, 0 is background; later entities overwrite earlier ones.

    ``entities`` holds each entity's polygons from :func:`entity_polygons`; ``size`` is
    (height, width) of the polygons' pixel space.
    """
    labels = np.zeros(size, dtype=np.int32)
    for i, polygons in enumerate(entities):
        if len(polygons):
            cv2.fillPoly(labels, list(polygons), i + 1)
    return labels


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to (height, width) with nearest-neighbour (no-op at that size)."""
    height, width = size
    if labels.shape == (height, width):
        return labels
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
