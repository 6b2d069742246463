"""Weight-free mask proposals: classical multi-scale region segmentation.

The embedded demo's default backend, for machines without SAM weights. It is **not** a substitute
for SAM on real video; it exists so the whole pipeline runs offline and its tests exercise real
masks.

Per frame (all at a working resolution whose long side is at most ``work_side``):

1. Graph-based superpixels (Felzenszwalb & Huttenlocher, ``skimage.segmentation.felzenszwalb``)
   at each of ``scales``: the *base* partitions.
2. Each base partition is merged into object-sized regions at each of ``merge_thresholds``: two
   adjacent regions join when their mean CIELAB colours differ by less than the threshold
   (region-adjacency-graph cut, as ``skimage.graph.cut_threshold``; single linkage). Together
   with the base partitions this gives a grid of partitions ``levels[scale][threshold]``.
3. Every region of every level whose area lies in ``[min_area_frac, max_area_frac]`` of the frame is
   a candidate. Scores, both in [0, 1]:

   - ``predicted_iou`` (confidence): ``a / (a + s + tau)`` with ``a = sqrt(c * d)``: ``c`` the
     region's boundary contrast (mean CIELAB distance between its mean colour and those of the
     regions across its boundary, weighted by shared boundary length), ``d`` its distinctiveness
     (area-weighted mean colour distance to the rest of the frame, low for one tile of a tiled
     counter), ``s`` its internal colour standard deviation, ``tau = contrast_tau``.
     Homogeneous, salient regions with strong edges score high.
   - ``stability_score``: mean, over the neighbouring levels in the grid (next/previous scale at
     the same threshold, next/previous threshold at the same scale), of the region's best IoU with
     a region of that level. A region that survives changes of scale and threshold is stable.

4. Candidates are ranked by ``predicted_iou * stability_score``; a candidate whose IoU with a
   better one exceeds ``dedup_iou`` is dropped (the same region appears at several levels; 0.7,
   like SAM's box NMS, keeps the top K diverse). Holes smaller than ``max_hole_frac`` of a region
   are filled; with ``fill_holes`` a region with larger holes is also proposed with every hole
   filled (the rim of a cup around its darker inside). Masks are brought back to the frame's
   resolution, best first, and near-duplicates are dropped again with exact pixel IoU until
   ``max_proposals`` are kept: masks that cannot leave the backend are never made.

Everything is deterministic (no random state).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import felzenszwalb

from nvos.config import ConfigError, check_limits
from nvos.frames import resize_to_max_side
from nvos.proposals.base import FrameProposals

__all__ = ["ClassicalBackend", "ClassicalConfig"]


@dataclass(frozen=True)
class ClassicalConfig:
    """Settings of the classical backend (config group ``proposals.classical``; defaults and
    limits: ``config/schema.yaml``, the defaults here equal the schema's).

    Attributes:
        scales: Felzenszwalb ``scale`` of each base partition (larger = bigger superpixels).
        sigma: Gaussian pre-smoothing of the Felzenszwalb segmentation.
        min_segment_px: Felzenszwalb ``min_size`` in pixels at the working resolution.
        merge_thresholds: CIELAB colour distances (ΔE) at which adjacent regions are merged.
        min_area_frac: Smallest proposal, as a fraction of the frame area.
        max_area_frac: Largest proposal, as a fraction of the frame area.
        dedup_iou: A proposal overlapping a better one with IoU above this is dropped.
        max_hole_frac: Holes smaller than this fraction of a region's area are filled (0: none).
        fill_holes: Also propose each region with larger holes with all its holes filled.
        contrast_tau: Softening constant (ΔE) of the confidence ``c / (c + s + tau)``.
        work_side: Frames are segmented at a long side of at most this many pixels.
        max_proposals: At most this many proposals per frame leave the backend (best first).
    """

    GROUP: ClassVar[tuple[str, ...]] = ("proposals", "classical")

    scales: tuple[float, ...] = (300.0,)
    sigma: float = 0.5
    min_segment_px: int = 30
    merge_thresholds: tuple[float, ...] = (5.0, 10.0, 15.0, 22.0)
    min_area_frac: float = 0.001
    max_area_frac: float = 0.5
    dedup_iou: float = 0.7
    max_hole_frac: float = 0.1
    fill_holes: bool = True
    contrast_tau: float = 20.0
    work_side: int = 320
    max_proposals: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        object.__setattr__(self, "merge_thresholds", tuple(float(t) for t in self.merge_thresholds))
        check_limits(self)
        if not self.min_area_frac < self.max_area_frac:
            raise ConfigError(
                "proposals.classical: need min_area_frac < max_area_frac, got "
                f"{self.min_area_frac} and {self.max_area_frac}"
            )


@dataclass
class _Base:
    """A Felzenszwalb partition and the per-region sums every partition merged from it needs.

    Attributes:
        labels: (h, w) int64, base region per pixel, 0..n-1.
        count: (n,) float64 pixels per region.
        sums: (n, 3) float64 sum of the CIELAB colours of its pixels.
        squares: (n, 3) float64 sum of their squares.
        pairs: (E, 2) int64 4-adjacent region pairs (a < b), each once.
        length: (E,) float64 adjacent pixel pairs across each region pair's boundary.
    """

    labels: np.ndarray
    count: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    pairs: np.ndarray
    length: np.ndarray

    @staticmethod
    def of(labels: np.ndarray, pixels: np.ndarray) -> _Base:
        """Statistics of ``labels`` (h, w) given the (h*w, 3) float64 pixel colours."""
        flat = labels.ravel()
        n = int(flat.max()) + 1
        count = np.bincount(flat, minlength=n).astype(np.float64)
        sums = np.stack([np.bincount(flat, pixels[:, c], minlength=n) for c in range(3)], 1)
        squares = np.stack([np.bincount(flat, pixels[:, c] ** 2, minlength=n) for c in range(3)], 1)
        pixel_pairs = _adjacent_pairs(labels)
        codes, length = np.unique(pixel_pairs[:, 0] * n + pixel_pairs[:, 1], return_counts=True)
        pairs = np.stack([codes // n, codes % n], axis=1)
        return _Base(labels, count, sums, squares, pairs, length.astype(np.float64))


@dataclass
class _Level:
    """One partition of the working-resolution frame: a union of the regions of its base.

    Attributes:
        base: The Felzenszwalb partition it was merged from.
        component: (n_base,) int64, the level's region of each base region, 0..n-1.
        area: (n,) int64 pixels per region.
        candidate: (n,) bool, region area within the allowed range.
        confidence: (n,) float32 boundary-contrast / homogeneity score in [0, 1].
    """

    base: _Base
    component: np.ndarray
    area: np.ndarray
    candidate: np.ndarray
    confidence: np.ndarray

    @functools.cached_property
    def labels(self) -> np.ndarray:
        """(h, w) int64 region index per pixel (made once, when first needed)."""
        return self.component[self.base.labels]


class ClassicalBackend:
    """Weight-free proposal backend (see the module docstring for the method)."""

    name = "classical"

    def __init__(self, config: ClassicalConfig | None = None) -> None:
        self.config = config or ClassicalConfig()

    def describe(self) -> dict[str, Any]:
        """Backend name and every setting (JSON-serialisable: tuples become lists)."""
        settings = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self.config).items()
        }
        return {"backend": self.name, **settings}

    def generate(self, images: Sequence[np.ndarray]) -> list[FrameProposals]:
        """Proposals for each RGB uint8 image (H, W, 3), masks at that image's resolution."""
        return [self.generate_one(image) for image in images]

    def generate_one(self, image: np.ndarray) -> FrameProposals:
        """Proposals of one RGB uint8 image (H, W, 3), best first by confidence × stability."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"classical backend expects an RGB uint8 (H, W, 3) image, got "
                f"{image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        cfg = self.config
        work = resize_to_max_side(image, cfg.work_side)
        lab = cv2.cvtColor(work.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # L 0..100
        grid = self._levels(work, lab)
        levels = [level for row in grid for level in row]
        offsets = np.cumsum([0] + [int(lv.candidate.sum()) for lv in levels])
        n_candidates = int(offsets[-1])
        if n_candidates == 0:
            return FrameProposals.empty(height, width)

        stability = np.concatenate(
            [_stability(grid, i, j) for i in range(len(grid)) for j in range(len(grid[i]))]
        )
        confidence = np.concatenate([lv.confidence[lv.candidate] for lv in levels])
        order = np.argsort(-(confidence * stability), kind="stable")
        iou = _candidate_iou(levels, offsets)
        kept = _greedy_dedup(order, iou, cfg.dedup_iou)

        masks, sources = _distinct_masks(levels, offsets, kept, (height, width), cfg)
        return FrameProposals(
            masks=masks,
            predicted_iou=confidence[sources],
            stability_score=stability[sources],
        )

    def _levels(self, work: np.ndarray, lab: np.ndarray) -> list[list[_Level]]:
        """The grid of partitions: ``grid[scale][0]`` base, ``grid[scale][j]`` merged at j-1."""
        cfg = self.config
        n_pixels = work.shape[0] * work.shape[1]
        min_area = max(1, int(np.ceil(cfg.min_area_frac * n_pixels)))
        max_area = int(np.floor(cfg.max_area_frac * n_pixels))
        pixels = lab.reshape(-1, 3).astype(np.float64)
        grid: list[list[_Level]] = []
        for scale in cfg.scales:
            # felzenszwalb labels are already consecutive 0..n-1
            base = felzenszwalb(work, scale=scale, sigma=cfg.sigma, min_size=cfg.min_segment_px)
            stats = _Base.of(base.astype(np.int64, copy=False), pixels)
            identity = np.arange(len(stats.count), dtype=np.int64)
            row = [_level(stats, identity, min_area, max_area, cfg.contrast_tau)]
            for threshold in cfg.merge_thresholds:
                merged = _merge(stats, threshold)
                row.append(_level(stats, merged, min_area, max_area, cfg.contrast_tau))
            grid.append(row)
        return grid


def _resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (N, h, w) bool masks to (N, height, width)."""
    n, h, w = masks.shape
    if (h, w) == (height, width):
        return masks
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.int64)
    return masks[:, rows[:, None], cols[None, :]]


def _adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """(E, 2) int64 pairs of 4-adjacent regions (a < b), one row per adjacent pixel pair."""
    horizontal = np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1)
    vertical = np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1)
    pairs = np.concatenate([horizontal, vertical])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.sort(pairs, axis=1)


def _merge(base: _Base, threshold: float) -> np.ndarray:
    """(n_base,) int64 merged region 0..m-1 of each base region: adjacent base regions whose mean
    colours differ by less than ``threshold`` are joined (single linkage)."""
    n = len(base.count)
    means = base.sums / np.maximum(base.count, 1.0)[:, None]
    distance = np.linalg.norm(means[base.pairs[:, 0]] - means[base.pairs[:, 1]], axis=1)
    joined = base.pairs[distance < threshold]
    graph = coo_matrix(
        (np.ones(len(joined), dtype=np.int8), (joined[:, 0], joined[:, 1])), shape=(n, n)
    )
    _, component = connected_components(graph, directed=False)
    return component.astype(np.int64)


def _level(base: _Base, component: np.ndarray, min_area: int, max_area: int, tau: float) -> _Level:
    """Region statistics of one partition (see module doc), from its base's region sums.

    Args:
        base: The base partition's statistics.
        component: (n_base,) region 0..n-1 of the partition that each base region belongs to.
    """
    n = int(component.max()) + 1
    count = np.bincount(component, base.count, minlength=n)
    sums = np.stack([np.bincount(component, base.sums[:, c], minlength=n) for c in range(3)], 1)
    squares = np.stack(
        [np.bincount(component, base.squares[:, c], minlength=n) for c in range(3)], 1
    )
    means = sums / np.maximum(count, 1.0)[:, None]
    variance = squares / np.maximum(count, 1.0)[:, None] - means**2
    spread = np.sqrt(np.maximum(variance, 0.0).sum(axis=1))
    # boundary contrast: mean colour distance across the boundary, weighted by its length
    pairs = component[base.pairs]
    across = pairs[:, 0] != pairs[:, 1]
    pairs, length = pairs[across], base.length[across]
    contrast = np.zeros(n)
    if len(pairs):
        distance = np.linalg.norm(means[pairs[:, 0]] - means[pairs[:, 1]], axis=1)
        ends = pairs.ravel()
        total = np.bincount(ends, np.repeat(distance * length, 2), minlength=n)
        contrast = total / np.maximum(np.bincount(ends, np.repeat(length, 2), minlength=n), 1.0)
    # distinctiveness: area-weighted mean colour distance to every other pixel of the frame
    gaps = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=2)
    distinct = (gaps @ count) / np.maximum(count.sum() - count, 1.0)
    salience = np.sqrt(contrast * distinct)
    confidence = salience / (salience + spread + tau + 1e-9)
    area = count.astype(np.int64)
    candidate = (area >= min_area) & (area <= max_area)
    return _Level(base, component, area, candidate, confidence.astype(np.float32))


def _candidate_index(level: _Level) -> np.ndarray:
    """(n,) int64: each region's candidate index within the level, or -1 if not a candidate."""
    index = np.full(level.area.shape[0], -1, dtype=np.int64)
    index[level.candidate] = np.arange(int(level.candidate.sum()))
    return index


def _candidate_labels(level: _Level) -> np.ndarray:
    """(h*w,) int64: the pixel's candidate index within the level, or -1 if not a candidate."""
    return _candidate_index(level)[level.labels.ravel()]


def _pair_iou(a: _Level, b: _Level) -> np.ndarray:
    """(na, nb) IoU between the candidate regions of two partitions (contingency table).

    Partitions merged from one base are unions of its regions: their table is counted over the
    base's regions, weighted by area, instead of over pixels.
    """
    na, nb = int(a.candidate.sum()), int(b.candidate.sum())
    if a.base is b.base:
        la, lb = _candidate_index(a)[a.component], _candidate_index(b)[b.component]
        weights = a.base.count
    else:
        la, lb = _candidate_labels(a), _candidate_labels(b)
        weights = None
    both = (la >= 0) & (lb >= 0)
    cells = la[both] * nb + lb[both]
    inter = np.bincount(cells, None if weights is None else weights[both], minlength=na * nb)
    inter = inter.reshape(na, nb)
    union = a.area[a.candidate][:, None] + b.area[b.candidate][None, :] - inter
    return inter / np.maximum(union, 1)


def _stability(grid: list[list[_Level]], i: int, j: int) -> np.ndarray:
    """(n_candidates,) mean best IoU of level (i, j)'s candidates with neighbouring levels."""
    level = grid[i][j]
    neighbours = [
        grid[a][b]
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
        if 0 <= a < len(grid) and 0 <= b < len(grid[a])
    ]
    n = int(level.candidate.sum())
    if not neighbours:
        return np.ones(n, dtype=np.float32)
    best = [
        _pair_iou(level, other).max(axis=1) if other.candidate.any() else np.zeros(n)
        for other in neighbours
    ]
    return np.mean(best, axis=0).astype(np.float32)


def _candidate_iou(levels: list[_Level], offsets: np.ndarray) -> np.ndarray:
    """(N, N) IoU between all candidates (regions of one level are disjoint: IoU 0)."""
    n = int(offsets[-1])
    iou = np.zeros((n, n), dtype=np.float32)
    for a in range(len(levels)):
        for b in range(a + 1, len(levels)):
            if not (levels[a].candidate.any() and levels[b].candidate.any()):
                continue
            block = _pair_iou(levels[a], levels[b])
            iou[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]] = block
            iou[offsets[b] : offsets[b + 1], offsets[a] : offsets[a + 1]] = block.T
    return iou


def _greedy_dedup(order: np.ndarray, iou: np.ndarray, threshold: float) -> list[int]:
    """Indices in ``order`` kept after dropping those with IoU > threshold to a kept one."""
    kept: list[int] = []
    for index in order:
        if not kept or iou[index, kept].max() <= threshold:
            kept.append(int(index))
    return kept


def _with_filled(mask: np.ndarray, max_hole_frac: float, fill_holes: bool) -> list[np.ndarray]:
    """The region ``mask`` (h, w) with its small holes filled, then, if ``fill_holes`` and it
    has larger holes, the region with every hole filled (a ring-shaped part such as the rim of a
    cup around its differently coloured inside)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = mask[r0:r1, c0:c1]
    holes = ndi.binary_fill_holes(crop) & ~crop
    if not holes.any():
        return [mask]
    hole_labels, n = ndi.label(holes)
    sizes = np.bincount(hole_labels.ravel(), minlength=n + 1)
    small = sizes <= max_hole_frac * crop.sum()
    small[0] = False
    out = [mask.copy()]
    out[0][r0:r1, c0:c1] |= small[hole_labels]
    if fill_holes and not small[1:].all():
        full = mask.copy()
        full[r0:r1, c0:c1] |= holes
        out.append(full)
    return out


def _distinct_masks(
    levels: list[_Level],
    offsets: np.ndarray,
    kept: list[int],
    size: tuple[int, int],
    cfg: ClassicalConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``cfg.max_proposals`` distinct frame-resolution masks of the kept candidates.

    Candidates are taken best first; each gives its region (small holes filled) and possibly its
    filled variant, brought to the frame's ``size`` (H, W); a mask whose exact pixel IoU with an
    earlier accepted one exceeds ``cfg.dedup_iou`` is dropped. Stops as soon as ``max_proposals``
    are accepted, so only the masks that can leave the backend are ever made.

    Returns:
        masks (N, H, W) bool and sources (N,) int64, the candidate index of each mask.
    """
    height, width = size
    accepted: list[_Box] = []
    sources: list[int] = []
    for index in kept:
        level_index = int(np.searchsorted(offsets, index, side="right") - 1)
        level = levels[level_index]
        label = np.flatnonzero(level.candidate)[index - offsets[level_index]]
        region = (level.component == label)[level.base.labels]
        for mask in _with_filled(region, cfg.max_hole_frac, cfg.fill_holes):
            box = _Box.of(_resize_masks(mask[None], height, width)[0])
            if all(box.iou(other) <= cfg.dedup_iou for other in accepted):
                accepted.append(box)
                sources.append(index)
                if len(accepted) == cfg.max_proposals:
                    return _stack(accepted, height, width), np.asarray(sources, dtype=np.int64)
    return _stack(accepted, height, width), np.asarray(sources, dtype=np.int64)


@dataclass(frozen=True)
class _Box:
    """A mask stored as its bounding box (y0, x0) and the (h, w) bool crop inside it."""

    y0: int
    x0: int
    crop: np.ndarray
    area: int

    @staticmethod
    def of(mask: np.ndarray) -> _Box:
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return _Box(int(rows[0]), int(cols[0]), crop, int(crop.sum()))

    def iou(self, other: _Box) -> float:
        """Exact pixel IoU: the intersection is counted on the overlap of the two boxes only."""
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1 = min(self.y0 + self.crop.shape[0], other.y0 + other.crop.shape[0])
        x1 = min(self.x0 + self.crop.shape[1], other.x0 + other.crop.shape[1])
        if y0 >= y1 or x0 >= x1:
            return 0.0
        a = self.crop[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        b = other.crop[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
        inter = int(np.count_nonzero(a & b))
        return inter / (self.area + other.area - inter)


def _stack(boxes: list[_Box], height: int, width: int) -> np.ndarray:
    """(N, height, width) bool masks from their boxes."""
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for mask, box in zip(masks, boxes, strict=True):
        mask[box.y0 : box.y0 + box.crop.shape[0], box.x0 : box.x0 + box.crop.shape[1]] = box.crop
    return masks
