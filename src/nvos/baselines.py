"""The ``sam_clip`` baseline (the paper's "SAM + CLIP" row): zero-shot, raw CLIP cosine.

For every tagged phrase (``object_id`` not null in ``phrases.parquet``) of every evaluation clip
(``split`` in ``splits``) and every keyframe of the clip (every frame with proposals, roles
:data:`nvos.frames.KEYFRAME_ROLES` in the frames table: the annotated frames are scored, the
others are what the temporal decoder and propagation build on), the prediction is the proposal
whose region embedding (``features/<shard>.regions.parquet``, the masked crop through the frozen
CLIP image tower) has the highest cosine with the embedding of the **prompt** built from the
phrase (``features.prompt``, default ``"a photo of a {phrase}."``, encoded with the same CLIP
model's standard ``encode_text``). Ties go to the lowest
``proposal_id`` (the proposals stage's best-ranked).

It writes ``predictions/sam_clip/<shard>.parquet`` (schema ``predictions``): the chosen proposal's
RLE (copied from the proposals table) and the cosine as ``score``; and, given ``scores_path``,
``scores/sam_clip/<shard>.parquet`` (schema ``region_scores``): the cosine of every proposal. A
frame without any region
embedding (no proposal, or only empty masks) gets no row; such (phrase, frame) pairs are counted
in the log and listed in the provenance (``frames_without_regions``), and the evaluation scores
them as missing, like the oracle's.

The prompt encoder is passed in as a function, so the selection can be tested with hand-made
embeddings; :func:`clip_prompt_encoder` makes the real one and checks that the regions were
embedded by the same model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nvos import storage
from nvos.dataset import read_shard_clips
from nvos.features.clip_model import ClipEncoder
from nvos.frames import keyframes
from nvos.methods.rows import PredictionRows, ScoreRows
from nvos.phrases.stage import read_shard_phrases
from nvos.proposals.stage import read_proposals
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

__all__ = [
    "PromptEncoder",
    "SamClipSummary",
    "check_same_model",
    "clip_prompt_encoder",
    "prediction_skips",
    "read_region_embeddings",
    "region_cosines",
    "sam_clip_predictions",
    "select_region",
]

logger = logging.getLogger(__name__)

PromptEncoder = Callable[[Sequence[str]], np.ndarray]
"""Maps P prompts to (P, D) L2-normalised embeddings."""


@dataclass(frozen=True)
class SamClipSummary:
    """What :func:`sam_clip_predictions` wrote for one shard; ``ledger`` accounts for every clip
    of the shard (:mod:`nvos.skips`, :func:`prediction_skips`)."""

    clips: int
    phrases: int
    predictions: int
    missing: int
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def region_cosines(embeddings: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """Cosine (N,) float32 of each row of ``embeddings`` (N, D) with ``prompt`` (D,).

    Both are normalised here (stored float16 embeddings are only nearly unit length).
    """
    regions = embeddings.astype(np.float32)
    regions /= np.maximum(np.linalg.norm(regions, axis=1, keepdims=True), 1e-12)
    query = prompt.astype(np.float32) / max(float(np.linalg.norm(prompt)), 1e-12)
    return regions @ query


def select_region(embeddings: np.ndarray, prompt: np.ndarray) -> tuple[int, float]:
    """Row of ``embeddings`` (N, D) with the highest cosine to ``prompt`` (D,), and that cosine
    (:func:`region_cosines`); ties go to the first row."""
    if len(embeddings) == 0:
        raise ValueError("select_region: no region to choose from")
    scores = region_cosines(embeddings, prompt)
    best = int(np.argmax(scores))
    return best, float(scores[best])


def read_region_embeddings(
    path: PathLike, clip_ids: Sequence[str]
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(clip_id, frame_index) → (proposal ids (N,) int32, embeddings (N, D) float16)."""
    table = pq.read_table(path, filters=[("clip_id", "in", list(clip_ids))]) if clip_ids else None
    if table is None or table.num_rows == 0:
        return {}
    dim = table.schema.field("embedding").type.list_size
    table = storage.conform(table, storage.regions_schema(dim), str(path))
    matrix = table["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    matrix = matrix.reshape(-1, dim)
    keys = list(zip(table["clip_id"].to_pylist(), table["frame_index"].to_pylist(), strict=True))
    proposal_ids = table["proposal_id"].to_numpy()
    rows: dict[tuple[str, int], list[int]] = {}
    for row, key in enumerate(keys):
        rows.setdefault(key, []).append(row)
    return {key: (proposal_ids[idx], matrix[idx]) for key, idx in rows.items()}


def check_same_model(regions_path: PathLike, description: Mapping[str, Any]) -> None:
    """Raise ValueError unless the regions were embedded by the model ``description`` names."""
    stored = storage.read_provenance(regions_path).get("clip", {})
    keys = ("model", "pretrained", "sha256", "seed", "image_size", "embed_dim")
    different = {
        k: (stored.get(k), description.get(k)) for k in keys if stored.get(k) != description.get(k)
    }
    if different:
        raise ValueError(
            f"{regions_path}: the regions were embedded by another CLIP model than the prompts "
            f"(stored, current): {different}; rebuild the features stage"
        )


def clip_prompt_encoder(encoder: ClipEncoder, batch_size: int = 64) -> PromptEncoder:
    """The prompt encoder of the baseline: CLIP's standard text embedding, L2-normalised."""
    from nvos.features.text import encode_texts

    def encode(prompts: Sequence[str]) -> np.ndarray:
        return encode_texts(encoder, prompts, batch_size).numpy()

    return encode


def sam_clip_predictions(
    regions_path: PathLike,
    proposals_path: PathLike,
    frames_path: PathLike,
    phrases_path: PathLike,
    clips_path: PathLike,
    shard: str,
    out_path: PathLike,
    encode_prompts: PromptEncoder,
    prompt_template: str = "a photo of a {phrase}.",
    splits: Sequence[str] = ("val", "test"),
    meta: Mapping[str, Any] | None = None,
    scores_path: PathLike | None = None,
    phrases_predicted: str = "tagged",
) -> SamClipSummary:
    """Write the baseline's predictions for the evaluation clips of one shard (module docstring).

    Args:
        regions_path: ``features/<shard>.regions.parquet``.
        proposals_path: ``proposals/<shard>.parquet`` (the chosen proposal's RLE).
        frames_path: ``frames/<shard>.parquet`` (the keyframes; their size).
        phrases_path: ``phrases.parquet``.
        clips_path: ``clips.parquet`` (splits).
        shard: The shard id.
        out_path: ``predictions/sam_clip/<shard>.parquet`` (written atomically).
        encode_prompts: Prompts → (P, D) embeddings (see :func:`clip_prompt_encoder`).
        prompt_template: ``str.format`` template with a ``{phrase}`` field.
        splits: Splits whose clips are predicted.
        meta: Extra provenance (e.g. ``config`` and the model description).
        scores_path: ``scores/sam_clip/<shard>.parquet``: every proposal's cosine (None: not
            written).
        phrases_predicted: ``tagged`` (the phrases evaluation scores) or ``all`` (the parsed
            phrases too: the segment stage, ``predict.phrases``).
    """
    if "{phrase}" not in prompt_template:
        raise ValueError(f"features.prompt must contain '{{phrase}}', got {prompt_template!r}")
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    wanted = pc.is_in(clips["split"], value_set=pa.array(list(splits), pa.string()))
    clip_ids = clips.filter(wanted)["clip_id"].to_pylist()
    every = phrases_predicted == "all"
    phrases = {
        clip_id: [row for row in rows if every or row["object_id"] is not None]
        for clip_id, rows in read_shard_phrases(phrases_path, clip_ids).items()
    }
    frames = keyframes(frames_path, clip_ids)
    regions = read_region_embeddings(regions_path, clip_ids)
    proposals = read_proposals(proposals_path, clip_ids)
    flat = [(clip_id, row) for clip_id in clip_ids for row in phrases[clip_id]]
    prompts = [prompt_template.format(phrase=row["text"]) for _, row in flat]
    embedded = encode_prompts(prompts) if prompts else np.zeros((0, 1), np.float32)
    if len(embedded) != len(prompts):
        raise ValueError(f"prompt encoder returned {len(embedded)} rows for {len(prompts)}")
    rows, score_rows = PredictionRows(), ScoreRows()
    missing: list[list[Any]] = []
    for (clip_id, phrase), prompt in zip(flat, embedded, strict=True):
        for frame_index, height, width in frames.get(clip_id, []):
            key = (clip_id, frame_index)
            if key not in regions:
                missing.append([clip_id, phrase["phrase_id"], frame_index])
                continue
            proposal_ids, embeddings = regions[key]
            cosines = region_cosines(embeddings, prompt)
            row = int(np.argmax(cosines))  # ties: the first (select_region)
            proposal_id, score = int(proposal_ids[row]), float(cosines[row])
            score_rows.add(clip_id, phrase["phrase_id"], phrase["object_id"], frame_index,
                           proposal_ids, cosines)  # fmt: skip
            rows.add(clip_id, phrase["phrase_id"], phrase["object_id"], frame_index, proposal_id,
                     score, height, width, proposals[key].rle_counts[proposal_id])  # fmt: skip
    if missing:
        logger.warning(
            "sam_clip: %d (phrase, frame) pairs have no region embedding and no prediction "
            "(listed in the provenance as frames_without_regions), e.g. %s",
            len(missing),
            missing[:5],
        )
    extra = dict(meta or {})
    record = storage.provenance(
        "predict.sam_clip",
        extra.pop("config", None),
        prompt=prompt_template,
        splits=list(splits),
        shard=shard,
        frames_without_regions=missing,
        **extra,
    )
    skips = prediction_skips(clips, splits, phrases, frames, regions, phrases_predicted)
    ledger = Ledger.of("predictions/sam_clip", shard, clips["clip_id"].to_pylist(),
                       rows.clip_ids, skips)  # fmt: skip
    table = rows.write(out_path, record)
    if scores_path is not None:
        score_rows.write(scores_path, record)
    summary = SamClipSummary(
        clips=len(clip_ids),
        phrases=len(flat),
        predictions=table.num_rows,
        missing=len(missing),
        seconds=time.perf_counter() - start,
        ledger=ledger,
    )
    logger.info("sam_clip: wrote %s: %s", out_path, summary)
    return summary


def prediction_skips(
    clips: pa.Table,
    splits: Sequence[str],
    tagged: Mapping[str, Sequence[Any]],
    frames: Mapping[str, Sequence[tuple[int, int, int]]],
    regions: Mapping[tuple[str, int], Any] | None = None,
    phrases_predicted: str = "tagged",
) -> list[Skip]:
    """Why a clip of the shard gets no prediction row: ``split_not_predicted`` (its split is not
    in ``splits``), ``no_tagged_phrase`` (no ``[phrase]<id>`` phrase), ``no_keyframe``, or
    ``no_regions_on_keyframes`` (no region embedding on any keyframe).

    ``tagged``: clip → its tagged phrases; ``frames``: clip → the (frame, height, width) it
    predicts: its keyframes, or its annotated frames for a method that reads no regions;
    ``regions``: the (clip_id, frame_index) keys that have region embeddings (None: a method
    that reads no regions; a clip without frames is then ``no_annotated_frame``);
    ``phrases_predicted``: ``all`` when every phrase is predicted (``tagged`` then holds every
    phrase, and a clip without any is ``no_phrase``).
    """
    no_phrase = "no_phrase" if phrases_predicted == "all" else "no_tagged_phrase"
    skips = []
    for clip_id, split in zip(
        clips["clip_id"].to_pylist(), clips["split"].to_pylist(), strict=True
    ):
        if split not in splits:
            skips.append(Skip(clip_id, "split_not_predicted", detail=f"split {split}"))
        elif not tagged.get(clip_id):
            skips.append(Skip(clip_id, no_phrase))
        elif not frames.get(clip_id):
            skips.append(
                Skip(clip_id, "no_keyframe" if regions is not None else "no_annotated_frame")
            )
        elif regions is not None and not any(
            (clip_id, f) in regions for f, _, _ in frames[clip_id]
        ):
            skips.append(Skip(clip_id, "no_regions_on_keyframes"))
    return skips
