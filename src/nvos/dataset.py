"""The ``dataset`` stage: a validated manifest -> ``clips.parquet`` + ``annotations.parquet``.

``clips.parquet`` holds one row per manifest clip in manifest order, with its resolved window and
its shard (``nvos.shards.shard_of`` of its position among non-empty lines); it has one row group
per shard, so :func:`read_shard_clips` reads one shard without scanning the others.
``annotations.parquet`` holds one row per (clip, frame, object, instance) mask, sorted by clip
order, frame_index, object_id and instance. Nothing is written when validation fails.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage
from nvos.manifest import ClipRecord, summary, validate_manifest
from nvos.shards import shard_ids, shard_of
from nvos.types import PathLike
from nvos.video import DEFAULT_FOLDER_FPS

logger = logging.getLogger(__name__)


EXHAUSTIVE = pa.field("exhaustive", pa.bool_())
"""Optional ``annotations`` column: the row's object flag from the manifest (null: not given)."""


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`build_dataset` wrote: counts (see ``nvos.manifest.summary``) and the shards."""

    clips_path: str
    annotations_path: str
    shards: list[str]
    counts: dict[str, Any]


def clips_table(records: Sequence[ClipRecord], clips_per_shard: int) -> pa.Table:
    """The ``clips`` table of validated records, in manifest order, with their shard.

    Also carries ``fps`` (the frame rate the window was resolved with) for readers whose schema
    declares it; :func:`nvos.storage.write_table` keeps only the declared columns.
    """
    return pa.table(
        {
            "clip_id": [r.clip_id for r in records],
            "video": [r.video for r in records],
            "start_sec": pa.array([r.start_sec for r in records], pa.float64()),
            "end_sec": pa.array([r.end_sec for r in records], pa.float64()),
            "split": [r.split for r in records],
            "narration": [r.narration for r in records],
            "shard": [shard_of(r.index, clips_per_shard) for r in records],
            "fps": pa.array([r.fps for r in records], pa.float64()),
        }
    )


def annotations_table(records: Sequence[ClipRecord]) -> pa.Table:
    """The ``annotations`` table: one row per mask instance, in clip order then
    (frame_index, object_id, instance) order (the order of ``ClipRecord.annotations``).

    When some clip has ``exhaustive`` flags, an extra nullable bool column ``exhaustive`` holds
    each row's object flag (null: not given), which the evaluation's breakdown reads."""
    columns: dict[str, list[Any]] = {
        "clip_id": [],
        "frame_index": [],
        "object_id": [],
        "instance": [],
        "height": [],
        "width": [],
        "rle_counts": [],
    }
    flags: list[bool | None] = []
    for record in records:
        exhaustive = dict(record.exhaustive)
        for a in record.annotations:
            flags.append(exhaustive.get(a.object_id))
            columns["clip_id"].append(record.clip_id)
            columns["frame_index"].append(a.frame_index)
            columns["object_id"].append(a.object_id)
            columns["instance"].append(a.instance)
            columns["height"].append(a.height)
            columns["width"].append(a.width)
            columns["rle_counts"].append(a.counts)
    schema = storage.SCHEMAS["annotations"]
    table = pa.table(
        {name: pa.array(values, schema.field(name).type) for name, values in columns.items()}
    )
    if any(r.exhaustive for r in records):
        table = table.append_column(EXHAUSTIVE, pa.array(flags, EXHAUSTIVE.type))
    return table


def build_dataset(
    manifest: PathLike,
    clips_out: PathLike,
    annotations_out: PathLike,
    splits: Sequence[str],
    clips_per_shard: int,
    folder_fps: float = DEFAULT_FOLDER_FPS,
) -> DatasetSummary:
    """Validate ``manifest`` and write ``clips.parquet`` and ``annotations.parquet``.

    Raises :class:`nvos.manifest.ManifestError` (listing every bad line) before writing anything
    when the manifest does not validate. Both files are written atomically with a provenance
    record (stage ``dataset``, the manifest's path and SHA-256, the stage's config).
    """
    if clips_per_shard < 1:
        raise ValueError(f"clips_per_shard must be >= 1, got {clips_per_shard}")
    records = validate_manifest(manifest, splits, folder_fps)
    config = {
        "splits": list(splits),
        "clips_per_shard": int(clips_per_shard),
        "folder_fps": float(folder_fps),
    }
    meta = storage.provenance(
        "dataset",
        config,
        manifest=os.path.abspath(manifest),
        manifest_sha256=storage.file_sha256(manifest),
    )
    clips = clips_table(records, clips_per_shard)
    storage.write_table(clips, clips_out, "clips", meta, row_group_size=clips_per_shard)
    annotations = annotations_table(records)
    schema = storage.SCHEMAS["annotations"]
    if EXHAUSTIVE.name in annotations.column_names:
        schema = schema.append(EXHAUSTIVE)
    storage.write_table(annotations, annotations_out, schema, meta)
    counts = summary(records)
    shards = shard_ids(len(records), clips_per_shard)
    logger.info(
        "dataset: %d clips in %d shards, %d masks -> %s, %s",
        len(records),
        len(shards),
        annotations.num_rows,
        clips_out,
        annotations_out,
    )
    return DatasetSummary(str(clips_out), str(annotations_out), shards, counts)


def read_shard_clips(clips_path: PathLike, shard: str) -> pa.Table:
    """The rows of ``clips.parquet`` that belong to ``shard``, in manifest order.

    Row groups of other shards are skipped by their statistics (one row group per shard).
    Raises ``ValueError`` when the shard has no clips (a shard id that does not exist).
    """
    table = pq.read_table(clips_path, filters=[("shard", "==", shard)])
    if table.num_rows == 0:
        raise ValueError(f"{clips_path}: shard {shard!r} has no clips")
    return storage.conform(table, storage.SCHEMAS["clips"], str(clips_path))
