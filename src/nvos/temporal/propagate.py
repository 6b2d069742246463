"""Dense propagation of keyframe masks to every frame of a clip, behind one interface.

A clip's **keyframes** are the frames where the method chose its masks (the proposal frames); a
keyframe holds one mask per phrase as RLE (so that a long clip's keyframes stay small in memory),
an empty mask meaning "absent", and one score per phrase. A backend turns them into
:class:`DenseFrame` s on the requested frames:

- ``none``: the keyframes only (no propagation; today's behaviour).
- ``flow``: no weights. Each keyframe's masks are carried frame by frame with DIS optical flow
  (:mod:`nvos.temporal.flow`) forward to the next keyframe and backward to the previous one; on a
  frame between keyframes k0 < t < k1 the two soft masks are blended with weights
  (k1 - t)/(k1 - k0) and (t - k0)/(k1 - k0) and thresholded at 0.5; frames before the first or
  after the last keyframe get the one-sided warp. A propagated score is the same blend of the two
  keyframes' scores.
- ``sam2``: SAM 2's video predictor (:mod:`nvos.temporal.sam2_backend`).

Frames come from a :data:`FrameSource` in ascending order and are never all held: ``flow`` keeps the
grey frames (at flow resolution) and backward-warped masks (uint8) of the frames between two
keyframes, i.e. memory grows with the largest keyframe gap, not with the clip length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import pyarrow as pa

from nvos import rle, storage, video
from nvos.temporal.flow import FlowEstimator, FlowSettings

SOURCE_KEYFRAME = "keyframe"
SOURCE_PROPAGATED = "propagated"

FrameSource = Callable[[Sequence[int]], Iterator[tuple[int, np.ndarray]]]
"""Given ascending frame indices, yields (frame_index, RGB uint8 image (H, W, 3)) for each, in that
order, at the masks' size (H, W)."""


@dataclass(frozen=True)
class Keyframe:
    """The chosen masks of one frame: P RLE ``counts`` of size (height, width) (an empty mask =
    absent) and their ``scores`` (P,)."""

    frame_index: int
    counts: tuple[bytes, ...]
    height: int
    width: int
    scores: np.ndarray

    @classmethod
    def from_masks(cls, frame_index: int, masks: np.ndarray, scores: np.ndarray) -> Keyframe:
        """A keyframe from masks (P, H, W) bool and scores (P,)."""
        if masks.ndim != 3 or masks.dtype != np.bool_:
            raise ValueError(
                f"keyframe {frame_index}: masks must be bool (P, H, W), got "
                f"{masks.dtype} {masks.shape}"
            )
        counts = tuple(rle.encode_many(masks))
        return cls(int(frame_index), counts, masks.shape[1], masks.shape[2], np.asarray(scores))

    def masks(self) -> np.ndarray:
        """The decoded masks (P, H, W) bool."""
        if not self.counts:
            return np.zeros((0, self.height, self.width), bool)
        return np.stack([rle.decode(c, self.height, self.width) for c in self.counts])


@dataclass(frozen=True)
class DenseFrame:
    """The masks (P, H, W) bool and scores (P,) float32 of one frame; ``source`` is keyframe or
    propagated."""

    frame_index: int
    source: str
    masks: np.ndarray
    scores: np.ndarray


class Propagator(Protocol):
    """A dense propagation backend."""

    name: str

    def propagate(
        self, keyframes: Sequence[Keyframe], targets: Sequence[int], frames: FrameSource
    ) -> Iterator[DenseFrame]:
        """Yield one :class:`DenseFrame` per frame of ``targets`` ∪ keyframes (``none``: keyframes
        only), in ascending frame order."""
        ...

    def provenance(self) -> dict[str, Any]:
        """The backend and its settings, to record with the dense masks."""
        ...


def check_keyframes(keyframes: Sequence[Keyframe]) -> list[Keyframe]:
    """The keyframes sorted by frame; ValueError on duplicates or inconsistent shapes."""
    if not keyframes:
        raise ValueError("no keyframes to propagate from")
    ordered = sorted(keyframes, key=lambda k: k.frame_index)
    first = ordered[0]
    shape = (len(first.counts), first.height, first.width)
    for key in ordered:
        if (len(key.counts), key.height, key.width) != shape:
            raise ValueError(
                f"keyframe {key.frame_index}: {len(key.counts)} masks of {key.height}x{key.width},"
                f" unlike keyframe {first.frame_index}'s {shape[0]} of {shape[1]}x{shape[2]}"
            )
        if np.shape(key.scores) != (shape[0],):
            raise ValueError(f"keyframe {key.frame_index}: scores must have shape ({shape[0]},)")
    indices = [k.frame_index for k in ordered]
    if len(set(indices)) != len(indices):
        raise ValueError(f"duplicate keyframes in {indices}")
    return ordered


def _keyframe_output(key: Keyframe) -> DenseFrame:
    return DenseFrame(key.frame_index, SOURCE_KEYFRAME, key.masks(), key.scores.astype(np.float32))


class NonePropagator:
    """Backend ``none``: the keyframes only."""

    name = "none"

    def provenance(self) -> dict[str, Any]:
        return {"backend": self.name}

    def propagate(
        self, keyframes: Sequence[Keyframe], targets: Sequence[int], frames: FrameSource
    ) -> Iterator[DenseFrame]:
        for key in check_keyframes(keyframes):
            yield _keyframe_output(key)


@dataclass
class FlowPropagator:
    """Backend ``flow``: DIS optical flow forward and backward from the keyframes, blended by
    temporal distance (see the module docstring)."""

    settings: FlowSettings = field(default_factory=FlowSettings)
    name: str = "flow"

    def provenance(self) -> dict[str, Any]:
        return {"backend": self.name, **dataclasses.asdict(self.settings)}

    def propagate(
        self, keyframes: Sequence[Keyframe], targets: Sequence[int], frames: FrameSource
    ) -> Iterator[DenseFrame]:
        ordered = check_keyframes(keyframes)
        by_index = {k.frame_index: k for k in ordered}
        order = sorted(set(int(t) for t in targets) | set(by_index))
        estimator = FlowEstimator(ordered[0].height, ordered[0].width, self.settings)
        previous: tuple[Keyframe, np.ndarray] | None = None  # last keyframe and its grey frame
        soft: np.ndarray | None = None  # forward-carried soft masks after the last keyframe
        last_grey: np.ndarray | None = None
        pending: list[tuple[int, np.ndarray]] = []  # frames waiting for the next keyframe
        received = 0
        for index, image in frames(order):
            if received >= len(order) or index != order[received]:
                expected = order[received] if received < len(order) else "no more frames"
                raise ValueError(f"frame source gave frame {index}, expected {expected}")
            received += 1
            grey = estimator.prepare(image)
            key = by_index.get(index)
            if key is None:
                if previous is not None and index > ordered[-1].frame_index:  # tail: stream on
                    soft = estimator.warp(soft, estimator.pull(grey, last_grey))
                    last_grey = grey
                    yield _blend(index, soft, None, 1.0, previous[0].scores, None)
                else:
                    pending.append((index, grey))
                continue
            yield from self._segment(estimator, previous, pending, key, grey)
            yield _keyframe_output(key)
            previous, pending = (key, grey), []
            soft, last_grey = key.masks().astype(np.float32), grey
        if received != len(order):
            raise ValueError(f"frame source ended before frame {order[received]}")

    def _segment(
        self,
        estimator: FlowEstimator,
        previous: tuple[Keyframe, np.ndarray] | None,
        pending: list[tuple[int, np.ndarray]],
        key: Keyframe,
        key_grey: np.ndarray,
    ) -> Iterator[DenseFrame]:
        """The frames before ``key`` and after ``previous`` (None: the head of the clip)."""
        backward: list[np.ndarray] = []
        soft, last = key.masks().astype(np.float32), key_grey
        for _, grey in reversed(pending):
            soft = estimator.warp(soft, estimator.pull(grey, last))
            backward.append(np.rint(soft * 255).astype(np.uint8))
            last = grey
        backward.reverse()
        if previous is None:
            for (index, _), back in zip(pending, backward, strict=True):
                yield _blend(index, None, back, 0.0, None, key.scores)
            return
        start, start_grey = previous
        soft, last = start.masks().astype(np.float32), start_grey
        gap = key.frame_index - start.frame_index
        for (index, grey), back in zip(pending, backward, strict=True):
            soft = estimator.warp(soft, estimator.pull(grey, last))
            last = grey
            weight = (key.frame_index - index) / gap
            yield _blend(index, soft, back, weight, start.scores, key.scores)


def _blend(
    index: int,
    forward: np.ndarray | None,
    backward: np.ndarray | None,
    weight: float,
    forward_scores: np.ndarray | None,
    backward_scores: np.ndarray | None,
) -> DenseFrame:
    """weight · forward + (1 - weight) · backward (uint8 0..255), thresholded at 0.5."""
    soft = np.zeros_like(forward if forward is not None else backward, dtype=np.float32)
    scores = np.zeros(soft.shape[0], np.float64)
    if forward is not None and weight > 0:
        soft += weight * forward
        scores += weight * np.asarray(forward_scores, np.float64)
    if backward is not None and weight < 1:
        soft += (1.0 - weight) * (backward.astype(np.float32) / 255.0)
        scores += (1.0 - weight) * np.asarray(backward_scores, np.float64)
    return DenseFrame(index, SOURCE_PROPAGATED, soft >= 0.5, scores.astype(np.float32))


def dense_targets(window: range, video_fps: float, fps: float | None = None) -> list[int]:
    """The frames of a clip ``window`` to propagate to: all of them (``fps`` None), or those
    nearest to a regular grid of ``fps`` per second from the window's first frame (never more
    than every frame)."""
    if fps is None or fps >= video_fps:
        return list(window)
    if fps <= 0 or video_fps <= 0:
        raise ValueError(f"fps must be > 0, got fps={fps}, video fps={video_fps}")
    step = video_fps / fps
    count = int(np.floor((len(window) - 1) / step + 1e-9)) + 1 if len(window) else 0
    return sorted({window[int(np.floor(i * step + 0.5))] for i in range(count)})  # half up


def video_frame_source(info: video.VideoInfo, height: int, width: int) -> FrameSource:
    """A :data:`FrameSource` decoding ``info``'s video on demand (one pass, :func:`nvos.video.
    read_frames`), converted to RGB and shrunk to (height, width) with area interpolation, as the
    frames stage stores them."""

    def source(indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index, bgr in video.read_frames(info, indices):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            yield index, rgb

    return source


def dense_table(
    clip_id: str,
    phrase_ids: Sequence[int],
    object_ids: Sequence[str | None],
    dense: Iterable[DenseFrame],
) -> pa.Table:
    """Rows of the ``dense_masks`` table for one clip: one per (frame, phrase), masks as RLE.

    ``phrase_ids`` and ``object_ids`` (None for untagged phrases) give the P phrases in the order
    of the masks' first axis.
    """
    if len(phrase_ids) != len(object_ids):
        raise ValueError(f"{len(phrase_ids)} phrase ids but {len(object_ids)} object ids")
    rows: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["dense_masks"].names}
    for frame in dense:
        if frame.masks.shape[0] != len(phrase_ids):
            raise ValueError(
                f"clip {clip_id!r} frame {frame.frame_index}: {frame.masks.shape[0]} masks for "
                f"{len(phrase_ids)} phrases"
            )
        counts = rle.encode_many(frame.masks)
        for p, phrase_id in enumerate(phrase_ids):
            rows["clip_id"].append(clip_id)
            rows["phrase_id"].append(int(phrase_id))
            rows["object_id"].append(object_ids[p])
            rows["frame_index"].append(frame.frame_index)
            rows["source"].append(frame.source)
            rows["score"].append(float(frame.scores[p]))
            rows["height"].append(frame.masks.shape[1])
            rows["width"].append(frame.masks.shape[2])
            rows["rle_counts"].append(counts[p])
    return pa.table(rows, schema=storage.SCHEMAS["dense_masks"])
