"""ROSA prediction (DESIGN §7, inference): per tagged phrase and keyframe (every frame with
proposals; the annotated ones are scored), the proposal with the highest g, written to
``predictions/<method>/<shard>.parquet``; every proposal's g goes to
``scores/<method>/<shard>.parquet`` (schema ``region_scores``) for the temporal decoder.

The model is anything with ``align(batch) -> Alignment`` (:class:`AlignmentModel`), such as
:class:`nvos.rosa.model.RosaModel`: for each clip, frame and phrase, the position k of the chosen
region among the frame's proposals (-1 where there is none) and its g. The position is mapped back
to the stored ``proposal_id`` through the batch, and the mask (RLE) is copied from the shard's
proposals table. Only tagged phrases (an ``object_id``) are written: untagged ones cannot be
scored. Frames without any proposal get no row and are counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from nvos import storage
from nvos.layout import RunLayout
from nvos.logs import Progress
from nvos.methods.rows import PredictionRows, ScoreRows
from nvos.rosa.batch import ClipBatch
from nvos.rosa.config import RosaConfig
from nvos.rosa.data import FeatureDataset, make_loader
from nvos.rosa.model import Alignment
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

__all__ = [
    "AlignmentModel",
    "PredictSummary",
    "predict_rosa",
    "predict_shard",
    "region_scores",
    "select_proposals",
]

PREDICT_MODES = ("eval", "keyframes")

logger = logging.getLogger(__name__)

RLE_COLUMNS = ["clip_id", "frame_index", "proposal_id", "height", "width", "rle_counts"]


class AlignmentModel(Protocol):
    """What prediction needs from a model."""

    def align(self, batch: ClipBatch) -> Alignment:
        """Per clip, frame and phrase, the chosen region's position k and its g:
        ``index`` (B, T, N) int64 (-1 = none), ``score`` (B, T, N) float32; and ``g``
        (B, T, K, N), every region's g, when a scores file is to be written."""
        ...


@dataclass(frozen=True)
class PredictSummary:
    """What :func:`predict_rosa` wrote for one shard.

    ``frames_without_regions`` frames of the dataset (of clips kept) had no proposal, and
    ``clips_skipped`` clips of the split had no phrase or no proposal at all (see the dataset's
    summary): their tagged phrases get no prediction there, which evaluation scores as empty.
    ``ledger`` (set by :func:`predict_shard`) accounts for every clip of the shard
    (:mod:`nvos.skips`; reasons as :func:`nvos.baselines.prediction_skips`).
    """

    clips: int
    predictions: int
    untagged_phrases: int
    frames_without_regions: int
    clips_skipped: int
    seconds: float
    ledger: Ledger | None = field(default=None, repr=False, compare=False)


def select_proposals(batch: ClipBatch, alignment: Alignment) -> list[dict[str, Any]]:
    """Rows (clip_id, phrase_id, frame_index, proposal_id, score) of every chosen region.

    ``alignment.index`` (B, T, N) positions are mapped to ``batch.proposal_id`` (B, T, K); entries
    with index -1 (padding, or a frame without proposal) are left out.
    """
    index = alignment.index.detach().cpu()
    score = alignment.score.detach().float().cpu()
    b_, t_, k_ = batch.proposal_id.shape
    if index.shape[:2] != (b_, t_) or index.shape[2] != batch.phrase_id.shape[1]:
        raise ValueError(f"alignment index {tuple(index.shape)} does not fit the batch")
    valid = (index >= 0) & batch.frame_mask[:, :, None] & batch.phrase_mask[:, None, :]
    if bool((index[valid] >= k_).any()):
        raise ValueError("alignment index points past the frame's proposals")
    chosen = torch.gather(batch.proposal_id, 2, index.clamp(min=0))  # (B, T, N)
    if bool((chosen[valid] < 0).any()):
        raise ValueError("alignment selected a padded region (a model must mask them out)")
    rows = []
    for b, t, n in valid.nonzero().tolist():
        rows.append(
            {
                "clip_id": batch.clip_ids[b],
                "phrase_id": int(batch.phrase_id[b, n]),
                "frame_index": int(batch.frame_index[b, t]),
                "proposal_id": int(chosen[b, t, n]),
                "score": float(score[b, t, n]),
            }
        )
    return rows


def region_scores(batch: ClipBatch, alignment: Alignment) -> list[dict[str, Any]]:
    """Rows (clip_id, phrase_id, frame_index, proposal_ids, scores) of every real (frame, phrase)
    of the batch: the g (``alignment.g`` (B, T, K, N)) of each of the frame's real regions."""
    if alignment.g is None:
        raise ValueError("the model gives no per-region g (Alignment.g): no scores to write")
    g = alignment.g.detach().float().cpu()
    if g.shape[:3] != batch.proposal_id.shape or g.shape[3] != batch.phrase_id.shape[1]:
        raise ValueError(f"alignment g {tuple(g.shape)} does not fit the batch")
    rows = []
    frames = batch.frame_mask & batch.region_mask.any(dim=2)
    for b, t in frames.nonzero().tolist():
        real = batch.region_mask[b, t]
        ids = batch.proposal_id[b, t][real].tolist()
        values = g[b, t][real]  # (K_real, N)
        for n in batch.phrase_mask[b].nonzero().flatten().tolist():
            rows.append(
                {
                    "clip_id": batch.clip_ids[b],
                    "phrase_id": int(batch.phrase_id[b, n]),
                    "frame_index": int(batch.frame_index[b, t]),
                    "proposal_ids": ids,
                    "scores": values[:, n].tolist(),
                }
            )
    return rows


def _add_scores(
    scored: ScoreRows, dataset: FeatureDataset, rows: list[dict[str, Any]], every: bool = False
) -> None:
    """Add the rows of tagged phrases (``every``: of all phrases; :func:`region_scores`) to
    ``scored``."""
    for row in rows:
        object_id = dataset.object_id(row["clip_id"], row["phrase_id"])
        if every or object_id is not None:
            scored.add(row["clip_id"], row["phrase_id"], object_id, row["frame_index"],
                       row["proposal_ids"], row["scores"])  # fmt: skip


def _masks(
    proposals_path: PathLike, rows: list[dict[str, Any]]
) -> dict[tuple[str, int, int], tuple[int, int, bytes]]:
    """(clip_id, frame_index, proposal_id) -> (height, width, rle_counts) for the chosen rows."""
    clips = sorted({r["clip_id"] for r in rows})
    if not clips:
        return {}
    table = pq.read_table(
        proposals_path, columns=RLE_COLUMNS, filters=[("clip_id", "in", clips)], memory_map=True
    )
    declared = pa.schema([storage.SCHEMAS["proposals"].field(c) for c in RLE_COLUMNS])
    table = storage.conform(table, declared, str(proposals_path))
    wanted = {(r["clip_id"], r["frame_index"], r["proposal_id"]) for r in rows}
    found = {}
    for clip_id, frame, pid, h, w, counts in zip(
        *(table[c].to_pylist() for c in RLE_COLUMNS), strict=True
    ):
        key = (clip_id, frame, pid)
        if key in wanted:
            found[key] = (h, w, counts)
    return found


def predict_rosa(
    model: AlignmentModel,
    dataset: FeatureDataset,
    proposals_path: PathLike,
    out_path: PathLike,
    meta: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    scores_path: PathLike | None = None,
    every_phrase: bool = False,
) -> PredictSummary:
    """Write the predictions of ``model`` on ``dataset`` (one shard, ``mode="keyframes"`` or
    ``"eval"``: the annotated frames only).

    For each clip, tagged phrase (``object_id`` not null) and frame of the dataset with
    proposals: the proposal chosen by ``model.align`` and its g as ``score``, with the proposal's
    RLE copied from ``proposals_path``. Writes ``out_path`` (schema ``predictions``) atomically
    with ``meta`` as provenance, and with ``scores_path`` every region's g there (schema
    ``region_scores``, :func:`region_scores`). ``every_phrase``: the untagged (parsed) phrases
    too (``predict.phrases: all``, the segment stage). Raises ValueError when the dataset is in
    training mode or a chosen proposal is missing from the proposals table.
    """
    if dataset.mode not in PREDICT_MODES:
        raise ValueError(
            "predict_rosa needs a FeatureDataset with mode='keyframes' or mode='eval', "
            f"got {dataset.mode!r}"
        )
    start = time.perf_counter()
    if isinstance(model, torch.nn.Module):
        model.eval()
    rows: list[dict[str, Any]] = []
    scored = ScoreRows()
    untagged = 0
    progress = Progress(logger, len(dataset), "clips")
    if len(dataset):
        loader = make_loader(dataset, batch_size, shuffle=False, seed=0)
        with torch.no_grad():
            for batch in loader:
                alignment = model.align(batch.to(device))
                for row in select_proposals(batch, alignment):
                    row["object_id"] = dataset.object_id(row["clip_id"], row["phrase_id"])
                    if row["object_id"] is None and not every_phrase:
                        untagged += 1
                        continue
                    rows.append(row)
                if scores_path is not None:
                    _add_scores(scored, dataset, region_scores(batch, alignment), every_phrase)
                progress.update(len(batch))
    masks = _masks(proposals_path, rows)
    written = PredictionRows()
    for row in sorted(rows, key=lambda r: (r["clip_id"], r["phrase_id"], r["frame_index"])):
        key = (row["clip_id"], row["frame_index"], row["proposal_id"])
        if key not in masks:
            raise ValueError(
                f"{proposals_path}: no proposal {key[2]} on clip {key[0]!r} frame {key[1]} "
                "(the features and proposals of this shard do not match)"
            )
        height, width, counts = masks[key]
        written.add(row["clip_id"], row["phrase_id"], row["object_id"], row["frame_index"],
                    row["proposal_id"], row["score"], height, width, counts)  # fmt: skip
    table = written.write(out_path, meta)
    if scores_path is not None:
        scored.write(scores_path, meta)
    summary = PredictSummary(
        clips=len(dataset),
        predictions=table.num_rows,
        untagged_phrases=untagged,
        frames_without_regions=dataset.summary.frames_without_regions,
        clips_skipped=len(dataset.summary.skipped),
        seconds=time.perf_counter() - start,
    )
    logger.info(
        "predicted %d (phrase, frame) masks for %d clips in %.1f s; %d untagged phrase-frames "
        "left out; %d frames without proposal, %d clips skipped (no phrase/proposal)",
        summary.predictions,
        summary.clips,
        summary.seconds,
        untagged,
        summary.frames_without_regions,
        summary.clips_skipped,
    )
    return summary


def predict_shard(
    layout: RunLayout,
    shard: str,
    variant: str,
    config: RosaConfig,
    splits: Sequence[str] = ("val", "test"),
    batch_size: int = 16,
    lock_dir: PathLike | None = None,
    phrases: str = "tagged",
    checkpoint: PathLike | None = None,
) -> PredictSummary:
    """The ``predict`` stage of one ROSA variant (its resolved ``config``) and shard.

    Reads ``clips.parquet``, ``phrases.parquet``, ``features/<shard>.*``, ``proposals/<shard>``,
    ``frames/<shard>`` (metadata) and ``models/<variant>/checkpoint.pt`` of the run (``layout``);
    writes ``predictions/<variant>/<shard>.parquet`` and ``scores/<variant>/<shard>.parquet``
    for the keyframes of the ``splits`` clips, with the variant's ``max_regions`` proposals per
    frame, of the ``tagged`` phrases or of ``all`` (``predict.phrases``). Runs on a device claimed
    through ``lock_dir`` (CPU without CUDA). The summary's ledger accounts for every clip.
    ``checkpoint``: other weights than the run's (the segment stage's ``segment.model``).
    """
    from nvos.devices import claim_device
    from nvos.rosa.model import load_model
    from nvos.storage import file_sha256

    paths = layout.shard_paths(shard)
    checkpoint = str(checkpoint or layout.checkpoint(variant))
    out = layout.predictions(variant, shard)
    dataset = FeatureDataset(
        [paths],
        layout.clips,
        splits=list(splits),
        mode="keyframes",
        max_regions=config.max_regions,
        phrases_path=layout.phrases,
    )
    meta = storage.provenance(
        "predict",
        {"variant": variant, "rosa": config.to_dict(), "splits": list(splits), "phrases": phrases},
        method=variant,
        shard=shard,
        checkpoint=checkpoint,
        checkpoint_sha256=file_sha256(checkpoint),
    )
    with claim_device(lock_dir) as device:
        model = load_model(checkpoint, map_location=device)
        summary = predict_rosa(
            model, dataset, paths.proposals, out, meta, device, batch_size,
            layout.scores(variant, shard), every_phrase=phrases == "all",
        )  # fmt: skip
    ledger = _ledger(layout, shard, variant, splits, dataset, out, phrases == "all")
    return replace(summary, ledger=ledger)


#: FeatureDataset's reasons (eval mode) in the words of the other prediction stages.
_DATASET_REASONS = {
    "no_phrases": "no_tagged_phrase",
    "no_regions": "no_regions_on_keyframes",
}


def _ledger(
    layout: RunLayout, shard: str, variant: str, splits: Sequence[str], dataset: FeatureDataset,
    out: PathLike, every_phrase: bool = False,
) -> Ledger:  # fmt: skip
    """Every clip of the shard: predicted, or skipped with the reason (other split, left out by
    the dataset, or kept but without any tagged phrase when only tagged ones are predicted)."""
    from nvos.dataset import read_shard_clips
    from nvos.phrases.stage import read_shard_phrases

    clips = read_shard_clips(layout.clips, shard)
    clip_ids = clips["clip_id"].to_pylist()
    skips = [
        Skip(c, "split_not_predicted", detail=f"split {split}")
        for c, split in zip(clip_ids, clips["split"].to_pylist(), strict=True)
        if split not in splits
    ]
    reasons = {**_DATASET_REASONS, **({"no_phrases": "no_phrase"} if every_phrase else {})}
    skips += [Skip(c, reasons.get(r, r)) for c, r in dataset.summary.skipped]
    phrases = read_shard_phrases(layout.phrases, list(dataset.clip_ids))
    skips += [
        Skip(c, "no_tagged_phrase")
        for c in dataset.clip_ids
        if not every_phrase and all(row["object_id"] is None for row in phrases[c])
    ]
    written = pq.read_table(out, columns=["clip_id"])["clip_id"].to_pylist()
    return Ledger.of(f"predictions/{variant}", shard, clip_ids, written, skips)
