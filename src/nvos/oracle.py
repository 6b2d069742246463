"""The ``oracle`` method ("SAM upper bound"): per object and frame, the best proposal by IoU.

For every tagged object of an evaluation clip (``[phrase]<object_id>`` tags of its narration) and
every annotated frame of the clip, the oracle picks the stored proposal with the highest IoU (J)
against the object's ground truth (the union of its instances), compared at the ground truth's
resolution: proposals are brought to that size with the evaluation's own rule
(:func:`nvos.evaluation.masks.to_gt_size`, nearest-neighbour), so the oracle's ``score`` is the J
that ``evaluate`` will give it. Ties go to the proposal ranked first (lowest ``proposal_id``); an
object absent from a frame (empty ground truth) therefore gets proposal 0 with score 0.

It writes ``predictions/oracle/<shard>.parquet`` (schema ``predictions``) with one row per tagged
**phrase** (an object tagged by two phrases gets the same mask under both phrase ids) and frame;
the mask stored is the proposal's own RLE at the frames' resolution, like any method's prediction.
It needs only proposals and annotations, so it runs before any model exists.

Not written, and counted in the log and the file's provenance: frames without any proposal (no
row: the evaluation scores them as missing), and clips without tags (training clips).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nvos import rle, storage
from nvos.dataset import read_shard_clips
from nvos.evaluation.masks import check_same_frame, to_gt_size
from nvos.evaluation.truth import ClipTruth, TaggedObject, group_truth, read_annotations
from nvos.evaluation.truth import tagged_objects as narration_objects
from nvos.logs import Progress
from nvos.methods.rows import PredictionRows
from nvos.metrics import iou_matrix
from nvos.proposals.stage import StoredProposals, read_proposals
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

logger = logging.getLogger(__name__)

METHOD = "oracle"


@dataclass(frozen=True)
class OracleSummary:
    """What :func:`build_oracle` wrote for one shard.

    ``frames_without_proposals`` lists the (clip_id, frame_index) annotated frames of tagged clips
    that had no proposal (so no row); ``mean_best_iou`` is the mean of ``score`` over the
    (object, frame) pairs written (None when none). ``ledger`` accounts for every clip of the
    shard (:mod:`nvos.skips`; reasons ``no_tagged_object``, ``no_annotations``,
    ``no_proposals_on_annotated_frames``).
    """

    shard: str
    clips: int
    clips_scored: int
    clips_untagged: int
    clips_without_annotations: int
    frames: int
    object_frames: int
    rows: int
    mean_best_iou: float | None
    frames_without_proposals: tuple[tuple[str, int], ...]
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def gt_union_counts(truth: ClipTruth, object_id: str, frame_index: int) -> bytes:
    """RLE counts of an object's ground truth (union of its instances; absent: empty) at a frame."""
    counts = truth.masks.get((frame_index, object_id), ())
    if len(counts) == 1:
        return counts[0]
    return rle.encode(truth.object_frame(object_id, frame_index).union)


def proposals_at_gt_size(proposals: StoredProposals, truth: ClipTruth) -> Sequence[bytes]:
    """The proposal RLEs of a frame at the ground truth's size (nearest-neighbour resized)."""
    check_same_frame(
        proposals.height,
        proposals.width,
        truth.height,
        truth.width,
        f"proposals of clip {truth.clip_id!r} frame {proposals.frame_index}",
    )
    if (proposals.height, proposals.width) == (truth.height, truth.width):
        return proposals.rle_counts
    masks = proposals.masks()
    resized = np.stack([to_gt_size(mask, truth.height, truth.width) for mask in masks])
    return rle.encode_many(resized)


def best_proposals(
    proposals: StoredProposals, truth: ClipTruth, objects: Sequence[TaggedObject], frame_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index (G,) of the best proposal per object and its IoU (G,), objects in the given order.

    IoU (DAVIS J, two empty masks = 1) at the ground truth's size, via
    :func:`nvos.metrics.iou_matrix`; ties go to the first (best-ranked) proposal.
    """
    pred_counts = proposals_at_gt_size(proposals, truth)
    gt_counts = [gt_union_counts(truth, obj.object_id, frame_index) for obj in objects]
    ious = iou_matrix(pred_counts, gt_counts, truth.height, truth.width)  # (P, G)
    best = np.argmax(ious, axis=0)
    return best, ious[best, np.arange(len(objects))]


def oracle_rows(
    truth: ClipTruth,
    objects: Sequence[TaggedObject],
    proposals: Mapping[tuple[str, int], StoredProposals],
    rows: PredictionRows,
    missing: list[tuple[str, int]],
) -> list[float]:
    """Append the oracle rows of one clip to ``rows``; return the best IoUs written.

    Annotated frames without proposals are appended to ``missing`` (no row).
    """
    scores: list[float] = []
    for frame_index in truth.frames:
        frame = proposals.get((truth.clip_id, frame_index))
        if frame is None or len(frame) == 0:
            missing.append((truth.clip_id, frame_index))
            continue
        best, ious = best_proposals(frame, truth, objects, frame_index)
        for obj, k, iou in zip(objects, best.tolist(), ious.tolist(), strict=True):
            scores.append(iou)
            for phrase_id in obj.phrase_ids:
                rows.add(truth.clip_id, phrase_id, obj.object_id, frame_index,
                         int(frame.proposal_id[k]), iou, frame.height, frame.width,
                         frame.rle_counts[k])  # fmt: skip
    return scores


def build_oracle(
    clips_path: PathLike,
    annotations_path: PathLike,
    proposals_path: PathLike,
    shard: str,
    out_path: PathLike,
    meta: Mapping[str, Any] | None = None,
) -> OracleSummary:
    """Write ``predictions/oracle/<shard>.parquet``: the best-IoU proposal per object and frame.

    Args:
        clips_path, annotations_path: ``clips.parquet`` and ``annotations.parquet``.
        proposals_path: ``proposals/<shard>.parquet``.
        shard: The shard id (its clips are read from ``clips_path``).
        out_path: The predictions file to write (atomically, schema ``predictions``).
        meta: Extra provenance (e.g. the config) stored in the file's metadata.

    Returns:
        The counts written (also stored in the file's provenance metadata).
    """
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    clip_ids = clips.column("clip_id").to_pylist()
    narrations = clips.column("narration").to_pylist()
    tagged = {}
    for clip_id, narration in zip(clip_ids, narrations, strict=True):
        objects = narration_objects(narration, clip_id)
        if objects:
            tagged[clip_id] = objects
    truths = group_truth(read_annotations(annotations_path, list(tagged)), annotations_path)
    proposals = read_proposals(proposals_path, list(tagged))
    rows = PredictionRows()
    missing: list[tuple[str, int]] = []
    scores: list[float] = []
    without_annotations = 0
    frames = 0
    skips = [Skip(c, "no_tagged_object") for c in clip_ids if c not in tagged]
    progress = Progress(logger, len(tagged), "clips")
    for clip_id, objects in tagged.items():
        truth = truths.get(clip_id)
        if truth is None:
            without_annotations += 1
            skips.append(Skip(clip_id, "no_annotations"))
            logger.warning("clip %r has tags but no annotation: no oracle row", clip_id)
        else:
            frames += len(truth.frames)
            scores.extend(oracle_rows(truth, objects, proposals, rows, missing))
            if not any(len(proposals.get((clip_id, f), ())) for f in truth.frames):
                skips.append(Skip(clip_id, "no_proposals_on_annotated_frames"))
        progress.update()
    summary = OracleSummary(
        shard=shard,
        clips=len(clip_ids),
        clips_scored=len(tagged) - without_annotations,
        clips_untagged=len(clip_ids) - len(tagged),
        clips_without_annotations=without_annotations,
        frames=frames,
        object_frames=len(scores),
        rows=len(rows),
        mean_best_iou=float(np.mean(scores)) if scores else None,
        frames_without_proposals=tuple(missing),
        seconds=time.perf_counter() - start,
        ledger=Ledger.of("predictions/oracle", shard, clip_ids, rows.clip_ids, skips),
    )
    record = storage.provenance(
        "oracle",
        dict(meta or {}).get("config"),
        method=METHOD,
        shard=shard,
        proposals=str(proposals_path),
        **{k: v for k, v in asdict(summary).items() if k not in ("shard", "seconds", "ledger")},
    )
    rows.write(out_path, record)
    logger.info(
        "oracle %s: %d clips (%d untagged skipped, %d without annotations), %d annotated frames "
        "(%d without proposals: no row), %d rows, mean best IoU %s -> %s",
        shard,
        summary.clips,
        summary.clips_untagged,
        without_annotations,
        frames,
        len(missing),
        summary.rows,
        "n/a" if summary.mean_best_iou is None else f"{summary.mean_best_iou:.4f}",
        out_path,
    )
    if missing:
        logger.warning(
            "%d annotated frames have no proposal (scored as missing), e.g. %s",
            len(missing),
            missing[:5],
        )
    return summary
