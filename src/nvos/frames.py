"""The ``frames`` stage: decode, sample, resize and JPEG-encode the frames of each clip of a shard.

For every clip the stage keeps **every annotated frame** (the exact ``frame_index`` of its ground
truth masks, role ``annotated``) plus ``per_clip`` frames sampled uniformly in the clip window
(role ``sampled``). Frames are resized so that their long side is at most ``max_side`` (area
interpolation, never upscaled, aspect ratio kept) and stored as JPEG in
``frames/<shard>.parquet`` (schema ``frames`` in :data:`nvos.storage.SCHEMAS`).

Downstream stages read them back with :func:`iter_frames` (RGB arrays grouped per clip) or
:func:`decode_jpeg` (one frame).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage, video
from nvos.dataset import read_shard_clips
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

logger = logging.getLogger(__name__)

ROLE_ANNOTATED = "annotated"
ROLE_SAMPLED = "sampled"
ROLES = (ROLE_ANNOTATED, ROLE_SAMPLED)
KEYFRAME_ROLES = (ROLE_ANNOTATED, ROLE_SAMPLED)
"""Roles of the frames that get proposals ("keyframes"): per-frame region-scoring methods predict
on all of them, the temporal decoder chooses a path over them (docs/temporal.md)."""


class ClipFramesError(video.VideoError):
    """A clip whose frames cannot be extracted; the message names the clip, its video and why."""


@dataclass(frozen=True)
class FramesSummary:
    """What :func:`extract_frames` wrote for one shard; ``ledger`` accounts for every clip
    (:mod:`nvos.skips`; skip reason ``no_frames``)."""

    shard: str
    clips: int
    frames_annotated: int
    frames_sampled: int
    clips_without_frames: int
    annotated_outside_window: int
    ledger: Ledger = field(repr=False, compare=False)

    @property
    def frames(self) -> int:
        """Total number of stored frames."""
        return self.frames_annotated + self.frames_sampled


@dataclass(frozen=True)
class ClipFrames:
    """The stored frames of one clip, in ascending frame order.

    ``images`` is RGB uint8 of shape (T, H, W, 3) (all frames of a clip share the video's size);
    ``frame_index`` (int64) and ``time_sec`` (float64) have shape (T,); ``roles`` has T entries.
    """

    clip_id: str
    frame_index: np.ndarray
    time_sec: np.ndarray
    roles: tuple[str, ...]
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.roles)


def sample_frame_indices(
    window: range, annotated: Sequence[int], per_clip: int, avoid_annotated: bool = False
) -> list[tuple[int, str]]:
    """The frames to store for one clip: (frame_index, role) sorted by frame index.

    Every annotated frame is kept with its exact index (role ``annotated``), whether or not it lies
    in ``window``. ``per_clip`` frames are sampled uniformly in ``window``: the window is cut into
    ``per_clip`` equal segments and the frame at the centre of each is taken (role ``sampled``); a
    window shorter than ``per_clip`` contributes every frame. A sampled frame that is also annotated
    is kept once, as ``annotated``. With ``avoid_annotated`` (the honest protocol) the same rule
    samples the window's frames that are not annotated, so every sampled frame is one.
    """
    if per_clip < 0:
        raise ValueError(f"per_clip must be >= 0, got {per_clip}")
    marked = {int(a) for a in annotated}
    pool: Sequence[int] = [f for f in window if f not in marked] if avoid_annotated else window
    length = len(pool)
    if length <= per_clip:
        sampled = set(pool)
    else:
        sampled = {pool[((2 * i + 1) * length) // (2 * per_clip)] for i in range(per_clip)}
    roles = {int(index): ROLE_SAMPLED for index in sampled}
    roles.update({int(index): ROLE_ANNOTATED for index in annotated})
    return sorted(roles.items())


def proposal_roles(frames_path: PathLike) -> tuple[str, ...]:
    """The roles of the frames that get proposals, as the frames stage recorded them: every
    stored frame, or only the sampled ones under the honest protocol
    (``frames.proposals_on_annotated: false``)."""
    config = storage.read_provenance(frames_path).get("config", {})
    return ROLES if config.get("proposals_on_annotated", True) else (ROLE_SAMPLED,)


def resize_to_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``image`` (H, W, C) so its long side is at most ``max_side`` (area interpolation).

    The aspect ratio is kept (each side rounded, at least 1 pixel); an image that already fits is
    returned unchanged (never upscaled).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    height, width = image.shape[:2]
    long_side = max(height, width)
    if long_side <= max_side:
        return image
    scale = max_side / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR uint8 image (H, W, 3) at ``quality`` (1..100)."""
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV cannot JPEG-encode an image of shape {image_bgr.shape}")
    return buffer.tobytes()


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """Decode stored JPEG bytes to an RGB uint8 image (H, W, 3)."""
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode JPEG data ({len(jpeg)} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def annotated_frames(annotations_path: PathLike, clip_ids: Collection[str]) -> dict[str, set[int]]:
    """The annotated frame indices of each of ``clip_ids`` (a clip without any is absent)."""
    if not clip_ids:
        return {}
    table = pq.read_table(
        annotations_path,
        columns=["clip_id", "frame_index"],
        filters=[("clip_id", "in", sorted(set(clip_ids)))],
    )
    frames: dict[str, set[int]] = {}
    for clip_id, frame_index in zip(
        table.column("clip_id").to_pylist(), table.column("frame_index").to_pylist(), strict=True
    ):
        frames.setdefault(clip_id, set()).add(int(frame_index))
    return frames


def _clip_error(clip_id: str, path: str, error: Exception | str) -> ClipFramesError:
    reason = str(error).removeprefix(f"{path}: ")
    return ClipFramesError(f"clip {clip_id!r} (video {path}): {reason}")


def clip_frame_rows(
    clip_id: str,
    info: video.VideoInfo,
    selection: Sequence[tuple[int, str]],
    max_side: int,
    jpeg_quality: int,
) -> pa.Table:
    """Decode the selected (frame_index, role) frames of one clip into ``frames`` rows.

    One decoding pass over the video. Raises :class:`ClipFramesError` naming the clip and video
    when a frame is outside the video or cannot be decoded.
    """
    roles = dict(selection)
    rows: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["frames"].names}
    try:
        for frame_index, image in video.read_frames(info, roles):
            stored = resize_to_max_side(image, max_side)
            rows["clip_id"].append(clip_id)
            rows["frame_index"].append(frame_index)
            rows["time_sec"].append(frame_index / info.fps)
            rows["height"].append(stored.shape[0])
            rows["width"].append(stored.shape[1])
            rows["role"].append(roles[frame_index])
            rows["jpeg"].append(encode_jpeg(stored, jpeg_quality))
    except video.VideoError as error:
        raise _clip_error(clip_id, info.path, error) from error
    missing = sorted(set(roles) - set(rows["frame_index"]))
    if missing:
        raise _clip_error(clip_id, info.path, f"frames {missing} were not decoded")
    return pa.table(rows, schema=storage.SCHEMAS["frames"])


def extract_frames(
    clips_path: PathLike,
    annotations_path: PathLike,
    shard: str,
    out_path: PathLike,
    per_clip: int,
    max_side: int,
    jpeg_quality: int,
    folder_fps: float = video.DEFAULT_FOLDER_FPS,
    meta: Mapping[str, Any] | None = None,
    log_every: int = 25,
    proposals_on_annotated: bool = True,
) -> FramesSummary:
    """Write ``frames/<shard>.parquet``: the annotated and sampled frames of the clips of ``shard``.

    For each clip: probe its video (file or frame folder; a folder runs at the clip's ``fps`` when
    the clips schema declares that column, else at ``folder_fps``), take the frames of its window
    [start_sec, end_sec) (:func:`nvos.video.frame_window`), choose frames with
    :func:`sample_frame_indices`, decode them in one pass, shrink to ``max_side`` and encode as
    JPEG at ``jpeg_quality``. ``time_sec`` = frame_index / fps. Rows are grouped per clip, in
    shard order. ``proposals_on_annotated`` False (the honest protocol) samples among the
    window's unannotated frames and records in the provenance that annotated frames get no
    proposals (:func:`proposal_roles`, read by the proposals stage).

    The table is written atomically with a provenance record: the stage config, the shard and the
    input paths, updated with ``meta`` (e.g. a full :func:`nvos.storage.provenance` record). A
    shard id with no clips is a ``ValueError``. Raises :class:`ClipFramesError` naming the clip
    and video on an unreadable video, an empty clip window or a frame outside the video; nothing is
    written then.
    """
    config = {
        "per_clip": per_clip,
        "max_side": max_side,
        "jpeg_quality": jpeg_quality,
        "folder_fps": folder_fps,
        "proposals_on_annotated": proposals_on_annotated,
    }
    clips = read_shard_clips(clips_path, shard)
    clip_ids = clips.column("clip_id").to_pylist()
    annotated = annotated_frames(annotations_path, clip_ids)
    total = len(clip_ids)
    logger.info("frames %s: %d clips, config %s", shard, total, config)
    started = time.monotonic()
    tables: list[pa.Table] = []
    counts = {ROLE_ANNOTATED: 0, ROLE_SAMPLED: 0}
    without_frames = 0
    outside_window = 0
    written: list[str] = []
    skips: list[Skip] = []
    for done, clip in enumerate(clips.to_pylist(), start=1):
        clip_id, path = clip["clip_id"], clip["video"]
        try:
            info = video.probe(path, clip.get("fps") or folder_fps)
        except video.VideoError as error:
            raise _clip_error(clip_id, path, error) from error
        window = video.frame_window(info, clip["start_sec"], clip["end_sec"])
        if len(window) == 0:
            raise _clip_error(
                clip_id,
                path,
                f"clip window [{clip['start_sec']}, {clip['end_sec']}) s holds no frame of the "
                f"video ({info.frame_count} frames at {info.fps:g} fps)",
            )
        clip_annotated = annotated.get(clip_id, set())
        outside = sorted(i for i in clip_annotated if i not in window)
        if outside:
            outside_window += len(outside)
            logger.warning(
                "clip %r: annotated frames %s lie outside its window %d..%d (kept)",
                clip_id,
                outside,
                window.start,
                window.stop - 1,
            )
        selection = sample_frame_indices(
            window, sorted(clip_annotated), per_clip, avoid_annotated=not proposals_on_annotated
        )
        if selection:
            table = clip_frame_rows(clip_id, info, selection, max_side, jpeg_quality)
            tables.append(table)
            written.append(clip_id)
            for role in table.column("role").to_pylist():
                counts[role] += 1
        else:
            without_frames += 1
            skips.append(Skip(clip_id, "no_frames", detail="no annotated frame and per_clip = 0"))
            logger.warning("clip %r: no annotated frame and per_clip=0, no frame stored", clip_id)
        if done % max(log_every, 1) == 0 or done == total:
            logger.info(
                "frames %s: %d/%d clips, %d frames (%d annotated, %d sampled), %.1f s",
                shard,
                done,
                total,
                sum(counts.values()),
                counts[ROLE_ANNOTATED],
                counts[ROLE_SAMPLED],
                time.monotonic() - started,
            )
    ledger = Ledger.of("frames", shard, clip_ids, written, skips)
    frames = pa.concat_tables(tables) if tables else storage.empty_table("frames")
    record = {
        **storage.provenance(
            "frames",
            config,
            shard=shard,
            clips=str(clips_path),
            annotations=str(annotations_path),
        ),
        **dict(meta or {}),
    }
    rows_per_clip = max((len(t) for t in tables), default=1)
    storage.write_table(frames, out_path, "frames", meta=record, row_group_size=rows_per_clip)
    summary = FramesSummary(
        shard=shard,
        clips=total,
        frames_annotated=counts[ROLE_ANNOTATED],
        frames_sampled=counts[ROLE_SAMPLED],
        clips_without_frames=without_frames,
        annotated_outside_window=outside_window,
        ledger=ledger,
    )
    logger.info("frames %s: wrote %s (%s)", shard, out_path, summary)
    return summary


def _clip_frames(clip_id: str, rows: list[dict[str, Any]]) -> ClipFrames:
    rows = sorted(rows, key=lambda row: row["frame_index"])
    images = [decode_jpeg(row["jpeg"]) for row in rows]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"clip {clip_id!r}: stored frames differ in size {sorted(shapes)}")
    return ClipFrames(
        clip_id=clip_id,
        frame_index=np.array([row["frame_index"] for row in rows], dtype=np.int64),
        time_sec=np.array([row["time_sec"] for row in rows], dtype=np.float64),
        roles=tuple(row["role"] for row in rows),
        images=np.stack(images),
    )


def iter_frames(
    frames_path: PathLike,
    roles: Collection[str] | None = None,
    clip_ids: Collection[str] | None = None,
) -> Iterator[ClipFrames]:
    """Yield the frames of ``frames/<shard>.parquet`` one clip at a time, decoded to RGB.

    Clips come in file order, their frames in ascending ``frame_index``; ``roles`` keeps only those
    roles (e.g. ``{"annotated"}`` for evaluation) and ``clip_ids`` only those clips (a clip left
    with no frame is not yielded). Reads one row group at a time, so memory holds about one clip.
    """
    wanted_roles = set(ROLES if roles is None else roles)
    unknown = wanted_roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown frame roles {sorted(unknown)} (known: {list(ROLES)})")
    wanted_clips = None if clip_ids is None else set(clip_ids)
    parquet = pq.ParquetFile(frames_path)
    storage.conform(parquet.schema_arrow.empty_table(), storage.SCHEMAS["frames"], str(frames_path))
    seen: set[str] = set()
    current: str | None = None
    buffer: list[dict[str, Any]] = []
    for group in range(parquet.num_row_groups):
        for row in parquet.read_row_group(group).to_pylist():
            clip_id = row["clip_id"]
            if clip_id != current:
                if current is not None and buffer:
                    yield _clip_frames(current, buffer)
                if clip_id in seen:
                    raise ValueError(f"{frames_path}: rows of clip {clip_id!r} are not contiguous")
                seen.add(clip_id)
                current, buffer = clip_id, []
            if row["role"] in wanted_roles and (wanted_clips is None or clip_id in wanted_clips):
                buffer.append(row)
    if current is not None and buffer:
        yield _clip_frames(current, buffer)


def keyframes(
    frames_path: PathLike, clip_ids: Sequence[str]
) -> dict[str, list[tuple[int, int, int]]]:
    """clip_id → [(frame_index, height, width)] of its keyframes (roles :data:`KEYFRAME_ROLES`),
    ascending; the JPEGs are not read."""
    if not clip_ids:
        return {}
    table = pq.read_table(
        frames_path,
        columns=["clip_id", "frame_index", "role", "height", "width"],
        filters=[("clip_id", "in", list(clip_ids)), ("role", "in", list(KEYFRAME_ROLES))],
    )
    out: dict[str, list[tuple[int, int, int]]] = {}
    for row in table.sort_by([("clip_id", "ascending"), ("frame_index", "ascending")]).to_pylist():
        out.setdefault(row["clip_id"], []).append(
            (int(row["frame_index"]), int(row["height"]), int(row["width"]))
        )
    return out
