"""ROSA's feature cache: each shard's cached CLIP embeddings as memory-mapped Arrow IPC files.

Each shard's regions (``features/<shard>.regions.parquet``), joined with their proposal's normalised
box and score (``proposals/<shard>.parquet``; the RLE masks are not read) and sorted per frame best
first, are converted **once** into an Arrow IPC file (``features/cache/<shard>.regions.arrow``,
see :class:`nvos.layout.RunLayout`; made by the ``features_shard`` rule, remade here if stale),
written atomically and reused while its sources are unchanged; the text embeddings
(``features/<shard>.text.parquet``) get the same treatment. Every process memory-maps the files:
the embeddings are a zero-copy float16 numpy view of the page cache (:class:`ShardArrays`),
shared by the DataLoader workers and all ranks of a machine, so reading a clip is a few slices,
never Parquet decoding per step.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from nvos import storage
from nvos.layout import ShardPaths
from nvos.types import PathLike

__all__ = [
    "CACHE_VERSION",
    "ShardArrays",
    "ShardPaths",
    "clip_codes",
    "ensure_cache",
    "open_cache",
    "read_columns",
    "region_table",
    "text_table",
]

logger = logging.getLogger(__name__)


CACHE_VERSION = 1
CACHE_KEY = b"nvos_cache"
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


def read_columns(path: PathLike, columns: list[str], schema: str | None = None) -> pa.Table:
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
    regions = read_columns(regions_path, [*keys, "embedding"])
    _embedding_dim(regions, "embedding", regions_path)
    props = read_columns(proposals_path, PROPOSAL_COLUMNS, "proposals")
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
    table = read_columns(text_path, columns)
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


def ensure_cache(kind: Literal["regions", "text"], paths: ShardPaths) -> Path:
    """The Arrow IPC cache of a shard's regions (:func:`region_table`) or text
    (:func:`text_table`), ``paths.cache(kind)``, converted now if missing or older than its
    Parquet sources."""
    cache = paths.cache(kind)
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


def open_cache(path: Path) -> pa.Table:
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


def clip_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Per row, the index of its clip id in the returned list of clip ids."""
    chunks = table["clip_id"].chunks
    if not chunks:
        return np.zeros(0, np.int64), []
    ids = chunks[0]
    return ids.indices.to_numpy().astype(np.int64), ids.dictionary.to_pylist()


@dataclass
class ShardArrays:
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
    def of(cls, regions: pa.Table, text: pa.Table) -> ShardArrays:
        return cls(
            tables=(regions, text),
            regions=_embeddings(regions, "embedding"),
            boxes=regions["box"].combine_chunks().flatten().to_numpy().reshape(-1, 4),
            proposal_id=regions["proposal_id"].to_numpy(),
            context=_embeddings(text, "embedding_context"),
            plain=_embeddings(text, "embedding_plain"),
            phrase_id=text["phrase_id"].to_numpy(),
        )
