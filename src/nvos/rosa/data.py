"""ROSA's data: clips of cached CLIP region and phrase embeddings, read without per-step decoding.

Inputs per shard (DESIGN §3–§4): ``features/<shard>.regions.parquet`` (one embedding per proposal),
``features/<shard>.text.parquet`` (phrase embeddings with and without narration context),
``proposals/<shard>.parquet`` (boxes and scores; the RLE masks are not read here) and
``frames/<shard>.parquet`` (only ``clip_id, frame_index, time_sec, role``: never the JPEGs), plus
the run's ``clips.parquet`` (split, clip window) and ``phrases.parquet`` (object ids).

Each shard's regions, joined with their proposal's normalised box and score and sorted per frame
best first, are converted **once** into an Arrow IPC file in a cache folder (default
``features/cache/``), written atomically and reused while its sources are unchanged. Every process
memory-maps it: the embeddings are a zero-copy float16 numpy view of the page cache, shared by the
DataLoader workers and all ranks of a machine, and reading a clip is a few slices (no Parquet
decoding per step). The text embeddings get the same treatment.

Items (:class:`~nvos.rosa.batch.ClipItem`): training mode samples ``frames_per_clip`` frames of the
roles ``sampled`` and ``annotated`` per clip (seeded by ``seed``, the epoch and the clip: the same
seed gives the same items); evaluation mode takes every annotated frame. Up to ``max_regions``
proposals per frame, best ``predicted_iou * stability_score`` first, and the clip's object phrases
(``phrase_id >= 0``). Clips without phrase or without any proposal on their frames are skipped and
counted (:class:`FeatureSummary`, and the log); frames without proposal are counted too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from nvos import storage
from nvos.rosa.batch import ClipBatch, ClipItem, collate

__all__ = [
    "CACHE_VERSION",
    "ClipLoader",
    "FeatureDataset",
    "FeatureSummary",
    "ShardPaths",
    "ensure_cache",
    "make_loader",
    "region_table",
    "text_table",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Mode = Literal["train", "eval"]

CACHE_VERSION = 1
CACHE_KEY = b"nvos_cache"
FRAME_COLUMNS = ["clip_id", "frame_index", "time_sec", "role"]
PROPOSAL_COLUMNS = [
    "clip_id",
    "frame_index",
    "proposal_id",
    "height",
    "width",
    "bbox",
    "predicted_iou",
    "stability_score",
]
CLIP_COLUMNS = ["clip_id", "start_sec", "end_sec", "split", "shard"]
PHRASE_COLUMNS = ["clip_id", "phrase_id", "object_id"]
ROLES: dict[str, tuple[str, ...]] = {"train": ("sampled", "annotated"), "eval": ("annotated",)}


@dataclass(frozen=True)
class ShardPaths:
    """The per-shard files ROSA reads."""

    shard: str
    regions: Path
    text: Path
    proposals: Path
    frames: Path

    @classmethod
    def in_run(cls, run_dir: PathLike, shard: str) -> ShardPaths:
        """The files of ``shard`` in the standard layout of ``results/<run>/`` (``run_dir``)."""
        run = Path(run_dir)
        return cls(
            shard=shard,
            regions=run / "features" / f"{shard}.regions.parquet",
            text=run / "features" / f"{shard}.text.parquet",
            proposals=run / "proposals" / f"{shard}.parquet",
            frames=run / "frames" / f"{shard}.parquet",
        )


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
# Reading and caching the shards' tables


def _read(path: PathLike, columns: list[str], schema: str | None = None) -> pa.Table:
    """Read only ``columns`` of a Parquet file (the one place this module reads Parquet)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    return storage.read_table(path, schema, columns=columns)


def _embedding_dim(table: pa.Table, column: str, path: PathLike) -> int:
    kind = table.schema.field(column).type
    if not (pa.types.is_fixed_size_list(kind) and pa.types.is_float16(kind.value_type)):
        raise storage.SchemaError(f"{path}: column {column!r} is {kind}, not fixed_size_list<f16>")
    return int(kind.list_size)


def region_table(regions_path: PathLike, proposals_path: PathLike) -> pa.Table:
    """A shard's region embeddings joined with their proposals, sorted per frame best first.

    Columns: ``clip_id`` (dictionary), ``frame_index`` int64, ``proposal_id`` int32, ``score``
    float32 (predicted_iou * stability_score), ``box`` fixed_size_list<float32>[4] (x, y, w, h
    divided by the frame's width/height, clipped to [0, 1]), ``embedding`` fixed_size_list<f16>[D].
    Rows sorted by clip, frame, descending score, proposal_id; one chunk per column.

    Raises ValueError naming the files when a region has no proposal row or keys repeat.
    """
    keys = ["clip_id", "frame_index", "proposal_id"]
    regions = _read(regions_path, [*keys, "embedding"])
    _embedding_dim(regions, "embedding", regions_path)
    props = _read(proposals_path, PROPOSAL_COLUMNS, "proposals")
    n = regions.num_rows
    left = regions.select(keys).append_column("_r", pa.array(np.arange(n, dtype=np.int64)))
    left = left.cast(
        pa.schema(
            [
                ("clip_id", pa.string()),
                ("frame_index", pa.int64()),
                ("proposal_id", pa.int32()),
                ("_r", pa.int64()),
            ]
        )
    )
    right = props.select(keys).append_column(
        "_p", pa.array(np.arange(props.num_rows, dtype=np.int64))
    )
    joined = left.join(right, keys, join_type="left outer")
    if joined.num_rows != n:
        raise ValueError(f"{proposals_path}: repeated (clip_id, frame_index, proposal_id) rows")
    missing = joined.filter(pc.is_null(joined["_p"]))
    if missing.num_rows:
        row = missing.slice(0, 1).to_pylist()[0]
        raise ValueError(
            f"{regions_path}: {missing.num_rows} regions have no proposal in {proposals_path}, "
            f"e.g. clip {row['clip_id']!r} frame {row['frame_index']} proposal {row['proposal_id']}"
        )
    order = np.empty(n, dtype=np.int64)
    order[joined["_r"].to_numpy()] = joined["_p"].to_numpy()
    bbox = props["bbox"].combine_chunks().flatten().to_numpy().reshape(-1, 4)[order]
    height = props["height"].to_numpy()[order].astype(np.float32)
    width = props["width"].to_numpy()[order].astype(np.float32)
    box = np.clip(bbox / np.stack([width, height, width, height], axis=1), 0.0, 1.0)
    score = (props["predicted_iou"].to_numpy() * props["stability_score"].to_numpy())[order]
    table = pa.table(
        {
            "clip_id": regions["clip_id"],
            "frame_index": regions["frame_index"],
            "proposal_id": regions["proposal_id"],
            "score": pa.array(score.astype(np.float32)),
            "box": pa.FixedSizeListArray.from_arrays(pa.array(box.astype(np.float32).ravel()), 4),
            "embedding": regions["embedding"],
        }
    )
    table = table.sort_by(
        [
            ("clip_id", "ascending"),
            ("frame_index", "ascending"),
            ("score", "descending"),
            ("proposal_id", "ascending"),
        ]
    )
    return _dictionary_clip_ids(table.combine_chunks())


def text_table(text_path: PathLike) -> pa.Table:
    """A shard's phrase embeddings sorted by clip and ``phrase_id`` (-1, the narration, first).

    Columns: ``clip_id`` (dictionary), ``phrase_id`` int32, ``embedding_context``,
    ``embedding_plain`` (fixed_size_list<f16>[D]); one chunk per column.
    """
    columns = ["clip_id", "phrase_id", "embedding_context", "embedding_plain"]
    table = _read(text_path, columns)
    dims = {_embedding_dim(table, c, text_path) for c in columns[2:]}
    if len(dims) != 1:
        raise storage.SchemaError(f"{text_path}: context and plain embeddings differ in size")
    table = table.sort_by([("clip_id", "ascending"), ("phrase_id", "ascending")])
    return _dictionary_clip_ids(table.combine_chunks())


def _dictionary_clip_ids(table: pa.Table) -> pa.Table:
    ids = table["clip_id"].combine_chunks()
    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    return table.set_column(0, "clip_id", ids)


def _stamp(sources: Sequence[PathLike]) -> dict[str, Any]:
    """What a cache file was made from: version and each source's size and modification time."""
    files = {}
    for source in sources:
        stat = Path(source).stat()
        files[str(Path(source).resolve())] = [stat.st_size, stat.st_mtime_ns]
    return {"version": CACHE_VERSION, "sources": files}


def _fresh(cache: Path, stamp: dict[str, Any]) -> bool:
    if not cache.exists():
        return False
    try:
        with pa.memory_map(str(cache)) as source:
            metadata = ipc.open_file(source).schema.metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    newest = max(mtime for _, mtime in stamp["sources"].values())
    return (
        metadata.get(CACHE_KEY) == json.dumps(stamp, sort_keys=True).encode()
        and cache.stat().st_mtime_ns >= newest
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` so that concurrent ranks convert a shard only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_cache(kind: Literal["regions", "text"], paths: ShardPaths, cache_dir: PathLike) -> Path:
    """The Arrow IPC cache of a shard's regions (:func:`region_table`) or text
    (:func:`text_table`), converted now if missing or older than its Parquet sources."""
    cache = Path(cache_dir) / f"{paths.shard}.{kind}.arrow"
    sources = [paths.regions, paths.proposals] if kind == "regions" else [paths.text]
    stamp = _stamp(sources)
    if _fresh(cache, stamp):
        return cache
    with _locked(cache):
        if _fresh(cache, stamp):  # another process converted it while we waited
            return cache
        table = (
            region_table(paths.regions, paths.proposals)
            if kind == "regions"
            else (text_table(paths.text))
        )
        metadata = {CACHE_KEY: json.dumps(stamp, sort_keys=True).encode()}
        table = table.replace_schema_metadata(metadata)
        with storage.atomic_path(cache) as tmp:
            with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=max(table.num_rows, 1))
        logger.info(
            "cached %s of shard %s: %d rows -> %s", kind, paths.shard, table.num_rows, cache
        )
    return cache


def _open_cache(path: Path) -> pa.Table:
    """Memory-map an IPC cache file (no copy: column buffers point into the mapped file)."""
    return ipc.open_file(pa.memory_map(str(path))).read_all()


def _embeddings(table: pa.Table, column: str) -> np.ndarray:
    """(rows, D) float16 zero-copy view of an embedding column held in one chunk."""
    chunks = table[column].chunks
    if not chunks:
        dim = table.schema.field(column).type.list_size
        return np.zeros((0, dim), np.float16)
    if len(chunks) != 1:
        raise ValueError(f"embedding column {column!r} must be one chunk, got {len(chunks)}")
    array = chunks[0]
    dim = array.type.list_size
    values = array.values.slice(array.offset * dim, len(array) * dim)
    return values.to_numpy(zero_copy_only=True).reshape(-1, dim)


def _clip_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Per row, the index of its clip id in the returned list of clip ids."""
    chunks = table["clip_id"].chunks
    if not chunks:
        return np.zeros(0, np.int64), []
    ids = chunks[0]
    return ids.indices.to_numpy().astype(np.int64), ids.dictionary.to_pylist()


@dataclass
class _ShardArrays:
    """Zero-copy numpy views of one shard's caches (``tables`` keeps the mappings alive).

    regions (R, D) f16, boxes (R, 4) f32, proposal_id (R,) i32, context/plain (P, D) f16,
    phrase_id (P,) i32.
    """

    tables: tuple[pa.Table, pa.Table]
    regions: np.ndarray
    boxes: np.ndarray
    proposal_id: np.ndarray
    context: np.ndarray
    plain: np.ndarray
    phrase_id: np.ndarray

    @classmethod
    def of(cls, regions: pa.Table, text: pa.Table) -> _ShardArrays:
        return cls(
            tables=(regions, text),
            regions=_embeddings(regions, "embedding"),
            boxes=regions["box"].combine_chunks().flatten().to_numpy().reshape(-1, 4),
            proposal_id=regions["proposal_id"].to_numpy(),
            context=_embeddings(text, "embedding_context"),
            plain=_embeddings(text, "embedding_plain"),
            phrase_id=text["phrase_id"].to_numpy(),
        )


# --------------------------------------------------------------------------------------------
# The dataset


class FeatureDataset(Dataset[ClipItem]):
    """Clips of one or more shards' feature caches, as :class:`~nvos.rosa.batch.ClipItem`.

    Args:
        shards: the shards to read (:meth:`ShardPaths.in_run` for the standard layout).
        clips_path: the run's ``clips.parquet`` (split, window and shard of each clip).
        splits: keep clips of these splits (a name, a list, or None for all).
        mode: ``train`` (sample ``frames_per_clip`` frames of the roles sampled + annotated per
            clip and epoch) or ``eval`` (every annotated frame).
        frames_per_clip: frames per training item (clips with fewer keep all of theirs).
        max_regions: proposals per frame at most, best predicted_iou * stability first.
        seed: seed of the frame sampling (with :meth:`set_epoch` and the clip's position).
        cache_dir: folder of the Arrow IPC caches (default ``features/cache`` beside the first
            shard's regions file).
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
        cache_dir: PathLike | None = None,
        memory_map: bool = True,
        phrases_path: PathLike | None = None,
    ) -> None:
        if mode not in ROLES:
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
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
        self.cache_dir = Path(cache_dir) if cache_dir else self.shards[0].regions.parent / "cache"
        self.phrases_path = Path(phrases_path) if phrases_path else None
        self._object_ids: dict[tuple[str, int], str | None] | None = None
        self._shard_arrays: list[_ShardArrays] | None = None
        arrays = self._arrays()
        self._build_index(Path(clips_path), arrays)

    # -- loading ---------------------------------------------------------------------------

    def _arrays(self) -> list[_ShardArrays]:
        """The shards' arrays, opened on first use in each process."""
        if self._shard_arrays is None:
            opened = []
            for paths in self.shards:
                if self.memory_map:
                    regions = _open_cache(ensure_cache("regions", paths, self.cache_dir))
                    text = _open_cache(ensure_cache("text", paths, self.cache_dir))
                else:
                    regions = region_table(paths.regions, paths.proposals)
                    text = text_table(paths.text)
                opened.append(_ShardArrays.of(regions, text))
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

    def _build_index(self, clips_path: Path, arrays: list[_ShardArrays]) -> None:
        clips = _read(clips_path, CLIP_COLUMNS, "clips").to_pylist()
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
            rows = _read(self.phrases_path, PHRASE_COLUMNS, "phrases").to_pylist()
            self._object_ids = {(r["clip_id"], int(r["phrase_id"])): r["object_id"] for r in rows}
        key = (clip_id, int(phrase_id))
        if key not in self._object_ids:
            raise ValueError(f"{self.phrases_path}: clip {clip_id!r} has no phrase {phrase_id}")
        return self._object_ids[key]


def _frame_runs(regions: pa.Table, paths: ShardPaths) -> dict[tuple[str, int], tuple[int, int]]:
    """(clip_id, frame_index) -> (first row, number of rows) in a sorted region table."""
    codes, ids = _clip_codes(regions)
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
    codes, ids = _clip_codes(text)
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
    table = _read(frames_path, FRAME_COLUMNS, "frames")
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
