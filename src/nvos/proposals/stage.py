"""The ``proposals`` stage: class-agnostic mask proposals for every stored frame of a shard.

Reads ``frames/<shard>.parquet``, runs a :class:`~nvos.proposals.base.ProposalBackend` over the
frames in batches, keeps the best ``max_per_frame`` proposals of each frame (by
``predicted_iou * stability_score``) and writes ``proposals/<shard>.parquet`` (schema
``proposals`` in :data:`nvos.storage.SCHEMAS`): one row per proposal, frames in the order of the
frames table, proposals of a frame best first with ``proposal_id`` 0, 1, ... in that order.

A frame for which the backend finds no proposal has no row; it is recorded in the table's
provenance metadata as ``empty_frames: [[clip_id, frame_index], ...]`` and counted in the summary
and the log, so nothing is lost silently.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pycocotools import mask as mask_utils

from nvos import rle, storage
from nvos.config import group_values, typed
from nvos.frames import iter_frames, proposal_roles
from nvos.logs import Progress
from nvos.oom import AdaptiveBatch
from nvos.proposals.base import FrameProposals, ProposalBackend, top_k
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

__all__ = [
    "ProposalsSummary",
    "StoredProposals",
    "build_backend",
    "generate_proposals",
    "iter_proposals",
    "read_empty_frames",
    "read_proposals",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProposalsSummary:
    """What :func:`generate_proposals` wrote for one shard; ``ledger`` accounts for every clip of
    the frames table (:mod:`nvos.skips`): a clip none of whose frames has a proposal is skipped
    (``no_proposals``), and so is each frame without proposal of the other clips."""

    frames: int
    frames_empty: int
    proposals: int
    seconds: float
    empty_frames: tuple[tuple[str, int], ...]
    ledger: Ledger = field(repr=False, compare=False)

    @property
    def frames_per_second(self) -> float:
        """Throughput of the stage (frames / wall-clock second)."""
        return self.frames / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class _Frame:
    """One frame to segment: its ids and RGB uint8 image (H, W, 3)."""

    clip_id: str
    frame_index: int
    image: np.ndarray


def build_backend(config: Mapping[str, Any], device: Any = None) -> ProposalBackend:
    """The backend named by ``config["backend"]`` (the ``proposals`` config group).

    ``classical``: :class:`~nvos.proposals.classical.ClassicalBackend` with ``config["classical"]``,
    making at most ``max_per_frame`` proposals (it makes them best first, so this only saves work).
    ``sam``: :class:`~nvos.proposals.sam.SamBackend` with ``config["sam"]`` as keyword arguments
    and ``device`` (a ``torch.device``, e.g. from :func:`nvos.devices.claim_device`).
    """
    config = group_values(config, ("proposals",))  # missing keys: the schema's defaults
    if config["backend"] == "classical":
        from nvos.proposals.classical import ClassicalBackend, ClassicalConfig

        settings = typed(config["classical"], ClassicalConfig)
        # the stage keeps no more than max_per_frame: the backend need not make more
        cap = min(settings.max_proposals, int(config["max_per_frame"]))
        return ClassicalBackend(dataclasses.replace(settings, max_proposals=cap))
    from nvos.proposals.sam import SamBackend  # lazy: needs torch + segment_anything

    return SamBackend.from_config(config["sam"], device)


def generate_proposals(
    frames_path: PathLike,
    out_path: PathLike,
    backend: ProposalBackend,
    max_per_frame: int,
    batch_frames: int,
    meta: Mapping[str, Any] | None = None,
) -> ProposalsSummary:
    """Write ``proposals/<shard>.parquet`` for every frame of ``frames/<shard>.parquet``.

    Args:
        frames_path: The shard's frames table (schema ``frames``).
        out_path: Where to write the proposals table (atomically).
        backend: Makes the proposals; its ``describe()`` goes into the provenance metadata.
        max_per_frame: Keep at most this many proposals per frame, best first.
        batch_frames: Frames passed to ``backend.generate`` at once. A CUDA out-of-memory error
            retries the batch in two halves (down to single frames) before failing.
        meta: Extra provenance; its ``config`` entry (the stage's config group) is stored as the
            provenance ``config``, any other entry as is.

    Returns:
        Counts of frames, frames without proposal, proposals, and the wall-clock time.
    """
    if max_per_frame < 1:
        raise ValueError(f"max_per_frame must be >= 1, got {max_per_frame}")
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    roles = proposal_roles(frames_path)
    stored = pq.read_table(frames_path, columns=["role"]).column("role").to_pylist()
    total = sum(role in roles for role in stored)
    logger.info(
        "proposals: %d frames (roles %s) of %d from %s with backend %s (max %d per frame, "
        "batches of %d)",
        total,
        "/".join(roles),
        len(stored),
        frames_path,
        backend.name,
        max_per_frame,
        batch_frames,
    )
    start = time.perf_counter()
    progress = Progress(logger, total, "frames")
    columns: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["proposals"].names}
    empty: list[tuple[str, int]] = []
    rows_per_clip: dict[str, int] = {}
    sizer = AdaptiveBatch(batch_frames, "proposals frame")  # an OOM reduction lasts the job
    for batch in _batches(_frames(frames_path, roles, rows_per_clip), batch_frames):
        results = _generate(backend, batch, sizer)
        for frame, props in zip(batch, results, strict=True):
            kept = top_k(_checked(props, frame, backend.name), max_per_frame)
            if len(kept) == 0:
                empty.append((frame.clip_id, frame.frame_index))
            _append_rows(columns, frame, kept)
            rows_per_clip[frame.clip_id] = rows_per_clip.get(frame.clip_id, 0) + len(kept)
        progress.update(len(batch))
    seconds = time.perf_counter() - start
    ledger = _ledger(meta, rows_per_clip, empty)
    summary = ProposalsSummary(
        frames=progress.done,
        frames_empty=len(empty),
        proposals=len(columns["proposal_id"]),
        seconds=seconds,
        empty_frames=tuple(empty),
        ledger=ledger,
    )
    extra = dict(meta or {})
    record = storage.provenance(
        "proposals",
        extra.pop("config", None),
        backend=backend.describe(),
        max_per_frame=max_per_frame,
        batch_frames=batch_frames,
        frames_in=summary.frames,
        frames_empty=summary.frames_empty,
        proposals=summary.proposals,
        roles=list(roles),
        frames_without_proposal_role=len(stored) - total,
        empty_frames=[[clip_id, index] for clip_id, index in empty],
        **extra,
    )
    table = pa.table(columns, schema=storage.SCHEMAS["proposals"])
    row_group = max(rows_per_clip.values(), default=0) or None
    storage.write_table(table, out_path, "proposals", meta=record, row_group_size=row_group)
    if empty:
        logger.warning(
            "proposals: %d of %d frames have no proposal (recorded as empty_frames), e.g. %s",
            len(empty),
            summary.frames,
            empty[:5],
        )
    logger.info(
        "proposals: wrote %s: %d proposals for %d frames in %.1f s (%.2f frames/s)",
        out_path,
        summary.proposals,
        summary.frames,
        seconds,
        summary.frames_per_second,
    )
    return summary


def _ledger(
    meta: Mapping[str, Any] | None, rows_per_clip: Mapping[str, int], empty: list[tuple[str, int]]
) -> Ledger:
    """Clips in (every clip of the frames table) = clips with proposals + clips without any."""
    written = {clip_id for clip_id, rows in rows_per_clip.items() if rows}
    skips = [Skip(c, "no_proposals", detail="on none of its frames") for c, n in
             rows_per_clip.items() if not n]  # fmt: skip
    skips += [Skip(c, "no_proposals", frame_index=f) for c, f in empty if c in written]
    shard = str((meta or {}).get("shard", ""))
    return Ledger.of("proposals", shard, rows_per_clip, written, skips)


def _frames(
    frames_path: PathLike, roles: Sequence[str], rows_per_clip: dict[str, int]
) -> Iterator[_Frame]:
    """The stored frames of the shard with one of ``roles``, clips in file order, frames in
    ascending index; every clip of the file is entered in ``rows_per_clip`` (0 rows so far)."""
    for clip in iter_frames(frames_path):
        rows_per_clip.setdefault(clip.clip_id, 0)
        for index, image, role in zip(clip.frame_index, clip.images, clip.roles, strict=True):
            if role in roles:
                yield _Frame(clip.clip_id, int(index), image)


def _batches(frames: Iterator[_Frame], size: int) -> Iterator[list[_Frame]]:
    """Consecutive lists of at most ``size`` frames."""
    batch: list[_Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _generate(
    backend: ProposalBackend, batch: list[_Frame], sizer: AdaptiveBatch
) -> list[FrameProposals]:
    """``backend.generate`` on the batch, in parts of at most ``sizer.size`` frames (halved, for
    the rest of the job, on device out-of-memory)."""
    results: list[FrameProposals] = []
    run = lambda a, b: backend.generate([frame.image for frame in batch[a:b]])  # noqa: E731
    for start, stop, part in sizer.run(run, len(batch)):
        if len(part) != stop - start:
            raise RuntimeError(
                f"proposal backend {backend.name!r} returned {len(part)} results for "
                f"{stop - start} frames (first frame: clip {batch[start].clip_id!r} "
                f"frame {batch[start].frame_index})"
            )
        results.extend(part)
    return results


def _checked(props: FrameProposals, frame: _Frame, backend: str) -> FrameProposals:
    """Raise a clear error when a backend's masks do not match the frame's size."""
    height, width = frame.image.shape[:2]
    if props.masks.shape[1:] != (height, width):
        raise RuntimeError(
            f"proposal backend {backend!r} returned masks of size {props.masks.shape[1:]} for "
            f"clip {frame.clip_id!r} frame {frame.frame_index} of size {(height, width)}"
        )
    return props


def _append_rows(columns: dict[str, list[Any]], frame: _Frame, props: FrameProposals) -> None:
    """Add one row per proposal (already best first) of ``frame`` to ``columns``."""
    height, width = frame.image.shape[:2]
    counts = rle.encode_many(props.masks)
    for proposal_id, code in enumerate(counts):
        columns["clip_id"].append(frame.clip_id)
        columns["frame_index"].append(frame.frame_index)
        columns["proposal_id"].append(proposal_id)
        columns["height"].append(height)
        columns["width"].append(width)
        columns["rle_counts"].append(code)
        columns["bbox"].append(list(rle.bbox(code, height, width)))
        columns["area"].append(rle.area(code, height, width))
    columns["predicted_iou"].extend(props.predicted_iou.tolist())
    columns["stability_score"].extend(props.stability_score.tolist())


@dataclass(frozen=True)
class StoredProposals:
    """The stored proposals of one frame, best first.

    Attributes:
        clip_id, frame_index: The frame.
        height, width: The frame's size (the masks' size).
        proposal_id: (N,) int32, 0..N-1 in score order.
        rle_counts: N COCO compressed RLE counts.
        bbox: (N, 4) float32 boxes (x, y, w, h).
        area: (N,) int64 mask areas in pixels.
        predicted_iou, stability_score: (N,) float32 scores.
    """

    clip_id: str
    frame_index: int
    height: int
    width: int
    proposal_id: np.ndarray
    rle_counts: tuple[bytes, ...]
    bbox: np.ndarray
    area: np.ndarray
    predicted_iou: np.ndarray
    stability_score: np.ndarray

    def __len__(self) -> int:
        return len(self.rle_counts)

    def masks(self) -> np.ndarray:
        """Decode all masks: (N, height, width) bool."""
        if not self.rle_counts:
            return np.zeros((0, self.height, self.width), dtype=bool)
        rles = [{"size": [self.height, self.width], "counts": c} for c in self.rle_counts]
        return np.ascontiguousarray(mask_utils.decode(rles).transpose(2, 0, 1)).astype(bool)


def iter_proposals(
    path: PathLike, clip_ids: Sequence[str] | None = None
) -> Iterator[StoredProposals]:
    """Yield the proposals of ``proposals/<shard>.parquet`` one frame at a time, in file order.

    ``clip_ids`` keeps only those clips. Frames without proposal have no rows and are not yielded
    (see :func:`read_empty_frames`).
    """
    parquet = pq.ParquetFile(path)
    storage.conform(parquet.schema_arrow.empty_table(), storage.SCHEMAS["proposals"], str(path))
    wanted = None if clip_ids is None else set(clip_ids)
    rows: list[dict[str, Any]] = []
    for group in range(parquet.num_row_groups):
        for row in parquet.read_row_group(group).to_pylist():
            if wanted is not None and row["clip_id"] not in wanted:
                continue
            if rows and (row["clip_id"], row["frame_index"]) != (
                rows[0]["clip_id"],
                rows[0]["frame_index"],
            ):
                yield _stored(rows, path)
                rows = []
            rows.append(row)
    if rows:
        yield _stored(rows, path)


def read_proposals(
    path: PathLike, clip_ids: Sequence[str] | None = None
) -> dict[tuple[str, int], StoredProposals]:
    """The proposals of a shard grouped per (clip_id, frame_index) (see :func:`iter_proposals`).

    Raises ValueError naming the file when a frame's rows are not contiguous.
    """
    grouped: dict[tuple[str, int], StoredProposals] = {}
    for frame in iter_proposals(path, clip_ids):
        key = (frame.clip_id, frame.frame_index)
        if key in grouped:
            raise ValueError(f"{path}: rows of clip {key[0]!r} frame {key[1]} are not contiguous")
        grouped[key] = frame
    return grouped


def read_empty_frames(path: PathLike) -> list[tuple[str, int]]:
    """The (clip_id, frame_index) of frames for which the stage found no proposal."""
    record = storage.read_provenance(path)
    return [(str(clip_id), int(index)) for clip_id, index in record.get("empty_frames", [])]


def _stored(rows: list[dict[str, Any]], path: PathLike) -> StoredProposals:
    """Assemble one frame's rows; check proposal ids are 0..N-1 in order."""
    first = rows[0]
    ids = np.array([row["proposal_id"] for row in rows], dtype=np.int32)
    if not np.array_equal(ids, np.arange(len(rows))):
        raise ValueError(
            f"{path}: clip {first['clip_id']!r} frame {first['frame_index']}: proposal_id "
            f"must be 0..{len(rows) - 1} in order, got {ids.tolist()}"
        )
    return StoredProposals(
        clip_id=first["clip_id"],
        frame_index=int(first["frame_index"]),
        height=int(first["height"]),
        width=int(first["width"]),
        proposal_id=ids,
        rle_counts=tuple(row["rle_counts"] for row in rows),
        bbox=np.array([row["bbox"] for row in rows], dtype=np.float32).reshape(-1, 4),
        area=np.array([row["area"] for row in rows], dtype=np.int64),
        predicted_iou=np.array([row["predicted_iou"] for row in rows], dtype=np.float32),
        stability_score=np.array([row["stability_score"] for row in rows], dtype=np.float32),
    )
