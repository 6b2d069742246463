"""The one writer of ``predictions/<method>/<shard>.parquet`` rows (schema ``predictions``).

Every method fills a :class:`PredictionRows` row by row and writes it with
:meth:`PredictionRows.write`, so the columns, their types and the provenance are spelled once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from nvos import storage
from nvos.types import PathLike

__all__ = ["PredictionRows"]


class PredictionRows:
    """The rows of one predictions file being built: per (clip, phrase, frame) the chosen mask.

    ``object_id`` is the phrase's tagged object (None when untagged); ``proposal_id`` the chosen
    proposal (-1 when the mask is not a stored proposal); ``rle_counts`` the mask as COCO RLE
    counts of a ``height`` x ``width`` frame; ``score`` the method's confidence.
    """

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {n: [] for n in storage.SCHEMAS["predictions"].names}

    def add(
        self,
        clip_id: str,
        phrase_id: int,
        object_id: str | None,
        frame_index: int,
        proposal_id: int,
        score: float,
        height: int,
        width: int,
        rle_counts: bytes,
    ) -> None:
        """Append one row."""
        row = (clip_id, phrase_id, object_id, frame_index, proposal_id, score, height, width,
               rle_counts)  # fmt: skip
        for values, value in zip(self.columns.values(), row, strict=True):
            values.append(value)

    @classmethod
    def from_table(cls, table: pa.Table) -> PredictionRows:
        """The rows of a ``predictions`` table (e.g. another method's, copied)."""
        rows = cls()
        rows.columns = {n: table[n].to_pylist() for n in rows.columns}
        return rows

    def __len__(self) -> int:
        return len(self.columns["clip_id"])

    @property
    def clip_ids(self) -> list[str]:
        """The clip of each row, in row order."""
        return self.columns["clip_id"]

    def table(self) -> pa.Table:
        """The rows as a table of the declared ``predictions`` schema."""
        schema = storage.SCHEMAS["predictions"]
        arrays = {n: pa.array(values, schema.field(n).type) for n, values in self.columns.items()}
        return pa.table(arrays, schema=schema)

    def write(self, out: PathLike, meta: Mapping[str, Any] | None) -> pa.Table:
        """Write the rows to ``out`` atomically with ``meta`` as provenance; the table written."""
        table = self.table()
        storage.write_table(table, out, "predictions", meta)
        return table
