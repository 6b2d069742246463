"""Segment a video of any length in one pass, holding only the frames in flight.

Input: frames in ascending order (an iterator of (frame_index, RGB uint8 (H, W, 3))), and
**narration windows** (:class:`NarrationWindow`): a narration's frames ``[first, last]`` and its
phrases. Ego4D-style videos have one narration every few seconds with windows that overlap. Output:
rows of the ``dense_masks`` table (``clip_id`` = the narration's id), every phrase on every frame
of its window (or on a grid of ``fps`` per second), written window by window.

How, per frame of the stream:

1. **Keyframes** are a global grid (every ``key_every`` frames, from frame 0) inside the windows,
   plus the middle frame of any window that the grid misses; keyframes are shared by all the
   windows that contain them. On a keyframe the scorer makes its regions (proposals and CLIP
   region embeddings, :class:`~nvos.segment.zero_shot.ZeroShotScorer`), and the link matrix from
   the previous keyframe (IoU after one DIS flow step, :func:`nvos.temporal.flow.link_matrix`).
2. When the stream reaches a window's last frame, its phrases are scored against its keyframes'
   regions, each phrase's path over the keyframes is decoded (:func:`nvos.temporal.decode.
   decode_phrases`: Viterbi over proposals or ABSENT), and the chosen masks are propagated to the
   window's frames by the ``flow`` backend (:class:`nvos.temporal.propagate.FlowPropagator`) from
   the frames buffered since the window's first frame; the rows go to the writer at once.
3. Frames, keyframe regions and links that no unfinished window needs any more are dropped.

Memory is bounded by the frames of the longest window (plus the windows overlapping it), not by
the video's length: the buffer holds each frame from the first frame of the earliest unfinished
window on. :class:`StreamSummary` reports counts, the largest buffer and where the time went.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nvos import rle
from nvos.segment.writer import TableWriter
from nvos.segment.zero_shot import KeyframeRegions
from nvos.temporal.decode import ABSENT, DecodeSettings, decode_phrases
from nvos.temporal.flow import FlowEstimator, FlowSettings, link_matrix
from nvos.temporal.propagate import FlowPropagator, Keyframe, dense_table, dense_targets
from nvos.video import VideoInfo, frame_window

__all__ = ["KeyframeScorer", "NarrationWindow", "StreamSettings", "StreamSummary",
           "clip_windows", "keyframe_schedule", "segment_stream"]  # fmt: skip


class KeyframeScorer(Protocol):
    """What scores a keyframe's regions for phrases (e.g. :class:`~nvos.segment.zero_shot.
    ZeroShotScorer`): a region's score for a phrase is the dot product of their embeddings."""

    def regions(self, frame_index: int, image: np.ndarray) -> KeyframeRegions:
        """The regions (masks and (K, D) embeddings) of an RGB uint8 frame (H, W, 3)."""
        ...

    def phrases(self, texts: Sequence[str]) -> np.ndarray:
        """(P, D) embeddings of P phrase texts."""
        ...


@dataclass(frozen=True)
class NarrationWindow:
    """One narration: its id (the ``clip_id`` of its rows), frames ``first..last`` (inclusive),
    and its P phrases (texts, ids and object ids, None for untagged)."""

    narration_id: str
    first: int
    last: int
    texts: tuple[str, ...]
    phrase_ids: tuple[int, ...]
    object_ids: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(
                f"narration {self.narration_id!r}: window [{self.first}, {self.last}] is not "
                "a frame range"
            )
        if not len(self.texts) == len(self.phrase_ids) == len(self.object_ids):
            raise ValueError(f"narration {self.narration_id!r}: texts and ids differ in length")


@dataclass(frozen=True)
class StreamSettings:
    """``key_every``: frames between keyframes; ``video_fps``: the video's rate; ``fps``: dense
    output grid per second (None: every frame); ``decode``: the temporal decoder's weights;
    ``flow``: DIS settings of the links and the propagation."""

    key_every: int = 30
    video_fps: float = 30.0
    fps: float | None = None
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)

    def __post_init__(self) -> None:
        if self.key_every < 1:
            raise ValueError(f"key_every must be >= 1, got {self.key_every}")


@dataclass
class StreamSummary:
    """What :func:`segment_stream` did: counts, the largest frame buffer, and per phase the
    wall-clock ``seconds`` and the process's ``cpu_seconds`` (all threads); ``read`` is the time
    spent waiting for frames (decoding or generating them)."""

    frames_read: int = 0
    windows: int = 0
    windows_without_phrases: list[str] = field(default_factory=list)
    keyframes: int = 0
    regions: int = 0
    absent_keyframe_masks: int = 0
    dense_frames: int = 0
    rows: int = 0
    max_buffered_frames: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _cpu: float = field(default_factory=time.process_time, repr=False)

    def add_time(self, phase: str, start: float) -> float:
        """Add the wall-clock time since ``start`` (and the CPU time since the last call) to
        ``phase``; return the wall clock now."""
        now, cpu = time.perf_counter(), time.process_time()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - start
        self.cpu_seconds[phase] = self.cpu_seconds.get(phase, 0.0) + cpu - self._cpu
        self._cpu = cpu
        return now


def clip_windows(
    info: VideoInfo, clips: Sequence[Mapping[str, Any]], phrases: Mapping[str, Sequence[Mapping]]
) -> tuple[list[NarrationWindow], list[str]]:
    """The windows of the clips of one video: ``clips`` are rows of the clips table (``clip_id``,
    ``start_sec``, ``end_sec``), ``phrases`` the phrases table's rows per clip
    (:func:`nvos.phrases.stage.read_shard_phrases`). Frames: :func:`nvos.video.frame_window`.
    Returns the windows and the clips whose window holds no frame of the video."""
    windows, empty = [], []
    for clip in clips:
        frames = frame_window(info, clip["start_sec"], clip["end_sec"])
        if not len(frames):
            empty.append(str(clip["clip_id"]))
            continue
        rows = phrases.get(clip["clip_id"], [])
        windows.append(
            NarrationWindow(
                str(clip["clip_id"]), frames[0], frames[-1],
                tuple(str(r["text"]) for r in rows), tuple(int(r["phrase_id"]) for r in rows),
                tuple(r["object_id"] for r in rows),
            )
        )  # fmt: skip
    return windows, empty


def keyframe_schedule(windows: Sequence[NarrationWindow], key_every: int) -> list[int]:
    """The keyframes: every ``key_every``-th frame inside some window, plus the middle frame of
    each window that contains no grid frame. Ascending."""
    keys: set[int] = set()
    for window in windows:
        first_grid = -(-window.first // key_every) * key_every
        grid = range(first_grid, window.last + 1, key_every)
        keys.update(grid if len(grid) else [(window.first + window.last) // 2])
    return sorted(keys)


class _Buffer:
    """Frames kept for the windows that still need them."""

    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}

    def source(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices:
            yield index, self.frames[index]

    def drop_before(self, index: int) -> None:
        for old in [i for i in self.frames if i < index]:
            del self.frames[old]


def segment_stream(
    frames: Iterable[tuple[int, np.ndarray]],
    windows: Sequence[NarrationWindow],
    scorer: KeyframeScorer,
    settings: StreamSettings,
    writer: TableWriter,
) -> StreamSummary:
    """Segment every phrase of every window (see the module docstring); rows go to ``writer``
    (schema ``dense_masks``). ``frames`` must be ascending and cover every window's frames."""
    summary = StreamSummary(windows=len(windows))
    pending = sorted(windows, key=lambda w: (w.last, w.first))
    if not pending:
        return summary
    keys = keyframe_schedule(pending, settings.key_every)
    key_set = set(keys)
    firsts = sorted(w.first for w in pending)
    end = max(w.last for w in pending)
    buffer = _Buffer()
    regions: dict[int, KeyframeRegions] = {}
    links: dict[int, np.ndarray] = {}  # keyframe -> links (K_prev, K) from the keyframe before it
    previous: tuple[int, np.ndarray] | None = None
    estimator: FlowEstimator | None = None
    propagator = FlowPropagator(settings.flow)
    done = 0
    expected = firsts[0]
    clock = summary.add_time("setup", time.perf_counter())
    for index, image in frames:
        clock = summary.add_time("read", clock)
        if index < expected:
            continue
        if index != expected:
            raise ValueError(f"frame source gave frame {index}, expected {expected}")
        expected += 1
        summary.frames_read += 1
        needed = firsts[0] if firsts else end + 1
        if index >= needed:
            buffer.frames[index] = image
            summary.max_buffered_frames = max(summary.max_buffered_frames, len(buffer.frames))
        if index in key_set:
            found = scorer.regions(index, image)
            regions[index] = found
            summary.keyframes += 1
            summary.regions += len(found.counts)
            clock = summary.add_time("regions", clock)
            if estimator is None:
                estimator = FlowEstimator(image.shape[0], image.shape[1], settings.flow)
            if previous is not None:
                before = regions.get(previous[0])
                if before is not None:
                    links[index] = link_matrix(
                        estimator, previous[1], image, list(before.counts), list(found.counts)
                    )
            previous = (index, image)
            clock = summary.add_time("links", clock)
        while done < len(pending) and pending[done].last <= index:
            window = pending[done]
            firsts.remove(window.first)
            done += 1
            clock = _finish(window, keys, regions, links, buffer, propagator, scorer, settings,
                            writer, summary, clock)  # fmt: skip
            lowest = firsts[0] if firsts else end + 1
            buffer.drop_before(lowest)
            for old in [k for k in regions if k < lowest]:
                del regions[old]
                links.pop(old, None)
        if index >= end:
            break
    if done < len(pending):
        raise ValueError(
            f"frame source ended at frame {expected - 1}, before the end of narration "
            f"{pending[done].narration_id!r} (frame {pending[done].last})"
        )
    return summary


def _finish(
    window: NarrationWindow,
    keys: list[int],
    regions: dict[int, KeyframeRegions],
    links: dict[int, np.ndarray],
    buffer: _Buffer,
    propagator: FlowPropagator,
    scorer: KeyframeScorer,
    settings: StreamSettings,
    writer: TableWriter,
    summary: StreamSummary,
    clock: float,
) -> float:
    """Decode, propagate and write one window whose frames have all been read."""
    if not window.texts:
        summary.windows_without_phrases.append(window.narration_id)
        return clock
    own = [k for k in keys if window.first <= k <= window.last]
    phrases = scorer.phrases(window.texts)
    scores = [phrases @ regions[k].embeddings.T for k in own]  # (P, K_t) each
    choices = decode_phrases(scores, [links[k] for k in own[1:]], settings.decode)
    clock = summary.add_time("decode", clock)
    keyframes = []
    for t, key in enumerate(own):
        found = regions[key]
        empty = rle.encode(np.zeros((found.height, found.width), bool))
        chosen = choices[:, t]
        summary.absent_keyframe_masks += int((chosen == ABSENT).sum())
        counts = tuple(found.counts[c] if c != ABSENT else empty for c in chosen)
        score = np.array([scores[t][p, c] if c != ABSENT else 0.0 for p, c in enumerate(chosen)])
        keyframes.append(Keyframe(key, counts, found.height, found.width, score))
    targets = dense_targets(range(window.first, window.last + 1), settings.video_fps, settings.fps)
    dense = propagator.propagate(keyframes, targets, buffer.source)
    table = dense_table(window.narration_id, window.phrase_ids, window.object_ids, dense)
    clock = summary.add_time("propagate", clock)
    writer.write(table)
    summary.rows += table.num_rows
    summary.dense_frames += table.num_rows // len(window.texts)
    return summary.add_time("write", clock)
