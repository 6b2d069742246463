"""Readers of the formats ``nvos import-predictions`` takes; each yields
:class:`~nvos.imports.targets.ImportedMask` items named by file and line or entry.

- ``davis``: a folder of sequence folders ``<PATH>/<clip_id>/<frame>.png``, indexed PNGs (palette
  or greyscale) whose value is an object's label (0 = background), as ``nvos export-davis`` writes
  and the official DAVIS / VOST code reads. Labels and frame names map to object ids and frame
  indices through an id mapping: ``--ids FILE``, else ``<PATH>/object_ids.json`` when it exists
  (the file ``export-davis`` writes: ``{"sequences": {clip: {"labels": {"1": object_id},
  "frames": {"00010": 10}}}}``; ``frames`` optional), else the labels ``export-davis`` would write
  (:func:`~nvos.evaluation.protocols.label_order`) and the file name as the frame index. A label
  without pixels on a frame gives no mask (a missing prediction, scored as an empty mask). The
  folders ``Annotations``, ``ImageSets`` and ``JPEGImages`` (ground truth written beside the
  results) and files at the top level are passed over and counted.
- ``coco-rle``: a JSON list (or JSON Lines, one object a line) of
  ``{"clip_id", "object_id", "frame_index", "segmentation": {"size": [h, w], "counts"}, "score"}``
  (``score`` optional, default 1); counts compressed (a string) or uncompressed (a list).
- ``parquet``: a file, or a folder of files, of the ``predictions`` schema (another run's
  ``predictions/<method>/``); rows without an object id and rows of an object's later phrases
  are passed over and counted, as evaluation does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nvos import rle, storage
from nvos.imports.targets import ImportedMask, ImportSummary, PredictionImportError, RunTargets
from nvos.types import PathLike

FORMATS = ("davis", "coco-rle", "parquet")
GROUND_TRUTH_FOLDERS = frozenset({"Annotations", "ImageSets", "JPEGImages"})
IDS_FILE = "object_ids.json"


def read_masks(
    fmt: str,
    path: PathLike,
    targets: RunTargets,
    summary: ImportSummary,
    ids: PathLike | None = None,
) -> Iterator[ImportedMask]:
    """The masks of ``path`` in format ``fmt`` (one of :data:`FORMATS`); what is passed over is
    counted in ``summary.skipped``. ``ids``: the id mapping of the ``davis`` format."""
    path = Path(path)
    if not path.exists():
        raise PredictionImportError(f"{path}: no such file or folder")
    if fmt == "davis":
        return davis_masks(path, targets, summary, ids)
    if ids is not None:
        raise PredictionImportError(f"--ids is for the davis format, not {fmt!r}")
    if fmt == "coco-rle":
        return coco_masks(path)
    if fmt == "parquet":
        return parquet_masks(path, targets, summary)
    raise PredictionImportError(f"unknown format {fmt!r}; choose one of {list(FORMATS)}")


def _count(summary: ImportSummary, reason: str, n: int = 1) -> None:
    if n:
        summary.skipped[reason] = summary.skipped.get(reason, 0) + n


def _object(value: Any, where: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PredictionImportError(f"{where}: {key} must be a JSON object")
    return value


def read_id_mapping(path: Path) -> dict[str, tuple[dict[int, str], dict[str, int] | None]]:
    """An id mapping file: clip -> (label -> object id, frame name -> frame index or None)."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PredictionImportError(f"{path}: line {error.lineno}: not valid JSON") from None
    sequences = _object(_object(data, str(path), "the file").get("sequences"), str(path),
                        "'sequences'")  # fmt: skip
    mapping = {}
    for clip_id, entry in sequences.items():
        where = f"{path}: sequences.{clip_id}"
        entry = _object(entry, where, "the entry")
        labels = _object(entry.get("labels"), where, "'labels'")
        frames = entry.get("frames")
        try:
            by_label = {int(label): str(object_id) for label, object_id in labels.items()}
            names = None if frames is None else {str(k): int(v) for k, v in frames.items()}
        except (TypeError, ValueError, AttributeError):
            raise PredictionImportError(
                f"{where}: 'labels' must map label numbers to object ids and 'frames' frame "
                "names to frame indices"
            ) from None
        mapping[clip_id] = (by_label, names)
    return mapping


def _label_image(png: Path) -> np.ndarray:
    try:
        with Image.open(png) as image:
            if image.mode not in ("P", "L"):
                raise PredictionImportError(
                    f"{png}: not an indexed PNG (mode {image.mode}); pixel values must be labels "
                    "(palette or greyscale)"
                )
            return np.array(image)
    except OSError as error:
        raise PredictionImportError(f"{png}: cannot read the PNG: {error}") from None


def davis_masks(
    root: Path, targets: RunTargets, summary: ImportSummary, ids: PathLike | None = None
) -> Iterator[ImportedMask]:
    """The masks of a DAVIS-layout results folder (see the module docstring)."""
    if not root.is_dir():
        raise PredictionImportError(f"{root}: the davis format is a folder of sequence folders")
    ids_path = Path(ids) if ids is not None else root / IDS_FILE
    mapping = read_id_mapping(ids_path) if ids is not None or ids_path.is_file() else {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            _count(summary, "top_level_files")
            continue
        if entry.name in GROUND_TRUTH_FOLDERS:
            _count(summary, "ground_truth_folders")
            continue
        clip = targets.clip(entry.name, str(entry))
        default = {i + 1: object_id for i, object_id in enumerate(clip.labels)}
        labels, names = mapping.get(clip.clip_id, (default, None))
        tagged = set(labels.values()) & set(clip.objects)  # the objects a PNG may hold
        for png in sorted(entry.iterdir()):
            if png.suffix.lower() != ".png":
                _count(summary, "other_files")
                continue
            frame = _frame_index(png, names)
            image = _label_image(png)
            found = 0
            for value in np.unique(image).tolist():
                if value == 0:
                    continue
                if value not in labels:
                    raise PredictionImportError(
                        f"{png}: label {value} is not an object of clip {clip.clip_id!r} "
                        f"(labels: {dict(sorted(labels.items()))})"
                    )
                object_id = labels[value]
                if object_id in clip.labels and object_id not in clip.objects:
                    _count(summary, "untagged_object_masks")  # an annotated, untagged object
                    continue
                mask = image == value
                found += 1
                yield ImportedMask(str(png), clip.clip_id, object_id, frame, *mask.shape,
                                   rle.encode(mask))  # fmt: skip
            _count(summary, "empty_object_frames", len(tagged) - found)


def _frame_index(png: Path, names: Mapping[str, int] | None) -> int:
    if names is not None:
        if png.stem not in names:
            raise PredictionImportError(f"{png}: frame {png.stem!r} is not in the id mapping")
        return names[png.stem]
    if not png.stem.isdigit():
        raise PredictionImportError(
            f"{png}: the file name is not a frame index; give an id mapping with 'frames' (--ids)"
        )
    return int(png.stem)


def _entries(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, value) of a JSON list (``file entry i``) or JSON Lines (``file:line``)."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PredictionImportError(f"{path}:{error.lineno}: not valid JSON") from None
        yield from ((f"{path} entry {i}", item) for i, item in enumerate(data))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError:
                raise PredictionImportError(f"{path}:{number}: not valid JSON") from None


def coco_masks(path: Path) -> Iterator[ImportedMask]:
    """The masks of a COCO-RLE JSON list or JSON Lines file (see the module docstring)."""
    for where, item in _entries(path):
        item = _object(item, where, "an entry")
        missing = [k for k in ("clip_id", "object_id", "frame_index", "segmentation")
                   if k not in item]  # fmt: skip
        if missing:
            raise PredictionImportError(f"{where}: missing keys {missing}")
        frame, score = item["frame_index"], item.get("score", 1.0)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise PredictionImportError(f"{where}: frame_index must be an integer >= 0")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise PredictionImportError(f"{where}: score must be a number")
        try:
            height, width, counts = rle.check_json_rle(item["segmentation"])
        except rle.RLEError as error:
            raise PredictionImportError(f"{where}: segmentation: {error}") from None
        yield ImportedMask(where, str(item["clip_id"]), str(item["object_id"]), frame, height,
                           width, counts, float(score))  # fmt: skip


def parquet_masks(
    path: Path, targets: RunTargets, summary: ImportSummary
) -> Iterator[ImportedMask]:
    """The rows of a ``predictions`` file or folder of files (see the module docstring)."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise PredictionImportError(f"{path}: no .parquet file in the folder")
    for file in files:
        for i, row in enumerate(storage.read_table(file, "predictions").to_pylist()):
            where = f"{file} row {i}"
            if row["object_id"] is None:
                _count(summary, "untagged_rows")
                continue
            first = targets.clip(row["clip_id"], where).objects.get(row["object_id"])
            if first is not None and row["phrase_id"] != first:
                _count(summary, "later_phrase_rows")
                continue
            yield ImportedMask(
                where, row["clip_id"], row["object_id"], row["frame_index"], row["height"],
                row["width"], row["rle_counts"], row["score"],
            )  # fmt: skip
