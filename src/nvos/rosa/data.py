"""ROSA's data: clips of cached CLIP region and phrase embeddings, read without per-step decoding.

Inputs per shard (DESIGN §3–§4): ``features/<shard>.regions.parquet`` (one embedding per proposal),
``features/<shard>.text.parquet`` (phrase embeddings with and without narration context),
``proposals/<shard>.parquet`` (boxes and scores; the RLE masks are not read here) and
``frames/<shard>.parquet`` (only ``clip_id, frame_index, time_sec, role``: never the JPEGs), plus
the run's ``clips.parquet`` (split, clip window) and ``phrases.parquet`` (object ids).

The shards' embeddings are read through their Arrow IPC caches (:mod:`nvos.rosa.feature_cache`):
memory-mapped, converted once, so reading a clip is a few slices (no Parquet decoding per step).

Items (:class:`~nvos.rosa.batch.ClipItem`): training mode samples ``frames_per_clip`` frames of the
roles ``sampled`` and ``annotated`` per clip (seeded by ``seed``, the epoch and the clip: the same
seed gives the same items); evaluation mode takes every annotated frame, keyframes mode every frame
of the roles :data:`nvos.frames.KEYFRAME_ROLES` (prediction). Up to ``max_regions``
proposals per frame, best ``predicted_iou * stability_score`` first, and the clip's object phrases
(``phrase_id >= 0``). Clips without phrase or without any proposal on their frames are skipped and
counted (:class:`FeatureSummary`, and the log); frames without proposal are counted too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from nvos.frames import KEYFRAME_ROLES
from nvos.rosa.batch import ClipBatch, ClipItem, collate
from nvos.rosa.feature_cache import (
    ShardArrays,
    ShardPaths,
    clip_codes,
    ensure_cache,
    open_cache,
    read_columns,
    region_table,
    text_table,
)
from nvos.types import PathLike

__all__ = [
    "ClipLoader",
    "FeatureDataset",
    "FeatureSummary",
    "ShardPaths",
    "make_loader",
]

logger = logging.getLogger(__name__)

Mode = Literal["train", "eval", "keyframes"]

FRAME_COLUMNS = ["clip_id", "frame_index", "time_sec", "role"]
CLIP_COLUMNS = ["clip_id", "start_sec", "end_sec", "split", "shard"]
PHRASE_COLUMNS = ["clip_id", "phrase_id", "object_id"]
ROLES: dict[str, tuple[str, ...]] = {
    "train": ("sampled", "annotated"),
    "eval": ("annotated",),
    "keyframes": KEYFRAME_ROLES,
}


@dataclass(frozen=True)
class FeatureSummary:
    """What a :class:`FeatureDataset` holds and what it skipped.

    ``skipped``: (clip_id, reason) of every clip of the split left out, reason ``no_phrases`` or
    ``no_regions`` (no proposal on any of its frames of the mode's roles).
    """

    splits: tuple[str, ...]
    mode: str
    clips: int
    frames: int
    regions: int
    phrases: int
    frames_without_regions: int
    skipped: tuple[tuple[str, str], ...] = field(default=())

    @property
    def clips_without_phrases(self) -> int:
        """Clips skipped because they have no object phrase."""
        return sum(reason == "no_phrases" for _, reason in self.skipped)

    @property
    def clips_without_regions(self) -> int:
        """Clips skipped because none of their frames has a proposal."""
        return sum(reason == "no_regions" for _, reason in self.skipped)


# --------------------------------------------------------------------------------------------
# The dataset


class FeatureDataset(Dataset[ClipItem]):
    """Clips of one or more shards' feature caches, as :class:`~nvos.rosa.batch.ClipItem`.

    Args:
        shards: the shards to read (:meth:`nvos.layout.RunLayout.shard_paths`).
        clips_path: the run's ``clips.parquet`` (split, window and shard of each clip).
        splits: keep clips of these splits (a name, a list, or None for all).
        mode: ``train`` (sample ``frames_per_clip`` frames of the roles sampled + annotated per
            clip and epoch), ``eval`` (every annotated frame) or ``keyframes`` (every frame of the
            roles :data:`nvos.frames.KEYFRAME_ROLES`: prediction).
        frames_per_clip: frames per training item (clips with fewer keep all of theirs).
        max_regions: proposals per frame at most, best predicted_iou * stability first.
        seed: seed of the frame sampling (with :meth:`set_epoch` and the clip's position).
        memory_map: True (default): memory-map the IPC caches; False: decode the Parquet files
            once into memory (no cache files; each DataLoader worker gets a copy).
        phrases_path: the run's ``phrases.parquet``; needed for :meth:`object_id`.

    Clips appear in ``clips.parquet`` order. Index arrays are built once, at construction.
    """

    def __init__(
        self,
        shards: Sequence[ShardPaths],
        clips_path: PathLike,
        splits: str | Sequence[str] | None = "train",
        mode: Mode = "train",
        frames_per_clip: int = 8,
        max_regions: int = 64,
        seed: int = 0,
        memory_map: bool = True,
        phrases_path: PathLike | None = None,
    ) -> None:
        if mode not in ROLES:
            raise ValueError(f"mode must be one of {sorted(ROLES)}, got {mode!r}")
        if frames_per_clip < 1 or max_regions < 1:
            raise ValueError("frames_per_clip and max_regions must be >= 1")
        if not shards:
            raise ValueError("FeatureDataset: no shard given")
        self.shards = list(shards)
        self.splits = (splits,) if isinstance(splits, str) else splits and tuple(splits)
        self.mode: Mode = mode
        self.frames_per_clip = int(frames_per_clip)
        self.max_regions = int(max_regions)
        self.seed = int(seed)
        self.epoch = 0
        self.memory_map = memory_map
        self.phrases_path = Path(phrases_path) if phrases_path else None
        self._object_ids: dict[tuple[str, int], str | None] | None = None
        self._shard_arrays: list[ShardArrays] | None = None
        arrays = self._arrays()
        self._build_index(Path(clips_path), arrays)

    # -- loading ---------------------------------------------------------------------------

    def _arrays(self) -> list[ShardArrays]:
        """The shards' arrays, opened on first use in each process."""
        if self._shard_arrays is None:
            opened = []
            for paths in self.shards:
                if self.memory_map:
                    regions = open_cache(ensure_cache("regions", paths))
                    text = open_cache(ensure_cache("text", paths))
                else:
                    regions = region_table(paths.regions, paths.proposals)
                    text = text_table(paths.text)
                opened.append(ShardArrays.of(regions, text))
            dims = {a.regions.shape[1] for a in opened} | {a.context.shape[1] for a in opened}
            if len(dims) != 1:
                names = [p.shard for p in self.shards]
                raise ValueError(f"shards {names}: embedding sizes differ ({sorted(dims)})")
            self._shard_arrays = opened
        return self._shard_arrays

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.memory_map:  # workers re-map the files instead of receiving a copy
            state["_shard_arrays"] = None
        return state

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self._arrays()[0].regions.shape[1])

    def _build_index(self, clips_path: Path, arrays: list[ShardArrays]) -> None:
        clips = read_columns(clips_path, CLIP_COLUMNS, "clips").to_pylist()
        roles = ROLES[self.mode]
        frame_start: list[np.ndarray] = []
        frame_count: list[np.ndarray] = []
        frame_index: list[np.ndarray] = []
        frame_time: list[np.ndarray] = []
        clip_ids: list[str] = []
        clip_shard: list[int] = []
        clip_frames: list[tuple[int, int]] = []
        clip_phrases: list[tuple[int, int]] = []
        skipped: list[tuple[str, str]] = []
        n_frames = frames_without = 0
        for s, paths in enumerate(self.shards):
            wanted = [
                c
                for c in clips
                if c["shard"] == paths.shard and (self.splits is None or c["split"] in self.splits)
            ]
            runs = _frame_runs(arrays[s].tables[0], paths)
            phrases = _phrase_runs(arrays[s].tables[1])
            frames = _frames_by_clip(paths.frames, roles, {c["clip_id"] for c in wanted}, runs)
            for clip in wanted:
                clip_id = clip["clip_id"]
                index, time_sec = frames.get(clip_id, (np.zeros(0, np.int64), np.zeros(0)))
                starts = np.array([runs.get((clip_id, int(f)), (0, 0))[0] for f in index], np.int64)
                counts = np.array([runs.get((clip_id, int(f)), (0, 0))[1] for f in index], np.int64)
                frames_without += int((counts == 0).sum())
                keep = counts > 0
                lo, hi = phrases.get(clip_id, (0, 0))
                if hi <= lo:
                    skipped.append((clip_id, "no_phrases"))
                    continue
                if not keep.any():
                    skipped.append((clip_id, "no_regions"))
                    continue
                first = n_frames
                n_frames += int(keep.sum())
                frame_start.append(starts[keep])
                frame_count.append(counts[keep])
                frame_index.append(index[keep])
                frame_time.append(_clip_time(time_sec, clip)[keep])
                clip_ids.append(clip_id)
                clip_shard.append(s)
                clip_frames.append((first, n_frames))
                clip_phrases.append((lo, hi))
        cat = np.concatenate
        self._frame_start = cat(frame_start) if frame_start else np.zeros(0, np.int64)
        self._frame_count = cat(frame_count) if frame_count else np.zeros(0, np.int64)
        self._frame_index = cat(frame_index) if frame_index else np.zeros(0, np.int64)
        self._frame_time = (cat(frame_time) if frame_time else np.zeros(0)).astype(np.float32)
        self.clip_ids = clip_ids
        self._clip_shard = np.array(clip_shard, np.int64)
        self._clip_frames = np.array(clip_frames, np.int64).reshape(-1, 2)
        self._clip_phrases = np.array(clip_phrases, np.int64).reshape(-1, 2)
        self.summary = FeatureSummary(
            splits=tuple(self.splits or ()),
            mode=self.mode,
            clips=len(clip_ids),
            frames=n_frames,
            regions=int(np.minimum(self._frame_count, self.max_regions).sum()),
            phrases=int((self._clip_phrases[:, 1] - self._clip_phrases[:, 0]).sum()),
            frames_without_regions=frames_without,
            skipped=tuple(skipped),
        )
        s = self.summary
        logger.info(
            "%s dataset (splits %s, %d shards): %d clips, %d frames, %d regions, %d phrases; "
            "skipped %d clips without phrase, %d without proposal; %d frames without proposal",
            s.mode,
            list(s.splits) or "all",
            len(self.shards),
            s.clips,
            s.frames,
            s.regions,
            s.phrases,
            s.clips_without_phrases,
            s.clips_without_regions,
            s.frames_without_regions,
        )
        for clip_id, reason in skipped:
            logger.info("skipped clip %s: %s", clip_id, reason)
        if not clip_ids:
            logger.warning(
                "%s dataset is empty: no clip of splits %s in shards %s has phrases and proposals",
                s.mode,
                list(s.splits) or "all",
                [p.shard for p in self.shards],
            )

    # -- items -----------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose frame sample :meth:`__getitem__` returns (training mode)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def frames_of(self, i: int) -> np.ndarray:
        """Positions (into the dataset's frame arrays) of clip ``i``'s frames for this epoch."""
        lo, hi = self._clip_frames[i]
        frames = np.arange(lo, hi)
        if self.mode == "train" and len(frames) > self.frames_per_clip:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            frames = np.sort(rng.choice(frames, self.frames_per_clip, replace=False))
        return frames

    def __getitem__(self, i: int) -> ClipItem:
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} out of range (0..{len(self) - 1})")
        shard = self._arrays()[self._clip_shard[i]]
        frames = self.frames_of(i)
        counts = np.minimum(self._frame_count[frames], self.max_regions)
        t, k, dim = len(frames), int(counts.max()), shard.regions.shape[1]
        regions = np.zeros((t, k, dim), np.float16)
        boxes = np.zeros((t, k, 4), np.float32)
        proposal_id = np.full((t, k), -1, np.int64)
        for j, (start, count) in enumerate(zip(self._frame_start[frames], counts, strict=True)):
            rows = slice(start, start + count)
            regions[j, :count] = shard.regions[rows]
            boxes[j, :count] = shard.boxes[rows]
            proposal_id[j, :count] = shard.proposal_id[rows]
        lo, hi = self._clip_phrases[i]
        return ClipItem(
            clip_id=self.clip_ids[i],
            regions=regions,
            region_count=counts.astype(np.int64),
            boxes=boxes,
            frame_time=self._frame_time[frames],
            frame_index=self._frame_index[frames],
            proposal_id=proposal_id,
            phrase_context=np.array(shard.context[lo:hi]),
            phrase_plain=np.array(shard.plain[lo:hi]),
            phrase_id=shard.phrase_id[lo:hi].astype(np.int64),
        )

    def object_id(self, clip_id: str, phrase_id: int) -> str | None:
        """The object id of a phrase (None if untagged), from ``phrases_path``."""
        if self._object_ids is None:
            if self.phrases_path is None:
                raise ValueError("FeatureDataset: object ids need phrases_path (phrases.parquet)")
            rows = read_columns(self.phrases_path, PHRASE_COLUMNS, "phrases").to_pylist()
            self._object_ids = {(r["clip_id"], int(r["phrase_id"])): r["object_id"] for r in rows}
        key = (clip_id, int(phrase_id))
        if key not in self._object_ids:
            raise ValueError(f"{self.phrases_path}: clip {clip_id!r} has no phrase {phrase_id}")
        return self._object_ids[key]


def _frame_runs(regions: pa.Table, paths: ShardPaths) -> dict[tuple[str, int], tuple[int, int]]:
    """(clip_id, frame_index) -> (first row, number of rows) in a sorted region table."""
    codes, ids = clip_codes(regions)
    index = regions["frame_index"].to_numpy()
    if len(codes) == 0:
        return {}
    change = (codes[1:] != codes[:-1]) | (index[1:] != index[:-1])
    starts = np.concatenate([[0], np.nonzero(change)[0] + 1])
    counts = np.diff(np.append(starts, len(codes)))
    return {
        (ids[codes[a]], int(index[a])): (int(a), int(n))
        for a, n in zip(starts, counts, strict=True)
    }


def _phrase_runs(text: pa.Table) -> dict[str, tuple[int, int]]:
    """clip_id -> (first, end) rows of its phrases with phrase_id >= 0 in a sorted text table."""
    codes, ids = clip_codes(text)
    phrase_id = text["phrase_id"].to_numpy()
    runs: dict[str, tuple[int, int]] = {}
    rows = np.nonzero(phrase_id >= 0)[0]
    if len(rows) == 0:
        return runs
    change = np.nonzero(codes[rows][1:] != codes[rows][:-1])[0] + 1
    for part in np.split(rows, change):
        runs[ids[codes[part[0]]]] = (int(part[0]), int(part[-1]) + 1)
    return runs


def _frames_by_clip(
    frames_path: Path,
    roles: tuple[str, ...],
    clip_ids: set[str],
    runs: dict[tuple[str, int], tuple[int, int]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """clip_id -> (frame_index, time_sec) of its stored frames of ``roles``, ascending.

    Reads only the metadata columns of the frames table (never ``jpeg``). Raises ValueError when
    the region cache holds a frame the frames table does not have.
    """
    table = read_columns(frames_path, FRAME_COLUMNS, "frames")
    stored = set(zip(table["clip_id"].to_pylist(), table["frame_index"].to_pylist(), strict=True))
    unknown = [key for key in runs if key not in stored]
    if unknown:
        raise ValueError(
            f"{frames_path}: {len(unknown)} frames with region features are not stored frames, "
            f"e.g. clip {unknown[0][0]!r} frame {unknown[0][1]}"
        )
    mask = pc.is_in(table["role"], pa.array(roles)) if roles else None
    table = table.filter(mask).sort_by([("clip_id", "ascending"), ("frame_index", "ascending")])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ids = table["clip_id"].to_pylist()
    index = table["frame_index"].to_numpy()
    time_sec = table["time_sec"].to_numpy()
    bounds = [0] + [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]] + [len(ids)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a and ids[a] in clip_ids:
            out[ids[a]] = (index[a:b].astype(np.int64), time_sec[a:b].astype(np.float64))
    return out


def _clip_time(time_sec: np.ndarray, clip: dict[str, Any]) -> np.ndarray:
    """Clip-relative time in [0, 1]: (t - start) / (end - start); the window defaults to the
    stored frames' range when the clip has no start/end."""
    if len(time_sec) == 0:
        return np.zeros(0, np.float32)
    start = clip["start_sec"] if clip["start_sec"] is not None else float(time_sec.min())
    end = clip["end_sec"] if clip["end_sec"] is not None else float(time_sec.max())
    span = max(end - start, 1e-6)
    return np.clip((time_sec - start) / span, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Batches


class ClipLoader:
    """Batches of a :class:`FeatureDataset` as :class:`~nvos.rosa.batch.ClipBatch`.

    The order of an epoch depends only on ``seed`` and the epoch (:meth:`set_epoch`); rank ``r``
    of ``world_size`` gets positions ``r, r + world_size, ...`` of the epoch's permutation
    (:class:`torch.utils.data.DistributedSampler`, which pads with repeated clips unless
    ``drop_last``). Frame samples are seeded per clip, so workers change nothing.
    """

    def __init__(
        self,
        dataset: FeatureDataset,
        batch_size: int,
        shuffle: bool,
        seed: int,
        num_workers: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ) -> None:
        if len(dataset) == 0:
            raise ValueError(
                "ClipLoader: the dataset has no clip (see its summary of skipped clips)"
            )
        self.dataset = dataset
        self.sampler = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order and frame samples of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[ClipBatch]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[ClipBatch]:
        """The epoch's batches from batch ``start`` on, without reading the ones before (resume)."""
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        indices = list(self.sampler)[start * self.batch_size :]
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=indices,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            drop_last=self.drop_last,
            prefetch_factor=4 if self.num_workers else None,
            # Its own generator: a DataLoader draws its workers' base seed when an iterator is
            # made, which from the global RNG would make a resumed epoch's dropout differ.
            generator=torch.Generator().manual_seed(self.sampler.seed + self.epoch),
        )
        yield from loader


def make_loader(
    dataset: FeatureDataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> ClipLoader:
    """A :class:`ClipLoader` (call its ``set_epoch`` before each epoch)."""
    return ClipLoader(
        dataset, batch_size, shuffle, seed, num_workers, drop_last, rank, world_size, pin_memory
    )
