"""The writers of the methods' tables: ``predictions/<method>/<shard>.parquet`` (schema
``predictions``) and, for methods that score regions, ``scores/<method>/<shard>.parquet`` (schema
``region_scores``).

Every method fills a :class:`PredictionRows` (and a :class:`ScoreRows`) row by row and writes it
with ``write``, so the columns, their types and the provenance are spelled once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import pyarrow as pa

from nvos import storage
from nvos.types import PathLike

__all__ = ["PredictionRows", "ScoreRows"]


class _Rows:
    """Rows of one table of the declared schema ``SCHEMA`` being built, column by column."""

    SCHEMA = ""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {n: [] for n in storage.SCHEMAS[self.SCHEMA].names}

    def _append(self, row: Sequence[Any]) -> None:
        for values, value in zip(self.columns.values(), row, strict=True):
            values.append(value)

    def __len__(self) -> int:
        return len(self.columns["clip_id"])

    @classmethod
    def from_table(cls, table: pa.Table) -> Self:
        """The rows of a table of the same schema (e.g. another method's, copied)."""
        rows = cls()
        rows.columns = {n: table[n].to_pylist() for n in rows.columns}
        return rows

    @property
    def clip_ids(self) -> list[str]:
        """The clip of each row, in row order."""
        return self.columns["clip_id"]

    def table(self) -> pa.Table:
        """The rows as a table of the declared schema."""
        schema = storage.SCHEMAS[self.SCHEMA]
        arrays = {n: pa.array(values, schema.field(n).type) for n, values in self.columns.items()}
        return pa.table(arrays, schema=schema)

    def write(self, out: PathLike, meta: Mapping[str, Any] | None) -> pa.Table:
        """Write the rows to ``out`` atomically with ``meta`` as provenance; the table written."""
        table = self.table()
        storage.write_table(table, out, self.SCHEMA, meta)
        return table


class PredictionRows(_Rows):
    """The rows of one predictions file being built: per (clip, phrase, frame) the chosen mask.

    ``object_id`` is the phrase's tagged object (None when untagged); ``proposal_id`` the chosen
    proposal (-1 when the mask is not a stored proposal, e.g. an empty mask: absent there);
    ``rle_counts`` the mask as COCO RLE counts of a ``height`` x ``width`` frame; ``score`` the
    method's confidence.
    """

    SCHEMA = "predictions"

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
        self._append((clip_id, phrase_id, object_id, frame_index, proposal_id, score, height,
                      width, rle_counts))  # fmt: skip


class ScoreRows(_Rows):
    """The rows of one ``region_scores`` file: per (clip, phrase, keyframe) the method's score of
    every proposal it scored there (``proposal_ids`` (K,) and ``scores`` (K,), same order)."""

    SCHEMA = "region_scores"

    def add(
        self,
        clip_id: str,
        phrase_id: int,
        object_id: str | None,
        frame_index: int,
        proposal_ids: Sequence[int],
        scores: Sequence[float],
    ) -> None:
        """Append one row; ``proposal_ids`` and ``scores`` must have the same length."""
        if len(proposal_ids) != len(scores):
            raise ValueError(f"{len(proposal_ids)} proposal ids but {len(scores)} scores")
        self._append((clip_id, phrase_id, object_id, frame_index,
                      [int(p) for p in proposal_ids], [float(s) for s in scores]))  # fmt: skip
