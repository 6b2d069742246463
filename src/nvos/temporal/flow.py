"""Dense optical flow (OpenCV DIS), mask warping, and the link term of the temporal decoder.

Flow is computed on grey frames shrunk so that their long side is at most ``max_side`` and scaled
back to the masks' resolution when masks are warped. Warping *pulls*: to carry a mask of frame a
onto frame b, each pixel p of b takes the (bilinear) value of a's mask at p + F(p), where
F = :meth:`FlowEstimator.pull` (b, a) is the flow from b to a. Pixels that come from outside the
frame get 0 (the object left the view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from nvos import rle
from nvos.metrics.coco import iou_matrix

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowSettings:
    """DIS ``preset`` (ultrafast | fast | medium) and the long side of the frames it runs on."""

    preset: str = "ultrafast"
    max_side: int = 640

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"flow preset {self.preset!r} is not one of {sorted(PRESETS)}")
        if self.max_side < 8:
            raise ValueError(f"flow max_side must be >= 8, got {self.max_side}")


class FlowEstimator:
    """DIS optical flow between frames of one size (H, W), and warping of masks of that size."""

    def __init__(self, height: int, width: int, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()
        self.height, self.width = int(height), int(width)
        scale = min(1.0, self.settings.max_side / max(self.height, self.width))
        self.flow_size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        self._dis = cv2.DISOpticalFlow_create(PRESETS[self.settings.preset])
        self._grid_x, self._grid_y = np.meshgrid(
            np.arange(self.width, dtype=np.float32), np.arange(self.height, dtype=np.float32)
        )

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        """Grey uint8 frame at flow resolution (h, w) from an RGB uint8 image (H, W, 3)."""
        if image_rgb.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"frame of shape {image_rgb.shape[:2]} does not match the masks' "
                f"{(self.height, self.width)}"
            )
        grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        if (grey.shape[1], grey.shape[0]) != self.flow_size:
            grey = cv2.resize(grey, self.flow_size, interpolation=cv2.INTER_AREA)
        return grey

    def pull(self, grey_to: np.ndarray, grey_from: np.ndarray) -> np.ndarray:
        """Flow (h, w, 2) float32 from frame ``grey_to`` to frame ``grey_from``: the sampling
        offsets that pull values of ``grey_from`` onto ``grey_to`` (inputs from :meth:`prepare`)."""
        return self._dis.calc(grey_to, grey_from, None)

    def warp(self, masks: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Pull soft masks (P, H, W) (any real dtype, values in [0, 1]) along ``flow`` (h, w, 2)
        from :meth:`pull`; returns float32 (P, H, W), bilinear, 0 outside the frame."""
        if masks.shape[1:] != (self.height, self.width):
            expected = (self.height, self.width)
            raise ValueError(f"masks of shape {masks.shape} do not match {expected}")
        if masks.shape[0] == 0:
            return np.zeros(masks.shape, np.float32)
        h, w = flow.shape[:2]
        if (w, h) != (self.width, self.height):
            flow = cv2.resize(flow, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= self.width / w
            flow[..., 1] *= self.height / h
        map_x = self._grid_x + flow[..., 0]
        map_y = self._grid_y + flow[..., 1]
        stack = np.ascontiguousarray(masks.transpose(1, 2, 0), dtype=np.float32)  # (H, W, P)
        warped = np.empty_like(stack)
        for start in range(0, stack.shape[2], 4):  # remap handles up to 4 channels at a time
            chunk = np.ascontiguousarray(stack[:, :, start : start + 4])
            out = cv2.remap(
                chunk, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
            warped[:, :, start : start + 4] = out.reshape(self.height, self.width, -1)
        return warped.transpose(2, 0, 1)


def link_matrix(
    estimator: FlowEstimator,
    image_a: np.ndarray,
    image_b: np.ndarray,
    counts_a: list[bytes],
    counts_b: list[bytes],
) -> np.ndarray:
    """The link term between two consecutive keyframes: IoU (K, L) of frame a's K proposals,
    warped onto frame b by DIS flow, with frame b's L proposals.

    Images are RGB uint8 (H, W, 3) at the masks' size; masks are RLE counts of that size.
    """
    return _links(
        estimator, estimator.prepare(image_a), estimator.prepare(image_b), counts_a, counts_b
    )


def _links(
    estimator: FlowEstimator,
    grey_a: np.ndarray,
    grey_b: np.ndarray,
    counts_a: list[bytes],
    counts_b: list[bytes],
) -> np.ndarray:
    if not counts_a or not counts_b:
        return np.zeros((len(counts_a), len(counts_b)), np.float64)
    height, width = estimator.height, estimator.width
    masks_a = np.stack([rle.decode(c, height, width) for c in counts_a])
    warped = estimator.warp(masks_a.astype(np.float32), estimator.pull(grey_b, grey_a)) >= 0.5
    return iou_matrix(rle.encode_many(warped), counts_b, height, width, empty_iou=0.0)


def clip_links(
    estimator: FlowEstimator, images: Sequence[np.ndarray], counts: Sequence[list[bytes]]
) -> list[np.ndarray]:
    """The link matrices of a clip's T keyframes: ``images`` (T) RGB uint8 (H, W, 3) in frame
    order, ``counts[t]`` the RLE counts of frame t's proposals. Returns T - 1 matrices
    (K_t, K_{t+1}) (:func:`link_matrix`); each frame is converted for the flow once."""
    if len(images) != len(counts):
        raise ValueError(f"{len(images)} frames but proposals for {len(counts)}")
    greys = [estimator.prepare(image) for image in images]
    links = []
    for t in range(len(images) - 1):
        links.append(_links(estimator, greys[t], greys[t + 1], counts[t], counts[t + 1]))
    return links


def chained_links(
    estimator: FlowEstimator,
    frames: Callable[[Sequence[int]], Iterator[tuple[int, np.ndarray]]],
    keyframes: Sequence[int],
    counts: Sequence[list[bytes]],
    step: int = 1,
) -> list[np.ndarray]:
    """Link matrices of a clip's keyframes with the flow chained through the frames between them.

    Consecutive keyframes are often far apart (a second or more), beyond what DIS follows in one
    step; here each keyframe's proposals are warped frame by frame (every ``step``-th frame and
    the keyframes) up to the next keyframe. ``frames`` is a frame source (ascending indices ->
    (frame_index, RGB (H, W, 3))), read in one pass; ``keyframes`` are ascending frame indices
    and ``counts[t]`` the RLE of keyframe t's proposals. Returns T - 1 matrices (K_t, K_{t+1}).
    """
    if len(keyframes) != len(counts):
        raise ValueError(f"{len(keyframes)} keyframes but proposals for {len(counts)}")
    if list(keyframes) != sorted(set(keyframes)):
        raise ValueError(f"keyframes must be distinct and ascending, got {list(keyframes)}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if len(keyframes) < 2:
        return []
    first, last = keyframes[0], keyframes[-1]
    order = sorted(set(range(first, last + 1, step)) | set(keyframes))
    position = {index: t for t, index in enumerate(keyframes)}
    height, width = estimator.height, estimator.width
    links: list[np.ndarray] = []
    soft: np.ndarray | None = None
    last_grey: np.ndarray | None = None
    for index, image in frames(order):
        grey = estimator.prepare(image)
        if soft is not None and soft.shape[0]:
            soft = estimator.warp(soft, estimator.pull(grey, last_grey))
        t = position.get(index)
        if t is not None:
            if t > 0:
                if soft.shape[0] == 0 or not counts[t]:
                    links.append(np.zeros((soft.shape[0], len(counts[t])), np.float64))
                else:
                    warped = rle.encode_many(soft >= 0.5)
                    links.append(iou_matrix(warped, counts[t], height, width, empty_iou=0.0))
            masks = [rle.decode(c, height, width) for c in counts[t]]
            soft = np.stack(masks).astype(np.float32) if masks else np.zeros((0, height, width))
        last_grey = grey
    if len(links) != len(keyframes) - 1:
        raise ValueError(f"frame source ended before keyframe {keyframes[len(links) + 1]}")
    return links
