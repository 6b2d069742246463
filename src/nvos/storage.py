"""Parquet tables of the pipeline (DESIGN §4): declared schemas, atomic writes, provenance.

Every table is written through :func:`write_table`, which checks the columns against the declared
schema, stores a JSON provenance record in the schema metadata (key ``nvos``), and writes to a
temporary name in the same folder before an atomic rename, so a killed job never leaves a file that
looks finished.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import __version__
from nvos.errors import NvosError
from nvos.types import PathLike

PROVENANCE_KEY = b"nvos"


def embedding_type(dim: int) -> pa.DataType:
    """Arrow type of an embedding column: ``fixed_size_list<float16>[dim]``."""
    return pa.list_(pa.float16(), dim)


SCHEMAS: dict[str, pa.Schema] = {
    "clips": pa.schema(
        [
            ("clip_id", pa.string()),
            ("video", pa.string()),
            ("start_sec", pa.float64()),
            ("end_sec", pa.float64()),
            ("fps", pa.float64()),
            ("split", pa.string()),
            ("narration", pa.string()),
            ("shard", pa.string()),
        ]
    ),
    "annotations": pa.schema(
        [
            ("clip_id", pa.string()),
            ("frame_index", pa.int64()),
            ("object_id", pa.string()),
            ("instance", pa.int32()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("rle_counts", pa.binary()),
        ]
    ),
    "frames": pa.schema(
        [
            ("clip_id", pa.string()),
            ("frame_index", pa.int64()),
            ("time_sec", pa.float64()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("role", pa.string()),
            ("jpeg", pa.binary()),
        ]
    ),
    "proposals": pa.schema(
        [
            ("clip_id", pa.string()),
            ("frame_index", pa.int64()),
            ("proposal_id", pa.int32()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("rle_counts", pa.binary()),
            ("bbox", pa.list_(pa.float32(), 4)),
            ("area", pa.int64()),
            ("predicted_iou", pa.float32()),
            ("stability_score", pa.float32()),
        ]
    ),
    "phrases": pa.schema(
        [
            ("clip_id", pa.string()),
            ("phrase_id", pa.int32()),
            ("text", pa.string()),
            ("char_start", pa.int32()),
            ("char_end", pa.int32()),
            ("object_id", pa.string()),
            ("source", pa.string()),
        ]
    ),
    "predictions": pa.schema(
        [
            ("clip_id", pa.string()),
            ("phrase_id", pa.int32()),
            ("object_id", pa.string()),
            ("frame_index", pa.int64()),
            ("proposal_id", pa.int32()),
            ("score", pa.float32()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("rle_counts", pa.binary()),
        ]
    ),
    "dense_masks": pa.schema(
        [
            ("clip_id", pa.string()),
            ("phrase_id", pa.int32()),
            ("object_id", pa.string()),  # null for untagged phrases
            ("frame_index", pa.int64()),
            ("source", pa.string()),  # keyframe | propagated
            ("score", pa.float32()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("rle_counts", pa.binary()),
        ]
    ),
    "region_scores": pa.schema(
        [
            ("clip_id", pa.string()),
            ("phrase_id", pa.int32()),
            ("object_id", pa.string()),  # null for untagged phrases
            ("frame_index", pa.int64()),
            ("proposal_ids", pa.list_(pa.int32())),  # the frame's scored proposals
            ("scores", pa.list_(pa.float32())),  # the method's score of each, same order
        ]
    ),
    "links": pa.schema(
        [
            ("clip_id", pa.string()),
            ("frame_a", pa.int64()),  # a keyframe
            ("frame_b", pa.int64()),  # the next keyframe of the clip
            ("rows", pa.int32()),  # K_a: frame a's proposals (ids 0..K_a-1)
            ("cols", pa.int32()),  # K_b
            ("iou", pa.list_(pa.float32())),  # (K_a, K_b) row-major: the link term
        ]
    ),
}
_DENSE = SCHEMAS["dense_masks"]
SCHEMAS["segment_masks"] = pa.schema(  # the segment stage's output: dense_masks + the phrase
    [
        _DENSE.field("clip_id"),
        _DENSE.field("phrase_id"),
        pa.field("text", pa.string()),  # the phrase as written in the narration
        pa.field("char_start", pa.int32()),  # its span in the cleaned narration
        pa.field("char_end", pa.int32()),
        pa.field("phrase_source", pa.string()),  # tag | parser
        *(_DENSE.field(name) for name in _DENSE.names[2:]),
    ]
)


def regions_schema(dim: int) -> pa.Schema:
    """Schema of ``features/<shard>.regions.parquet`` for embeddings of size ``dim``."""
    return pa.schema(
        [
            ("clip_id", pa.string()),
            ("frame_index", pa.int64()),
            ("proposal_id", pa.int32()),
            ("embedding", embedding_type(dim)),
        ]
    )


def text_schema(dim: int) -> pa.Schema:
    """Schema of ``features/<shard>.text.parquet`` (phrase_id -1 is the whole narration)."""
    return pa.schema(
        [
            ("clip_id", pa.string()),
            ("phrase_id", pa.int32()),
            ("embedding_context", embedding_type(dim)),
            ("embedding_plain", embedding_type(dim)),
        ]
    )


class SchemaError(NvosError, ValueError):
    """A table whose columns do not match the declared schema."""


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary file starts with ``.`` and ends with ``.tmp`` so that nothing globbing for the
    final name picks it up; on any exception (or a kill) the final name is never created.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_sha256(path: PathLike, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file (manifests, checkpoints), read in chunks of ``chunk_bytes``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(path: PathLike, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write a CSV file atomically: a header of ``columns``, then one line per row (missing keys
    and None as empty fields; a key outside ``columns`` is an error)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def conform(table: pa.Table, schema: pa.Schema, name: str = "table") -> pa.Table:
    """Select and cast ``table``'s columns to ``schema``; raise :class:`SchemaError` if missing."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"{name}: missing columns {missing} (have {table.column_names})")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise SchemaError(f"{name}: columns do not cast to the declared schema: {error}") from error


def provenance(stage: str, config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance record stored with every table: stage, its config, package version, extras."""
    return {"stage": stage, "nvos_version": __version__, "config": dict(config or {}), **extra}


def write_table(
    table: pa.Table,
    path: PathLike,
    schema: pa.Schema | str,
    meta: Mapping[str, Any] | None = None,
    row_group_size: int | None = None,
) -> None:
    """Write ``table`` to Parquet atomically, conformed to ``schema`` (a SCHEMAS name or a schema).

    ``meta`` (JSON-serialisable) is stored under the ``nvos`` schema-metadata key.
    """
    name = schema if isinstance(schema, str) else Path(path).name
    declared = SCHEMAS[schema] if isinstance(schema, str) else schema
    table = conform(table, declared, name)
    metadata = {PROVENANCE_KEY: json.dumps(dict(meta or {}), sort_keys=True, default=str).encode()}
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")


def read_table(
    path: PathLike,
    schema: pa.Schema | str | None = None,
    columns: list[str] | None = None,
    memory_map: bool = True,
) -> pa.Table:
    """Read a Parquet table; with ``schema``, check that it carries the declared columns."""
    table = pq.read_table(path, columns=columns, memory_map=memory_map)
    if schema is not None:
        declared = SCHEMAS[schema] if isinstance(schema, str) else schema
        if columns is not None:
            declared = pa.schema([declared.field(c) for c in columns])
        table = conform(table, declared, str(path))
    return table


def read_provenance(path: PathLike) -> dict[str, Any]:
    """The provenance record written with a table (empty if none).

    Read from the file's key-value metadata, where :func:`write_table` (through the schema) and
    :func:`nvos.segment.writer.table_writer` (when it closes the file) both put it.
    """
    metadata = pq.read_metadata(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}


def empty_table(schema: pa.Schema | str) -> pa.Table:
    """A table with no rows and the declared columns."""
    declared = SCHEMAS[schema] if isinstance(schema, str) else schema
    return declared.empty_table()
