"""The ``links`` stage: the link term between consecutive keyframes of each clip of a shard.

For every clip of the predicted splits, its keyframes (the frames of roles
:data:`nvos.frames.KEYFRAME_ROLES`, ascending) and their proposals (``proposals/<shard>.parquet``,
ids 0..K-1 in score order), one row per pair of consecutive keyframes (a, b): the IoU (K_a, K_b)
of frame a's proposals warped onto frame b by DIS optical flow with frame b's proposals
(:mod:`nvos.temporal.flow`), stored row-major in ``links/<shard>.parquet`` (schema ``links``).

``temporal.links.step`` null: one flow step between the stored (JPEG) keyframes
(:func:`~nvos.temporal.flow.clip_links`); an integer n: the flow chained through every n-th frame
of the video between them (:func:`~nvos.temporal.flow.chained_links`; the videos are decoded).
The link term depends on the proposals only, so one file serves every decoded method.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nvos import storage, video
from nvos.dataset import read_shard_clips
from nvos.frames import KEYFRAME_ROLES, iter_frames
from nvos.logs import Progress
from nvos.proposals.stage import read_proposals
from nvos.temporal.flow import FlowEstimator, FlowSettings, chained_links, clip_links
from nvos.types import PathLike

__all__ = ["LinkSettings", "LinksSummary", "build_links", "links_settings", "read_links"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """The ``temporal.links`` config group (meanings and defaults: ``config/schema.yaml``)."""

    GROUP: ClassVar[tuple[str, ...]] = ("temporal", "links")

    preset: str = "medium"
    max_side: int = 640
    step: int | None = None

    def flow(self) -> FlowSettings:
        """The flow settings (checks the preset and size)."""
        return FlowSettings(preset=self.preset, max_side=self.max_side)


@dataclass(frozen=True)
class LinksSummary:
    """What :func:`build_links` wrote: clips linked, keyframe pairs, seconds."""

    clips: int
    pairs: int
    seconds: float


def build_links(
    frames_path: PathLike,
    proposals_path: PathLike,
    clips_path: PathLike,
    shard: str,
    out_path: PathLike,
    settings: LinkSettings,
    splits: Sequence[str],
    folder_fps: float = video.DEFAULT_FOLDER_FPS,
) -> LinksSummary:
    """Write ``links/<shard>.parquet`` for the clips of ``splits`` in ``shard`` (module docstring).

    A clip with fewer than two keyframes has no row (nothing to link); every clip's keyframe count
    is in the provenance (``keyframes``), so none is lost silently.
    """
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    wanted = [c for c in clips.to_pylist() if c["split"] in set(splits)]
    by_id = {c["clip_id"]: c for c in wanted}
    proposals = read_proposals(proposals_path, list(by_id))
    estimators: dict[tuple[int, int], FlowEstimator] = {}
    columns: dict[str, list[Any]] = {n: [] for n in storage.SCHEMAS["links"].names}
    keyframes: dict[str, int] = {}
    progress = Progress(logger, len(wanted), "clips")
    for frames in iter_frames(frames_path, KEYFRAME_ROLES, list(by_id)):
        index = [int(i) for i in frames.frame_index]
        keyframes[frames.clip_id] = len(index)
        height, width = frames.images.shape[1:3]
        counts = [
            list(p.rle_counts) if (p := proposals.get((frames.clip_id, i))) else [] for i in index
        ]
        if len(index) >= 2:
            size = (int(height), int(width))
            if size not in estimators:
                estimators[size] = FlowEstimator(*size, settings.flow())
            estimator = estimators[size]
            if settings.step is None:
                links = clip_links(estimator, list(frames.images), counts)
            else:
                clip = by_id[frames.clip_id]
                info = video.probe(clip["video"], clip.get("fps") or folder_fps)
                source = _video_source(info, int(height), int(width))
                links = chained_links(estimator, source, index, counts, settings.step)
            for t, link in enumerate(links):
                _add(columns, frames.clip_id, index[t], index[t + 1], link)
        progress.update()
    table = pa.table(columns, schema=storage.SCHEMAS["links"])
    record = storage.provenance(
        "links",
        {"preset": settings.preset, "max_side": settings.max_side, "step": settings.step},
        shard=shard,
        splits=list(splits),
        keyframes=keyframes,
    )
    storage.write_table(table, out_path, "links", record)
    summary = LinksSummary(len(keyframes), table.num_rows, time.perf_counter() - start)
    logger.info("links %s: %s", shard, summary)
    return summary


def _video_source(info: video.VideoInfo, height: int, width: int) -> Any:
    from nvos.temporal.propagate import video_frame_source

    return video_frame_source(info, height, width)


def _add(columns: dict[str, list[Any]], clip_id: str, a: int, b: int, link: np.ndarray) -> None:
    for name, value in (
        ("clip_id", clip_id),
        ("frame_a", a),
        ("frame_b", b),
        ("rows", link.shape[0]),
        ("cols", link.shape[1]),
        ("iou", link.astype(np.float32).ravel().tolist()),
    ):
        columns[name].append(value)


def read_links(
    paths: Sequence[PathLike], clip_ids: Sequence[str]
) -> dict[str, dict[tuple[int, int], np.ndarray]]:
    """clip_id -> (frame_a, frame_b) -> the link matrix (K_a, K_b) float64, for ``clip_ids``."""
    out: dict[str, dict[tuple[int, int], np.ndarray]] = {}
    wanted = list(clip_ids)
    if not wanted:
        return out
    for path in paths:
        table = storage.read_table(path, "links")
        table = table.filter(pc.is_in(table["clip_id"], pa.array(wanted, pa.string())))
        for row in table.to_pylist():
            matrix = np.asarray(row["iou"], np.float64).reshape(row["rows"], row["cols"])
            out.setdefault(row["clip_id"], {})[(row["frame_a"], row["frame_b"])] = matrix
    return out


def links_settings(group: Mapping[str, Any] | None) -> LinkSettings:
    """The typed ``temporal.links`` group (its values; missing keys take the schema's defaults)."""
    from nvos.config import typed

    return typed(group, LinkSettings)
