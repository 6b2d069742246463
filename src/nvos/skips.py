"""Clip accounting of every stage: clips in = clips out + clips skipped, each skip with its reason.

Each stage job builds a :class:`Ledger`: the clips it read (``clips_in``), the clips present in
what it wrote (``clips_out``) and a :class:`Skip` (clip, reason, detail) for every clip it left
out. A ledger checks itself when it is made: a clip that is neither written nor skipped, written
and skipped, skipped twice, or written or skipped without being read is a
:class:`ReconciliationError` naming the clips, so the stage fails instead of losing them.

A skip may also name one frame (``frame_index``) of a clip that is otherwise written (e.g. a frame
without any proposal): frame skips are listed but do not enter the clip equation.

:func:`write_ledger` logs every skip and writes ``skipped/<stage>/<shard>.parquet``: one row per
skip (:data:`SCHEMA`; no rows when nothing was skipped) with the stage (``for_stage``), shard and
counts in the provenance.
:func:`gather` (the ``skips`` rule) re-checks every file's counts and writes the run's
``skipped.csv`` (every skip) and ``reconciliation.csv`` (per stage: jobs, clips in, out, skipped,
frames skipped, skips per reason).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nvos import storage
from nvos.types import PathLike

__all__ = [
    "RECONCILIATION_COLUMNS",
    "SCHEMA",
    "Ledger",
    "ReconciliationError",
    "Skip",
    "gather",
    "read_reconciliation",
    "write_ledger",
]

logger = logging.getLogger(__name__)


SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("shard", pa.string()),
        ("clip_id", pa.string()),
        ("frame_index", pa.int64()),  # null: the whole clip
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
RECONCILIATION_COLUMNS = [
    "stage",
    "jobs",
    "clips_in",
    "clips_out",
    "clips_skipped",
    "frames_skipped",
    "reasons",
]
EXAMPLES = 10  # clip ids named in an error message


class ReconciliationError(ValueError):
    """A stage's clips in != clips out + clips skipped; the message names the clips."""


@dataclass(frozen=True)
class Skip:
    """One clip (``frame_index`` None) or one frame of a written clip that a stage left out."""

    clip_id: str
    reason: str
    frame_index: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Ledger:
    """The clip accounting of one stage job (checked when made, see the module docstring).

    ``stage``: e.g. ``frames`` or ``predictions/rosa``; ``shard``: the shard id (``all`` for
    whole-run jobs); ``clips_in``: the clip ids read, in order; ``clips_out``: the clip ids present
    in the written output; ``skips``: what was left out.
    """

    stage: str
    shard: str
    clips_in: tuple[str, ...]
    clips_out: frozenset[str]
    skips: tuple[Skip, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ReconciliationError(
                f"{self.stage} {self.shard}: clips in ({len(set(self.clips_in))}) != clips out "
                f"({len(self.clips_out)}) + clips skipped ({self.clips_skipped}): "
                + "; ".join(problems)
            )

    @classmethod
    def of(
        cls, stage: str, shard: str, clips_in: Iterable[str], clips_out: Iterable[str],
        skips: Iterable[Skip] = (),
    ) -> Ledger:  # fmt: skip
        """A checked ledger from any iterables (duplicates in ``clips_in`` collapse)."""
        return cls(stage, shard, tuple(dict.fromkeys(clips_in)), frozenset(clips_out), tuple(skips))

    @property
    def clips_skipped(self) -> int:
        """Number of clips skipped as a whole."""
        return sum(s.frame_index is None for s in self.skips)

    @property
    def frames_skipped(self) -> int:
        """Number of single frames skipped (of clips that were written)."""
        return sum(s.frame_index is not None for s in self.skips)

    def counts(self) -> dict[str, int]:
        """clips_in, clips_out, clips_skipped, frames_skipped."""
        return {
            "clips_in": len(self.clips_in),
            "clips_out": len(self.clips_out),
            "clips_skipped": self.clips_skipped,
            "frames_skipped": self.frames_skipped,
        }

    def table(self) -> pa.Table:
        """The skips as rows of :data:`SCHEMA`, in the order they were recorded."""
        columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
        for skip in self.skips:
            columns["stage"].append(self.stage)
            columns["shard"].append(self.shard)
            columns["clip_id"].append(skip.clip_id)
            columns["frame_index"].append(skip.frame_index)
            columns["reason"].append(skip.reason)
            columns["detail"].append(skip.detail)
        return pa.table(columns, schema=SCHEMA)


def _examples(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - EXAMPLES} more" if len(ids) > EXAMPLES else ""
    return f"{ids[:EXAMPLES]}{more}"


def _problems(ledger: Ledger) -> list[str]:
    read = set(ledger.clips_in)
    clip_skips = [s.clip_id for s in ledger.skips if s.frame_index is None]
    skipped = set(clip_skips)
    problems = []
    lost = read - ledger.clips_out - skipped
    if lost:
        problems.append(f"{len(lost)} clips neither written nor skipped: {_examples(lost)}")
    both = ledger.clips_out & skipped
    if both:
        problems.append(f"{len(both)} clips both written and skipped: {_examples(both)}")
    twice = [c for c, n in Counter(clip_skips).items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} clips skipped twice: {_examples(twice)}")
    unread = (ledger.clips_out | skipped) - read
    if unread:
        problems.append(f"{len(unread)} clips written or skipped but not read: {_examples(unread)}")
    frames = {s.clip_id for s in ledger.skips if s.frame_index is not None} - ledger.clips_out
    if frames:
        problems.append(f"frame skips of clips that were not written: {_examples(frames)}")
    return problems


def write_ledger(ledger: Ledger, path: PathLike) -> None:
    """Log every skip and the equation; write ``path`` (atomically, :data:`SCHEMA`)."""
    for skip in ledger.skips:
        where = "" if skip.frame_index is None else f" frame {skip.frame_index}"
        detail = f" ({skip.detail})" if skip.detail else ""
        logger.info(
            "%s %s: skipped clip %s%s: %s%s",
            ledger.stage, ledger.shard, skip.clip_id, where, skip.reason, detail,
        )  # fmt: skip
    counts = ledger.counts()
    reasons = Counter(s.reason for s in ledger.skips)
    logger.info(
        "%s %s: clips in %d = out %d + skipped %d (and %d single frames skipped) %s",
        ledger.stage, ledger.shard, counts["clips_in"], counts["clips_out"],
        counts["clips_skipped"], counts["frames_skipped"], dict(sorted(reasons.items())),
    )  # fmt: skip
    record = storage.provenance("skips", None, for_stage=ledger.stage, shard=ledger.shard, **counts)
    storage.write_table(ledger.table(), path, SCHEMA, meta=record)


def _check_file(path: PathLike, table: pa.Table, record: dict[str, Any]) -> None:
    """Re-check one ledger file: its rows match its counts and in = out + skipped."""
    keys = ("for_stage", "clips_in", "clips_out", "clips_skipped")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ReconciliationError(f"{path}: not a skips file (provenance lacks {missing})")
    whole = table.filter(pc.is_null(table["frame_index"])).num_rows
    if whole != record["clips_skipped"]:
        raise ReconciliationError(
            f"{path}: {whole} clip rows but clips_skipped = {record['clips_skipped']}"
        )
    if record["clips_in"] != record["clips_out"] + record["clips_skipped"]:
        raise ReconciliationError(
            f"{path}: clips in {record['clips_in']} != out {record['clips_out']} + skipped "
            f"{record['clips_skipped']}"
        )


def gather(
    paths: Sequence[PathLike], skipped_csv: PathLike, reconciliation_csv: PathLike
) -> list[dict[str, Any]]:
    """Write the run's ``skipped.csv`` and ``reconciliation.csv`` from the jobs' skips files.

    Stages appear in the order of ``paths``. Returns the reconciliation rows (dicts with
    :data:`RECONCILIATION_COLUMNS`). Raises :class:`ReconciliationError` naming the file when a
    file's counts do not add up.
    """
    totals: dict[str, dict[str, Any]] = {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCHEMA.names)
    for path in paths:
        table = pq.read_table(path)
        table = storage.conform(table, SCHEMA, str(path))
        record = storage.read_provenance(path)
        _check_file(path, table, record)
        row = totals.setdefault(
            record["for_stage"],
            {"stage": record["for_stage"], "jobs": 0, "reasons": Counter()}
            | {k: 0 for k in ("clips_in", "clips_out", "clips_skipped", "frames_skipped")},
        )
        row["jobs"] += 1
        for key in ("clips_in", "clips_out", "clips_skipped", "frames_skipped"):
            row[key] += int(record.get(key, 0))
        row["reasons"].update(table["reason"].to_pylist())
        for values in zip(*(table[name].to_pylist() for name in SCHEMA.names), strict=True):
            writer.writerow(["" if v is None else v for v in values])
    storage.write_text(skipped_csv, out.getvalue())
    rows = []
    for row in totals.values():
        reasons = ";".join(f"{k}={n}" for k, n in sorted(row["reasons"].items()))
        rows.append({**row, "reasons": reasons})
    storage.write_csv(reconciliation_csv, RECONCILIATION_COLUMNS, rows)
    for row in rows:
        logger.info(
            "%s (%d jobs): clips in %d = out %d + skipped %d; %d frames skipped; %s",
            row["stage"], row["jobs"], row["clips_in"], row["clips_out"], row["clips_skipped"],
            row["frames_skipped"], row["reasons"] or "nothing skipped",
        )  # fmt: skip
    return rows


def read_reconciliation(path: PathLike) -> list[dict[str, Any]]:
    """The rows of a ``reconciliation.csv`` (counts as int)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in RECONCILIATION_COLUMNS[1:-1]:
            row[key] = int(row[key])
    return rows
