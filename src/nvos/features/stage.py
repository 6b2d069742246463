"""The ``features`` stage: frozen CLIP embeddings of every proposal and every phrase of a shard.

Writes two tables per shard (DESIGN §4), both float16 and L2-normalised:

- ``features/<shard>.regions.parquet`` (:func:`nvos.storage.regions_schema`): one row per
  proposal with a non-empty mask, for every stored frame (file order: clips, frames, proposals).
  Crops are made in batches on the device (:mod:`nvos.features.regions`), or with open_clip's
  own transform one at a time (``features.crop.mode: reference``,
  :mod:`nvos.features.reference`), and encoded by the image tower ``batch_regions`` at a time.
  A proposal with an empty mask has no row: it is counted, logged and listed in the provenance
  (``empty_regions``: ``[clip_id, frame_index, proposal_id]``).
- ``features/<shard>.text.parquet`` (:func:`nvos.storage.text_schema`): per clip, the narration
  (``phrase_id`` -1, both columns its ``encode_text`` embedding) then each phrase with its context
  and plain embeddings (:mod:`nvos.features.text`). Narrations are cleaned with
  :func:`nvos.phrases.clean_narration`, the text ``phrases.parquet``'s spans index.

The provenance (schema metadata ``nvos``) records the stage config, the model description
(:meth:`~nvos.features.clip_model.ClipEncoder.describe`: model, pretrained tag or file sha256,
input size), the crop policy, and the counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from nvos import storage
from nvos.config import group_values
from nvos.dataset import read_shard_clips
from nvos.features.clip_model import ClipEncoder, load_clip
from nvos.features.reference import reference_crops
from nvos.features.regions import CropPolicy, masked_crops, normalise_frame
from nvos.features.text import PhraseSpan, embed_narrations
from nvos.frames import iter_frames
from nvos.logs import Progress
from nvos.phrases import clean_narration
from nvos.phrases.stage import read_shard_phrases
from nvos.proposals.stage import read_proposals
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

__all__ = [
    "FeaturesSummary",
    "build_encoder",
    "crop_policy",
    "encode_regions",
    "extract_features",
    "extract_text_features",
    "region_crops",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturesSummary:
    """What :func:`extract_features` wrote for one shard; ``ledger`` accounts for the clips with
    proposals (:mod:`nvos.skips`): a clip all of whose proposals have empty masks has no region
    (``empty_masks``), and so has each such frame of the other clips. Every clip of the shard
    has its text rows."""

    shard: str
    frames: int
    frames_without_proposals: int
    regions: int
    regions_empty: int
    narrations: int
    phrases: int
    phrases_fallback: int
    region_seconds: float
    text_seconds: float
    ledger: Ledger = field(repr=False, compare=False)

    @property
    def regions_per_second(self) -> float:
        """Throughput of the region part (crops + image tower), regions per second."""
        return self.regions / max(self.region_seconds, 1e-9)


def build_encoder(features: Mapping[str, Any], device: torch.device | str) -> ClipEncoder:
    """The CLIP encoder named by the ``features`` config group (``features.clip.*``; missing
    keys: the schema's defaults)."""
    features = group_values(features, ("features",))
    clip = features["clip"]
    return load_clip(
        str(clip["model"]),
        clip["pretrained"],
        device=device,
        seed=int(clip["seed"]),
        image_size=clip["image_size"],
        autocast_bf16=bool(features["autocast_bf16"]),
    )


def crop_policy(features: Mapping[str, Any], encoder: ClipEncoder) -> CropPolicy:
    """The crop policy of the ``features`` config group (``features.crop``; missing keys: the
    schema's defaults) for the encoder's input size, normalisation and resampling filter."""
    crop = group_values(features, ("features",))["crop"]
    return CropPolicy(
        margin=float(crop["margin"]),
        size=encoder.image_size,
        mean=encoder.mean,
        std=encoder.std,
        interpolation=encoder.interpolation,
        mode=str(crop["mode"]),
    )


def region_crops(
    image: np.ndarray, masks: np.ndarray, boxes_xywh: np.ndarray, policy: CropPolicy,
    device: torch.device | str,
) -> torch.Tensor:  # fmt: skip
    """(N, 3, size, size) normalised crops on ``device`` of a frame's proposals by
    ``policy.mode``: :func:`~nvos.features.regions.masked_crops` (``fast``) or
    :func:`~nvos.features.reference.reference_crops` (``reference``).

    ``image``: RGB uint8 (H, W, 3); ``masks``: (N, H, W) bool, non-empty; ``boxes_xywh``: (N, 4).
    """
    if policy.mode == "reference":
        return reference_crops(image, masks, boxes_xywh, policy).to(device)
    frame = normalise_frame(image, policy.mean, policy.std, device)
    return masked_crops(frame, torch.from_numpy(masks), torch.from_numpy(boxes_xywh), policy)


@torch.no_grad()
def encode_regions(encoder: ClipEncoder, crops: torch.Tensor) -> np.ndarray:
    """(N, D) float16 L2-normalised image-tower embeddings of normalised crops (N, 3, S, S)."""
    with encoder.autocast():
        features = encoder.model.encode_image(crops.to(encoder.device))
    return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float16)


def extract_features(
    frames_path: PathLike,
    proposals_path: PathLike,
    phrases_path: PathLike,
    clips_path: PathLike,
    shard: str,
    regions_out: PathLike,
    text_out: PathLike,
    encoder: ClipEncoder,
    policy: CropPolicy,
    batch_regions: int = 64,
    batch_texts: int = 64,
    config: Mapping[str, Any] | None = None,
) -> FeaturesSummary:
    """Write the shard's region and text feature tables (see the module docstring).

    Args:
        frames_path: ``frames/<shard>.parquet``.
        proposals_path: ``proposals/<shard>.parquet``.
        phrases_path: ``phrases.parquet`` (all clips; the shard's are selected).
        clips_path: ``clips.parquet`` (the narrations).
        shard: The shard id.
        regions_out, text_out: Output paths (written atomically).
        encoder: The frozen CLIP model (its ``describe()`` goes into the provenance).
        policy: Crop margin and size (size must be the encoder's input size).
        batch_regions: Crops per image-tower forward.
        batch_texts: Texts per text-tower forward.
        config: The stage's config group, stored in the provenance.

    Raises:
        ValueError: Proposals of a frame that is not in the frames table; a phrase whose span
            does not hold its text; a crop size different from the model's input size.
    """
    if policy.size != encoder.image_size:
        raise ValueError(f"crop size {policy.size} != model input size {encoder.image_size}")
    if batch_regions < 1 or batch_texts < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batch_regions}, {batch_texts}")
    common = {
        "clip": encoder.describe(),
        "crop": policy.describe(),
        "input_size": encoder.image_size,
        "shard": shard,
    }
    start = time.perf_counter()
    regions, region_counts, ledger = _region_table(
        frames_path, proposals_path, shard, encoder, policy, batch_regions
    )
    region_seconds = time.perf_counter() - start
    record = storage.provenance("features.regions", config, **common, **region_counts)
    storage.write_table(
        regions, regions_out, storage.regions_schema(encoder.embed_dim), meta=record
    )
    logger.info(
        "features: wrote %s: %d regions of %d frames in %.1f s (%.1f regions/s)",
        regions_out, regions.num_rows, region_counts["frames"], region_seconds,
        regions.num_rows / max(region_seconds, 1e-9),
    )  # fmt: skip

    start = time.perf_counter()
    text_counts = extract_text_features(
        clips_path, phrases_path, shard, text_out, encoder, batch_texts, config, common
    )
    text_seconds = time.perf_counter() - start
    return FeaturesSummary(
        shard=shard,
        frames=region_counts["frames"],
        frames_without_proposals=region_counts["frames_without_proposals"],
        regions=regions.num_rows,
        regions_empty=len(region_counts["empty_regions"]),
        narrations=text_counts["narrations"],
        phrases=text_counts["phrases"],
        phrases_fallback=len(text_counts["fallback_phrases"]),
        region_seconds=region_seconds,
        text_seconds=text_seconds,
        ledger=ledger,
    )


def extract_text_features(
    clips_path: PathLike,
    phrases_path: PathLike,
    shard: str,
    text_out: PathLike,
    encoder: ClipEncoder,
    batch_texts: int = 64,
    config: Mapping[str, Any] | None = None,
    common: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the shard's text feature table (``text_out``, atomically) from the phrases of
    ``phrases_path``; returns its counts. The features stage calls it after the regions; the
    segment stage alone, for its own phrases (:mod:`nvos.segment.scope`). ``common``: provenance
    shared with the region table (default: the model and shard)."""
    start = time.perf_counter()
    common = dict(common or {"clip": encoder.describe(), "shard": shard})
    texts, counts = _text_table(clips_path, phrases_path, shard, encoder, batch_texts)
    record = storage.provenance("features.text", config, **common, **counts)
    storage.write_table(texts, text_out, storage.text_schema(encoder.embed_dim), meta=record)
    logger.info(
        "features: wrote %s: %d rows in %.1f s", text_out, texts.num_rows,
        time.perf_counter() - start,
    )  # fmt: skip
    return counts


@dataclass
class _Pending:
    """Crops waiting for the image tower, with their row ids."""

    crops: list[torch.Tensor]
    ids: list[tuple[str, int, int]]
    count: int = 0


def _region_table(
    frames_path: PathLike,
    proposals_path: PathLike,
    shard: str,
    encoder: ClipEncoder,
    policy: CropPolicy,
    batch_regions: int,
) -> tuple[pa.Table, dict[str, Any], Ledger]:
    """The regions table, its counts (frames, frames without proposals, empty regions) and the
    ledger of the clips with proposals."""
    proposals = read_proposals(proposals_path)
    clips_in = list(dict.fromkeys(clip_id for clip_id, _ in proposals))
    all_empty: list[tuple[str, int]] = []
    total = sum(int(np.count_nonzero(p.area > 0)) for p in proposals.values())
    logger.info(
        "features: %d regions of %d frames with proposals in %s (%s crops %d px, margin %.2f, "
        "batches of %d)", total, len(proposals), proposals_path, policy.mode, policy.size,
        policy.margin, batch_regions,
    )  # fmt: skip
    progress = Progress(logger, total, "regions")
    columns: dict[str, list[Any]] = {"clip_id": [], "frame_index": [], "proposal_id": []}
    embeddings: list[np.ndarray] = []
    empty: list[list[Any]] = []
    frames = without = 0
    pending = _Pending([], [])
    for clip_id, frame_index, image in _stored_frames(frames_path):
        frames += 1
        props = proposals.pop((clip_id, frame_index), None)
        if props is None:
            without += 1
            continue
        keep = props.area > 0
        empty.extend([clip_id, frame_index, int(i)] for i in props.proposal_id[~keep])
        if not keep.any():
            all_empty.append((clip_id, frame_index))
            continue
        crops = region_crops(image, props.masks()[keep], props.bbox[keep], policy, encoder.device)
        pending.crops.append(crops)
        pending.ids.extend((clip_id, frame_index, int(i)) for i in props.proposal_id[keep])
        pending.count += len(crops)
        while pending.count >= batch_regions:
            _flush(pending, encoder, batch_regions, columns, embeddings, progress)
    while pending.count:
        _flush(pending, encoder, batch_regions, columns, embeddings, progress)
    if proposals:
        missing = sorted(proposals)[:5]
        raise ValueError(
            f"{proposals_path}: {len(proposals)} frames with proposals are not in {frames_path}, "
            f"e.g. {missing}"
        )
    if empty:
        logger.warning(
            "features: %d proposals with an empty mask have no region embedding (listed in the "
            "provenance as empty_regions), e.g. %s", len(empty), empty[:5],
        )  # fmt: skip
    if without:
        logger.info("features: %d of %d stored frames have no proposal", without, frames)
    dim = encoder.embed_dim
    matrix = np.concatenate(embeddings) if embeddings else np.zeros((0, dim), np.float16)
    flat = pa.array(matrix.reshape(-1), type=pa.float16())
    table = pa.table(
        {
            "clip_id": pa.array(columns["clip_id"], pa.string()),
            "frame_index": pa.array(columns["frame_index"], pa.int64()),
            "proposal_id": pa.array(columns["proposal_id"], pa.int32()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    )
    counts = {"frames": frames, "frames_without_proposals": without, "empty_regions": empty}
    written = set(columns["clip_id"])
    skips = [
        Skip(c, "empty_masks", detail="all its proposals") for c in clips_in if c not in written
    ]
    skips += [Skip(c, "empty_masks", frame_index=f) for c, f in all_empty if c in written]
    return table, counts, Ledger.of("features", shard, clips_in, written, skips)


def _flush(
    pending: _Pending,
    encoder: ClipEncoder,
    batch_regions: int,
    columns: dict[str, list[Any]],
    embeddings: list[np.ndarray],
    progress: Progress,
) -> None:
    """Encode the first ``batch_regions`` pending crops and append their rows."""
    crops = torch.cat(pending.crops)
    batch, rest = crops[:batch_regions], crops[batch_regions:]
    ids, pending.ids = pending.ids[: len(batch)], pending.ids[len(batch) :]
    pending.crops = [rest] if len(rest) else []
    pending.count = len(rest)
    embeddings.append(encode_regions(encoder, batch))
    for clip_id, frame_index, proposal_id in ids:
        columns["clip_id"].append(clip_id)
        columns["frame_index"].append(frame_index)
        columns["proposal_id"].append(proposal_id)
    progress.update(len(batch))


def _stored_frames(frames_path: PathLike) -> Iterator[tuple[str, int, np.ndarray]]:
    """(clip_id, frame_index, RGB image (H, W, 3)) of every stored frame, in file order."""
    for clip in iter_frames(frames_path):
        for index, image in zip(clip.frame_index, clip.images, strict=True):
            yield clip.clip_id, int(index), image


def _text_table(
    clips_path: PathLike,
    phrases_path: PathLike,
    shard: str,
    encoder: ClipEncoder,
    batch_texts: int,
) -> tuple[pa.Table, dict[str, Any]]:
    """The text table of the shard's clips and its counts."""
    clips = read_shard_clips(clips_path, shard)
    clip_ids = clips["clip_id"].to_pylist()
    narrations = [clean_narration(raw) for raw in clips["narration"].to_pylist()]
    phrase_rows = read_shard_phrases(phrases_path, clip_ids)
    spans = []
    for clip_id in clip_ids:
        ids = [row["phrase_id"] for row in phrase_rows[clip_id]]
        if ids != list(range(len(ids))):
            raise ValueError(f"{phrases_path}: clip {clip_id!r} has phrase ids {ids}, not 0..N-1")
        spans.append(
            [PhraseSpan(r["char_start"], r["char_end"], r["text"]) for r in phrase_rows[clip_id]]
        )
    embedded, summary = embed_narrations(
        encoder, narrations, spans, batch_size=batch_texts, names=clip_ids
    )
    rows: dict[str, list[Any]] = {"clip_id": [], "phrase_id": []}
    context: list[np.ndarray] = []
    plain: list[np.ndarray] = []
    for clip_id, result in zip(clip_ids, embedded, strict=True):
        count = len(result.fallback)
        rows["clip_id"].extend([clip_id] * (count + 1))
        rows["phrase_id"].extend(range(-1, count))
        context.append(torch.cat([result.narration[None], result.context]).numpy())
        plain.append(torch.cat([result.narration[None], result.plain]).numpy())
    dim = encoder.embed_dim

    def column(parts: list[np.ndarray]) -> pa.FixedSizeListArray:
        matrix = np.concatenate(parts).astype(np.float16) if parts else np.zeros((0, dim))
        return pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.reshape(-1).astype(np.float16), type=pa.float16()), dim
        )

    table = pa.table(
        {
            "clip_id": pa.array(rows["clip_id"], pa.string()),
            "phrase_id": pa.array(rows["phrase_id"], pa.int32()),
            "embedding_context": column(context),
            "embedding_plain": column(plain),
        }
    )
    counts = {
        "narrations": summary.narrations,
        "phrases": summary.phrases,
        "truncated_narrations": summary.truncated_narrations,
        "fallback_phrases": summary.fallback_phrases,
        "narration_cleaning": "nvos.phrases.clean_narration",
    }
    return table, counts
