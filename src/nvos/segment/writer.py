"""A Parquet table written incrementally (one row group per call) and atomically.

:func:`nvos.storage.write_table` needs the whole table in memory; a long video's dense masks are
made window by window and must leave memory as they are made. :func:`table_writer` writes each
batch as row groups of a file under a hidden temporary name (:func:`nvos.storage.atomic_path`),
conformed to the declared schema, and renames it into place only when the block ends without an
error, with the provenance record (known only at the end: counts, timings) in the file's
key-value metadata under the same key as :func:`~nvos.storage.write_table` uses, so
:func:`nvos.storage.read_provenance` reads it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage
from nvos.types import PathLike

__all__ = ["TableWriter", "table_writer"]


@dataclass
class TableWriter:
    """Appends tables of one declared schema; ``meta`` (a dict) is stored when the file closes."""

    writer: pq.ParquetWriter
    schema: pa.Schema
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    row_groups: int = 0

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (its columns conformed to the schema) as one or more row groups."""
        if table.num_rows == 0:
            return
        self.writer.write_table(storage.conform(table, self.schema, self.name))
        self.rows += table.num_rows
        self.row_groups += 1


@contextlib.contextmanager
def table_writer(
    path: PathLike, schema: pa.Schema | str, meta: dict[str, Any] | None = None
) -> Iterator[TableWriter]:
    """A :class:`TableWriter` on ``path`` (a SCHEMAS name or a schema); the file appears at
    ``path`` only when the block succeeds, with ``writer.meta`` as its provenance record."""
    declared = storage.SCHEMAS[schema] if isinstance(schema, str) else schema
    name = schema if isinstance(schema, str) else str(path)
    with storage.atomic_path(path) as tmp:
        writer = pq.ParquetWriter(tmp, declared, compression="zstd")
        handle = TableWriter(writer, declared, name, dict(meta or {}))
        try:
            yield handle
        finally:
            record = json.dumps(handle.meta, sort_keys=True, default=str)
            writer.add_key_value_metadata({storage.PROVENANCE_KEY.decode(): record})
            writer.close()
