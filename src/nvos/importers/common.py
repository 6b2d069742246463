"""What every importer shares: a streaming manifest writer that counts what it imports and skips.

An importer never drops an item silently: each clip it writes is counted per split, each item it
cannot import is counted under a reason (``writer.skip(item, reason)``), logged, and listed in
``<MANIFEST>.skipped.csv``; the totals go to ``<MANIFEST>.summary.json`` and to the log. The
manifest is written line by line to a temporary file and renamed when the import finishes, so a
killed import leaves no file that looks finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from nvos import rle
from nvos.errors import NvosError
from nvos.storage import atomic_path
from nvos.tags import parse_tags
from nvos.types import PathLike

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 100_000
"""Log a progress line every this many imported clips."""


class ImportFormatError(NvosError, ValueError):
    """An input file that is not in the format it claims (names the file, line or item, and why).

    Raised for problems that make the whole input unusable (wrong top-level structure, missing
    columns); problems of single items are skips, counted by :meth:`ManifestWriter.skip`.
    """


@dataclass
class ImportSummary:
    """Counts of one import: clips per split, skipped items per reason, annotated masks."""

    source: str
    clips: int = 0
    per_split: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    masks: int = 0
    notes: list[str] = field(default_factory=list)
    """Facts of the import worth keeping beside the counts (e.g. where frame rates came from)."""

    def note(self, text: str) -> None:
        """Record ``text`` in the summary and the log."""
        self.notes.append(text)
        logger.info("%s: %s", self.source, text)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what ``<MANIFEST>.summary.json`` holds)."""
        return {
            "source": self.source,
            "clips": self.clips,
            "per_split": dict(sorted(self.per_split.items())),
            "masks": self.masks,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped.most_common()),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        """A human-readable summary, one line per split and per skip reason."""
        lines = [f"{self.source}: imported {self.clips} clips ({self.masks} masks)"]
        lines += [f"  split {split}: {n} clips" for split, n in sorted(self.per_split.items())]
        total = sum(self.skipped.values())
        lines.append(f"  skipped {total} items" + (":" if total else ""))
        lines += [f"    {n} × {reason}" for reason, n in self.skipped.most_common()]
        lines += [f"  note: {text}" for text in self.notes]
        return "\n".join(lines)


def _number_in(text: str, low: float, high: float, low_open: bool, what: str) -> float:
    """``text`` as a finite float in [low, high] ((low, high] with ``low_open``) or an error."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    above = value > low if low_open else value >= low
    if not (math.isfinite(value) and above and value <= high):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (frame rates)."""
    return _number_in(text, 0.0, math.inf, True, "a positive number")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0 (seconds before/after a timestamp)."""
    return _number_in(text, 0.0, math.inf, False, "a number >= 0")


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    return _number_in(text, 0.0, 1.0, False, "a number in [0, 1]")


class ClipSkip(Exception):
    """A clip that cannot be imported: ``item`` names it (with details), ``reason`` is the
    counted category."""

    def __init__(self, item: str, reason: str) -> None:
        super().__init__(f"{item}: {reason}")
        self.item = item
        self.reason = reason


def read_rows(
    path: PathLike, required: Sequence[str], what: str, hint: str = ""
) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream a CSV table's rows as (line number, {column: stripped text}).

    Raises :class:`ImportFormatError` naming the file when it is missing, empty, or lacks one of
    the ``required`` columns (``what`` names the table in the message, ``hint`` may add what the
    table should look like). A UTF-8 byte-order mark is ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: {what} not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise ImportFormatError(f"{path}: {what} is empty (no header line)")
        missing = [c for c in required if c not in header]
        if missing:
            raise ImportFormatError(
                f"{path}:1: {what} lacks column(s) {', '.join(missing)} "
                f"(has: {', '.join(h for h in header if h)}; needs: {', '.join(required)})"
                + (f"; {hint}" if hint else "")
            )
        for row in reader:
            values = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            yield reader.line_num, values


def mask_json(mask: np.ndarray) -> dict[str, Any]:
    """A boolean mask (H, W) as the manifest's COCO compressed RLE ``{"size", "counts"}``."""
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle.encode(mask).decode()}


def tag_ids(narration: str) -> list[str]:
    """The distinct object ids tagged in ``narration``, in reading order (raises TagError)."""
    return list(dict.fromkeys(p.object_id for p in parse_tags(narration).phrases))


def relative_path(path: PathLike, manifest: PathLike) -> str:
    """``path`` relative to the manifest's folder (manifest paths are relative to the file)."""
    return os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(manifest)))


class ManifestWriter:
    """Writes manifest lines (DESIGN §4) and the skip list of one import.

    Use through :func:`open_manifest`. ``write(line)`` checks that ``clip_id`` is new (a repeat
    is skipped with the reason "duplicate clip_id") and counts the clip and its masks.
    """

    def __init__(self, out: Path, handle: TextIO, skipped: csv.writer, source: str) -> None:
        self.out = out
        self._handle = handle
        self._skipped = skipped
        self._seen: set[str] = set()
        self.summary = ImportSummary(source)

    def video_path(self, path: PathLike) -> str:
        """A video or frame-folder path as the manifest stores it (relative to the manifest)."""
        return relative_path(path, self.out)

    def write(self, line: dict[str, Any]) -> bool:
        """Append one clip; return False (counting a skip) if its ``clip_id`` was written before."""
        clip_id = str(line["clip_id"])
        if clip_id in self._seen:
            self.skip(clip_id, "duplicate clip_id")
            return False
        self._seen.add(clip_id)
        self._handle.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.summary.clips += 1
        self.summary.per_split[str(line["split"])] += 1
        for annotation in line.get("annotations") or ():
            for masks in annotation["objects"].values():
                self.summary.masks += len(masks) if isinstance(masks, list) else 1
        if self.summary.clips % PROGRESS_EVERY == 0:
            logger.info("%s: %d clips written", self.out, self.summary.clips)
        return True

    def skip(self, item: str, reason: str) -> None:
        """Count an item that is not imported, with the reason; it is logged and listed."""
        self.summary.skipped[reason] += 1
        self._skipped.writerow([item, reason])
        if self.summary.skipped[reason] <= 5:
            logger.warning("skipped %s: %s", item, reason)
        elif self.summary.skipped[reason] == 6:
            logger.warning("more items skipped for: %s (all in %s)", reason, skipped_path(self.out))


def skipped_path(out: Path) -> Path:
    """Where the skip list of the manifest ``out`` goes: ``<out>.skipped.csv``."""
    return out.with_name(out.name + ".skipped.csv")


def summary_path(out: Path) -> Path:
    """Where the summary of the manifest ``out`` goes: ``<out>.summary.json``."""
    return out.with_name(out.name + ".summary.json")


@contextmanager
def open_manifest(out: PathLike, source: str) -> Iterator[ManifestWriter]:
    """Open ``out`` for an import; on success write it, its skip list and summary atomically.

    If the block raises (or the process is killed), none of the three files is created.
    """
    out = Path(out)
    with ExitStack() as stack:
        tmp_manifest = stack.enter_context(atomic_path(out))
        tmp_skipped = stack.enter_context(atomic_path(skipped_path(out)))
        tmp_summary = stack.enter_context(atomic_path(summary_path(out)))
        with open(tmp_manifest, "w") as handle, open(tmp_skipped, "w", newline="") as skipped:
            table = csv.writer(skipped)
            table.writerow(["item", "reason"])
            writer = ManifestWriter(out, handle, table, source)
            yield writer
        tmp_summary.write_text(json.dumps(writer.summary.to_dict(), indent=2) + "\n")
        if writer.summary.clips == 0:
            raise ImportFormatError(f"{source}: no clip could be imported\n{writer.summary.text()}")
    logger.info("%s", writer.summary.text())
