"""A text-prompted segmenter's predictions for one shard (the ``grounded_sam`` and ``sam3`` rows).

For every clip of the shard whose split is scored (``splits``), every annotated frame (role
``annotated`` of ``frames/<shard>.parquet``, read with :func:`nvos.frames.iter_frames`, at the
stored resolution) and every tagged phrase (``object_id`` not null in ``phrases.parquet``), the
segmenter's mask for the phrase text is one row of ``predictions/<method>/<shard>.parquet``
(``proposal_id`` -1: the mask is not a stored proposal; ``score``: the segmenter's confidence).
A phrase the segmenter finds nothing for gets an empty mask, counted as ``empty`` in the log and
the provenance. Clips without a prediction are in the skip ledger
(:func:`nvos.baselines.prediction_skips`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nvos import rle, storage
from nvos.baselines import prediction_skips
from nvos.dataset import read_shard_clips
from nvos.frames import ROLE_ANNOTATED, iter_frames
from nvos.methods.rows import PredictionRows
from nvos.phrases.stage import read_shard_phrases
from nvos.prompted.base import Segmenter
from nvos.skips import Ledger
from nvos.types import PathLike

logger = logging.getLogger(__name__)

__all__ = ["PromptedSummary", "predict_prompted_shard"]


@dataclass(frozen=True)
class PromptedSummary:
    """What :func:`predict_prompted_shard` wrote; ``ledger`` accounts for every clip."""

    method: str
    clips: int
    frames: int
    predictions: int
    empty: int
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def predict_prompted_shard(
    segmenter: Segmenter,
    method: str,
    clips_path: PathLike,
    phrases_path: PathLike,
    frames_path: PathLike,
    shard: str,
    out_path: PathLike,
    splits: Sequence[str],
    config: Mapping[str, Any] | None = None,
) -> PromptedSummary:
    """Write ``method``'s predictions for one shard with ``segmenter`` (module docstring).

    Args:
        segmenter: Phrases + frame -> masks (:class:`nvos.prompted.base.Segmenter`).
        method: The method name (``grounded_sam``, ``sam3``): the ledger's stage and provenance.
        clips_path, phrases_path, frames_path: ``clips.parquet``, ``phrases.parquet``,
            ``frames/<shard>.parquet``.
        shard: The shard id.
        out_path: ``predictions/<method>/<shard>.parquet`` (written atomically).
        splits: Splits whose clips are predicted.
        config: The method's config, recorded in the provenance.
    """
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    wanted = pc.is_in(clips["split"], value_set=pa.array(list(splits), pa.string()))
    clip_ids = clips.filter(wanted)["clip_id"].to_pylist()
    tagged = {
        clip_id: [row for row in rows if row["object_id"] is not None]
        for clip_id, rows in read_shard_phrases(phrases_path, clip_ids).items()
    }
    rows = PredictionRows()
    frames: dict[str, list[tuple[int, int, int]]] = {}
    empty = 0
    todo = [clip_id for clip_id in clip_ids if tagged[clip_id]]
    for clip in iter_frames(frames_path, roles={ROLE_ANNOTATED}, clip_ids=todo):
        phrases = tagged[clip.clip_id]
        texts = [row["text"] for row in phrases]
        height, width = clip.images.shape[1:3]
        for frame_index, image in zip(clip.frame_index.tolist(), clip.images, strict=True):
            frames.setdefault(clip.clip_id, []).append((frame_index, height, width))
            for phrase, found in zip(phrases, segmenter.segment(image, texts), strict=True):
                empty += not found.mask.any()
                rows.add(clip.clip_id, phrase["phrase_id"], phrase["object_id"], frame_index, -1,
                         found.score, height, width, rle.encode(found.mask))  # fmt: skip
        logger.info(
            "%s: clip %s, %d frames x %d phrases", method, clip.clip_id, len(clip), len(texts)
        )
    record = storage.provenance(
        f"predict.{method}",
        dict(config or {}),
        splits=list(splits),
        shard=shard,
        segmenter=segmenter.describe(),
        empty_masks=empty,
    )
    skips = prediction_skips(clips, splits, tagged, frames)
    ledger = Ledger.of(f"predictions/{method}", shard, clips["clip_id"].to_pylist(),
                       rows.clip_ids, skips)  # fmt: skip
    table = rows.write(out_path, record)
    summary = PromptedSummary(
        method=method,
        clips=len(frames),
        frames=sum(len(f) for f in frames.values()),
        predictions=table.num_rows,
        empty=empty,
        seconds=time.perf_counter() - start,
        ledger=ledger,
    )
    logger.info("%s: wrote %s: %s", method, out_path, summary)
    return summary
