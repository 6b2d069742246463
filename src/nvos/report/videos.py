"""Overlays in motion: an MP4 of a propagated method's dense masks for each overlay clip.

Every frame of the clip's dense masks (``masks/<method>/<shard>.parquet``) is decoded from the
clip's video at the masks' size (:func:`nvos.temporal.propagate.video_frame_source`, one pass) and
drawn as the still overlays are (:func:`nvos.report.overlays.render_overlay`: each tagged object's
mask in its colour, outlined, the legend with the phrase text under the frame); on annotated
frames the ground truth's white outline is drawn too. The video is MPEG-4 Part 2 (``mp4v``, the
encoder OpenCV's wheels carry) at the clip's frame rate, written atomically as
``overlays/<clip>.mp4``. Browsers rarely play ``mp4v`` inline, so the page links the file (any
desktop player opens it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from nvos import rle, storage, video
from nvos.evaluation.masks import to_gt_size
from nvos.evaluation.truth import ClipTruth, TaggedObject
from nvos.report.overlays import LegendEntry, phrase_colour, render_overlay
from nvos.temporal.propagate import video_frame_source
from nvos.types import PathLike

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FOURCC = "mp4v"


def video_name(clip_id: str) -> str:
    """File name of a clip's overlay video: ``<clip>.mp4`` (unsafe characters replaced)."""
    return f"{_UNSAFE.sub('_', clip_id)}.mp4"


@dataclass(frozen=True)
class ClipVideo:
    """One written video: its file (relative to the report folder), clip and frame count."""

    path: str
    clip_id: str
    frames: int


def dense_clip_masks(
    paths: Sequence[PathLike], clip_id: str
) -> dict[int, dict[int, tuple[int, int, bytes]]]:
    """frame -> phrase_id -> (height, width, RLE counts) of one clip's dense masks."""
    out: dict[int, dict[int, tuple[int, int, bytes]]] = {}
    for path in paths:
        table = pq.read_table(path, filters=[("clip_id", "==", clip_id)])
        rows = storage.conform(table, storage.SCHEMAS["dense_masks"], str(path)).to_pydict()
        for i, frame in enumerate(rows["frame_index"]):
            out.setdefault(int(frame), {})[int(rows["phrase_id"][i])] = (
                int(rows["height"][i]),
                int(rows["width"][i]),
                rows["rle_counts"][i],
            )
    return out


def write_clip_video(
    path: PathLike,
    clip: Mapping[str, object],
    objects: Sequence[TaggedObject],
    truth: ClipTruth | None,
    dense: Mapping[int, Mapping[int, tuple[int, int, bytes]]],
    folder_fps: float,
    alpha: float,
) -> int:
    """Write the clip's overlay video to ``path`` (atomically); the number of frames written.

    ``clip``: its clips row (video, fps); ``dense``: :func:`dense_clip_masks`; a tagged object
    without a mask on a frame is drawn as nothing there; ``truth`` None: a video without
    annotations (``nvos segment``), no ground-truth outline or legend line.
    """
    frames = sorted(dense)
    if not frames:
        raise ValueError(f"clip {clip['clip_id']!r}: no dense masks to draw")
    height, width, _ = next(iter(dense[frames[0]].values()))
    info = video.probe(str(clip["video"]), float(clip.get("fps") or folder_fps))  # type: ignore[arg-type]
    legend = [LegendEntry(obj.phrase, phrase_colour(i)) for i, obj in enumerate(objects)]
    annotated = set(truth.frames) if truth is not None else set()
    written = 0
    with storage.atomic_path(path) as tmp:
        target = tmp.with_name(tmp.name + ".mp4")  # OpenCV picks the container by the suffix
        writer: cv2.VideoWriter | None = None
        try:
            for index, image in video_frame_source(info, height, width)(frames):
                masks = [_mask(dense[index].get(obj.phrase_id), height, width) for obj in objects]
                gt = None if truth is None else np.zeros((height, width), bool)
                if gt is not None and truth is not None and index in annotated:
                    for obj in objects:
                        union = truth.object_frame(obj.object_id, index).union
                        gt |= to_gt_size(union, height, width)
                rendered = render_overlay(image, masks, gt, legend, alpha)
                if writer is None:
                    size = (rendered.shape[1], rendered.shape[0])
                    fourcc = cv2.VideoWriter_fourcc(*FOURCC)
                    writer = cv2.VideoWriter(str(target), fourcc, info.fps, size)
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {FOURCC} video {path}")
                writer.write(cv2.cvtColor(rendered, cv2.COLOR_RGB2BGR))
                written += 1
        finally:
            if writer is not None:
                writer.release()
        os.replace(target, tmp)
    return written


def _mask(found: tuple[int, int, bytes] | None, height: int, width: int) -> np.ndarray | None:
    if found is None:
        return None
    h, w, counts = found
    return to_gt_size(rle.decode(counts, h, w), height, width)


def clip_videos(
    paths: Sequence[PathLike],
    clips: Mapping[str, Mapping[str, object]],
    objects: Mapping[str, Sequence[TaggedObject]],
    truths: Mapping[str, ClipTruth],
    out_dir: Path,
    folder_fps: float,
    alpha: float,
) -> dict[str, ClipVideo]:
    """The overlay videos of ``clips`` (id -> clips row) from dense mask files ``paths``; a clip
    without dense masks is logged and left out."""
    videos = {}
    for clip_id, clip in clips.items():
        dense = dense_clip_masks(paths, clip_id)
        if not dense:
            logger.warning("report: clip %r has no dense masks, no video", clip_id)
            continue
        name = video_name(clip_id)
        count = write_clip_video(
            out_dir / "overlays" / name, clip, objects[clip_id], truths.get(clip_id),
            dense, folder_fps, alpha,
        )  # fmt: skip
        videos[clip_id] = ClipVideo(f"overlays/{name}", clip_id, count)
    return videos
