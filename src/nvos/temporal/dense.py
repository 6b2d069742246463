"""The propagation job of one shard: a method's keyframe masks carried to every frame.

A keyframe method's prediction rows (``predictions/<keyframe method>/<shard>.parquet``) are its
**keyframes**: every frame they cover, one mask per phrase (a phrase without a row on a covered
frame, or with an empty mask, is absent there). For each clip with keyframes the job decodes the
clip's video once per pass (:func:`~nvos.temporal.propagate.video_frame_source`, never all frames
at once), propagates with a backend (:mod:`nvos.temporal.backends`) to every frame of the clip
window (or a grid of ``fps`` per second) and to every annotated frame, and writes

- ``masks/<method>/<shard>.parquet`` (schema ``dense_masks``): every propagated frame;
- ``predictions/<method>/<shard>.parquet`` (schema ``predictions``, ``proposal_id`` -1): the masks
  on the clip's annotated frames, which the existing evaluation scores.

**Leave-one-out** (``leave_one_out``): an annotated frame that is itself a keyframe is predicted
from the *other* keyframes: the nearest one before and the nearest one after it, propagated over
the frames between them (for ``flow`` exactly what the propagation from all other keyframes gives
there, since it blends only the two neighbouring keyframes). So no annotated frame is scored from
its own keyframe: the oracle's keyframes (its best proposals on the annotated frames) become the
propagation's own upper bound, and a method's paper-protocol keyframes a propagation test. The
dense masks keep every keyframe as it is. Backend ``none`` propagates nothing, so leave-one-out
does not apply to it: its rows are the keyframes themselves (today's per-frame masks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nvos import rle, storage, video
from nvos.dataset import read_shard_clips
from nvos.frames import annotated_frames
from nvos.logs import Progress
from nvos.methods.rows import PredictionRows
from nvos.skips import Ledger, Skip
from nvos.temporal.propagate import (
    DenseFrame,
    Keyframe,
    Propagator,
    dense_table,
    dense_targets,
    video_frame_source,
)
from nvos.types import PathLike

logger = logging.getLogger(__name__)

__all__ = ["ClipKeyframes", "PropagateSettings", "PropagateSummary", "propagate_shard"]


@dataclass(frozen=True)
class PropagateSettings:
    """What the job takes from the ``temporal.propagate`` group besides the backend (meanings
    and defaults: ``config/schema.yaml``)."""

    GROUP: ClassVar[tuple[str, ...]] = ("temporal", "propagate")

    fps: float | None = None
    leave_one_out: bool = True


@dataclass(frozen=True)
class ClipKeyframes:
    """One clip's keyframes: its P phrases (``phrase_ids``, ``object_ids``) and one
    :class:`Keyframe` per covered frame, ascending."""

    clip_id: str
    phrase_ids: tuple[int, ...]
    object_ids: tuple[str | None, ...]
    keyframes: tuple[Keyframe, ...]


@dataclass(frozen=True)
class PropagateSummary:
    """What :func:`propagate_shard` wrote: clips propagated, dense frames and masks, prediction
    rows, annotated keyframes predicted by leave-one-out (and those with no other keyframe, left
    empty), seconds; ``ledger`` accounts for every clip of the shard."""

    clips: int
    dense_frames: int
    dense_masks: int
    predictions: int
    left_out: int
    left_out_alone: int
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def read_keyframes(path: PathLike) -> dict[str, ClipKeyframes]:
    """The keyframes of every clip in a ``predictions`` file (see the module docstring)."""
    table = storage.read_table(path, "predictions")
    rows = table.to_pydict()
    by_clip: dict[str, dict[str, Any]] = {}
    for i, clip_id in enumerate(rows["clip_id"]):
        clip = by_clip.setdefault(clip_id, {"phrases": {}, "frames": {}})
        phrase_id = int(rows["phrase_id"][i])
        clip["phrases"].setdefault(phrase_id, rows["object_id"][i])
        size = (int(rows["height"][i]), int(rows["width"][i]))
        frame = clip["frames"].setdefault(int(rows["frame_index"][i]), {"size": size, "masks": {}})
        if frame["size"] != size:
            raise ValueError(
                f"{path}: clip {clip_id!r} frame {rows['frame_index'][i]}: masks of sizes "
                f"{frame['size']} and {size}"
            )
        frame["masks"][phrase_id] = (rows["rle_counts"][i], float(rows["score"][i]))
    return {clip_id: _clip_keyframes(clip_id, clip) for clip_id, clip in by_clip.items()}


def _clip_keyframes(clip_id: str, clip: Mapping[str, Any]) -> ClipKeyframes:
    phrase_ids = tuple(sorted(clip["phrases"]))
    keyframes = []
    for frame_index in sorted(clip["frames"]):
        height, width = clip["frames"][frame_index]["size"]
        masks = clip["frames"][frame_index]["masks"]
        empty = rle.encode(np.zeros((height, width), bool))
        counts = tuple(masks[p][0] if p in masks else empty for p in phrase_ids)
        scores = np.array([masks[p][1] if p in masks else 0.0 for p in phrase_ids], np.float32)
        keyframes.append(Keyframe(frame_index, counts, height, width, scores))
    object_ids = tuple(clip["phrases"][p] for p in phrase_ids)
    return ClipKeyframes(clip_id, phrase_ids, object_ids, tuple(keyframes))


def _neighbours(keyframes: Sequence[Keyframe], frame_index: int) -> list[Keyframe]:
    """The nearest keyframe before and the nearest after ``frame_index`` (itself left out)."""
    before = [k for k in keyframes if k.frame_index < frame_index]
    after = [k for k in keyframes if k.frame_index > frame_index]
    return [*before[-1:], *after[:1]]


def left_out_frame(
    propagator: Propagator,
    keyframes: Sequence[Keyframe],
    frame_index: int,
    targets: Sequence[int],
    frames: Any,
) -> DenseFrame | None:
    """The masks on keyframe ``frame_index`` propagated from its neighbouring keyframes (over the
    ``targets`` between them), or None when it is the clip's only keyframe."""
    neighbours = _neighbours(keyframes, frame_index)
    if not neighbours:
        return None
    first = min(neighbours[0].frame_index, frame_index)
    last = max(neighbours[-1].frame_index, frame_index)
    span = sorted({t for t in targets if first <= t <= last} | {frame_index})
    for dense in propagator.propagate(neighbours, span, frames):
        if dense.frame_index == frame_index:
            return dense
    raise RuntimeError(f"backend {propagator.name!r} gave no frame {frame_index}")


@dataclass
class _Tally:
    """Turns a clip's stream of :func:`_clip_dense` into prediction rows and frame skips while
    passing the dense frames on; counts them."""

    rows: PredictionRows
    skips: list[Skip]
    dense_frames: int = 0
    left_out: int = 0
    alone: int = 0

    def frames(
        self, stream: Iterator[tuple[ClipKeyframes, DenseFrame, DenseFrame | None, bool]]
    ) -> Iterator[DenseFrame]:
        for clip, dense, scored, left_out in stream:
            self.dense_frames += 1
            yield dense
            self.left_out += left_out
            if scored is not None:
                _add_predictions(self.rows, clip.clip_id, clip, scored)
            elif left_out:
                self.alone += 1
                self.skips.append(Skip(clip.clip_id, "only_keyframe_left_out", dense.frame_index))


def _clip_dense(
    propagator: Propagator,
    clip: ClipKeyframes,
    targets: Sequence[int],
    annotated: set[int],
    frames: Any,
    leave_one_out: bool,
) -> Iterator[tuple[ClipKeyframes, DenseFrame, DenseFrame | None, bool]]:
    """(clip, dense frame, frame to score, left out) for each dense frame of the clip: the frame to
    score is the dense frame itself on an annotated frame, the leave-one-out frame on an annotated
    keyframe (None when it is the clip's only keyframe), None elsewhere."""
    keys = {k.frame_index for k in clip.keyframes}
    for dense in propagator.propagate(clip.keyframes, targets, frames):
        if dense.frame_index not in annotated:
            yield clip, dense, None, False
        elif leave_one_out and dense.frame_index in keys:
            loo = left_out_frame(propagator, clip.keyframes, dense.frame_index, targets, frames)
            yield clip, dense, loo, True
        else:
            yield clip, dense, dense, False


def propagate_shard(
    clips_path: PathLike,
    annotations_path: PathLike,
    keyframes_path: PathLike,
    shard: str,
    propagator: Propagator,
    settings: PropagateSettings,
    masks_out: PathLike,
    predictions_out: PathLike,
    method: str,
    folder_fps: float = video.DEFAULT_FOLDER_FPS,
    meta: Mapping[str, Any] | None = None,
) -> PropagateSummary:
    """Propagate the keyframes of ``keyframes_path`` for the clips of ``shard`` and write
    ``masks_out`` (``dense_masks``) and ``predictions_out`` (``predictions`` on the annotated
    frames), both atomically with provenance (stage ``propagate.<method>``, the settings, the
    backend's :meth:`~nvos.temporal.propagate.Propagator.provenance`, ``meta``). The ledger's
    stage is ``predictions/<method>``; a clip without keyframes is skipped (``no_keyframes``), an
    annotated frame that is the clip's only keyframe under leave-one-out gets no row (a frame
    skip, ``only_keyframe_left_out``)."""
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard).to_pylist()
    clip_ids = [c["clip_id"] for c in clips]
    keyframes = read_keyframes(keyframes_path)
    annotated = annotated_frames(annotations_path, clip_ids)
    tables: list[pa.Table] = []
    rows = PredictionRows()
    skips: list[Skip] = []
    written: list[str] = []
    tally = _Tally(rows, skips)
    progress = Progress(logger, sum(c in keyframes for c in clip_ids), "clips")
    for clip in clips:
        clip_id = clip["clip_id"]
        found = keyframes.get(clip_id)
        if found is None:
            skips.append(Skip(clip_id, "no_keyframes", detail=f"split {clip['split']}"))
            continue
        info = video.probe(clip["video"], clip.get("fps") or folder_fps)
        window = video.frame_window(info, clip["start_sec"], clip["end_sec"])
        marked = {f for f in annotated.get(clip_id, set()) if 0 <= f < info.frame_count}
        targets = sorted(set(dense_targets(window, info.fps, settings.fps)) | marked)
        first = found.keyframes[0]
        source = video_frame_source(info, first.height, first.width)
        leave_one_out = settings.leave_one_out and propagator.name != "none"  # none: keyframes
        stream = _clip_dense(propagator, found, targets, marked, source, leave_one_out)
        table = dense_table(clip_id, found.phrase_ids, found.object_ids, tally.frames(stream))
        tables.append(table)  # RLE: the decoded masks of a frame are dropped once encoded
        written.append(clip_id)
        progress.update()
    dense = pa.concat_tables(tables) if tables else storage.empty_table("dense_masks")
    record = storage.provenance(
        f"propagate.{method}",
        {
            "fps": settings.fps,
            "leave_one_out": settings.leave_one_out,
            **propagator.provenance(),
        },
        shard=shard,
        keyframes=str(keyframes_path),
        **dict(meta or {}),
    )
    rows_per_clip = max((t.num_rows for t in tables), default=1)
    storage.write_table(dense, masks_out, "dense_masks", meta=record, row_group_size=rows_per_clip)
    rows.write(predictions_out, record)
    ledger = Ledger.of(f"predictions/{method}", shard, clip_ids, written, skips)
    summary = PropagateSummary(
        clips=len(written),
        dense_frames=tally.dense_frames,
        dense_masks=dense.num_rows,
        predictions=len(rows),
        left_out=tally.left_out,
        left_out_alone=tally.alone,
        seconds=time.perf_counter() - start,
        ledger=ledger,
    )
    logger.info("propagate %s %s: %s", method, shard, summary)
    return summary


def _add_predictions(
    rows: PredictionRows, clip_id: str, clip: ClipKeyframes, frame: DenseFrame
) -> None:
    """One prediction row per phrase of ``frame`` (not a stored proposal: proposal_id -1)."""
    counts = rle.encode_many(frame.masks)
    height, width = frame.masks.shape[1:]
    for p, phrase_id in enumerate(clip.phrase_ids):
        rows.add(clip_id, phrase_id, clip.object_ids[p], frame.frame_index, -1,
                 float(frame.scores[p]), height, width, counts[p])  # fmt: skip


def read_dense_clip(path: PathLike, clip_id: str) -> pa.Table:
    """The ``dense_masks`` rows of one clip, sorted by frame and phrase."""
    table = pq.read_table(path, filters=[("clip_id", "==", clip_id)])
    table = storage.conform(table, storage.SCHEMAS["dense_masks"], str(path))
    return table.sort_by([("frame_index", "ascending"), ("phrase_id", "ascending")])
