"""VISOR records: the sparse annotation JSONs, the tagged narration table, visor_to_davis labels.

:func:`load_video` reads one ``<video_id>.json`` (REFERENCE §3.1: ``video_annotations``, one entry
per annotated frame with its entities' polygons) into a :class:`VisorVideo`; :func:`read_narrations`
streams the narration table's rows as :class:`NarrationRow`; :func:`read_data_mapping` reads a
``{train,val}_data_mapping.json`` of the VISOR-VOS converter. Used by :mod:`nvos.importers.visor`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nvos.importers.common import ImportFormatError, ManifestWriter, read_rows, tag_ids
from nvos.importers.polygons import PolygonError, entity_polygons
from nvos.tags import TagError
from nvos.types import PathLike

NARRATION_COLUMNS: tuple[str, ...] = (
    "clip_id",
    "video_id",
    "start_frame",
    "stop_frame",
    "narration",
)
"""Required columns of the VISOR narration table (``split`` is optional)."""

FRAME_NUMBER = re.compile(r"_frame_(\d+)\.[A-Za-z]+$")
VIDEO_ID = re.compile(r"P\d+_\d+")


@dataclass(frozen=True)
class Entity:
    """One VISOR mask of a frame: its ``id``, entity ``name``, ``exhaustive`` flag and polygons."""

    id: str
    name: str
    exhaustive: str | None
    polygons: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Frame:
    """One annotated VISOR frame. ``error`` says why it cannot be used (a malformed entity)."""

    number: int
    name: str
    image_path: str
    subsequence: str
    entities: tuple[Entity, ...]
    error: str | None = None


@dataclass(frozen=True)
class NarrationRow:
    """One row of the narration table: a clip of ``video_id`` over VISOR frames
    ``start_frame..stop_frame`` (inclusive)."""

    line: int
    clip_id: str
    video_id: str
    start_frame: int
    stop_frame: int
    narration: str
    split: str
    tags: tuple[str, ...]

    @property
    def item(self) -> str:
        return f"line {self.line} ({self.clip_id})"


@dataclass
class VisorVideo:
    """The frames of one VISOR JSON, by frame number, and its split (the JSON's folder name)."""

    video_id: str
    path: Path
    frames: dict[int, Frame]
    split: str
    _labels: dict[str, dict[int, str]] = field(default_factory=dict)

    def subsequence_labels(self, subsequence: str) -> dict[int, str]:
        """VISOR-VOS labels of a subsequence: 1..K over its sorted entity names."""
        if subsequence not in self._labels:
            names = {
                e.name
                for f in self.frames.values()
                if f.subsequence == subsequence
                for e in f.entities
                if e.polygons
            }
            self._labels[subsequence] = {k: n for k, n in enumerate(sorted(names), start=1)}
        return self._labels[subsequence]


def find_annotation_files(root: PathLike) -> dict[str, Path]:
    """video_id → its sparse JSON under ``root`` (recursive; ``*_interpolations.json`` skipped).

    Raises :class:`ImportFormatError` when the folder is missing, holds no VISOR JSON, or holds
    two JSONs for one video.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImportFormatError(f"{root}: VISOR annotation folder not found")
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*.json")):
        if not VIDEO_ID.fullmatch(path.stem):
            continue
        if path.stem in files:
            raise ImportFormatError(
                f"{path}: a second annotation JSON of video {path.stem} (first: {files[path.stem]})"
            )
        files[path.stem] = path
    if not files:
        raise ImportFormatError(
            f"{root}: no VISOR annotation JSON (<video_id>.json such as P01_01.json) found"
        )
    return files


def _entity(raw: Any, where: str) -> Entity:
    """Parse one entry of a frame's ``annotations``; raises ValueError naming ``where``."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.name is missing or not a string")
    try:
        polygons = entity_polygons(raw.get("segments"))
    except PolygonError as error:
        raise ValueError(f"{where}.{error}") from error
    flag = raw.get("exhaustive")
    return Entity(
        str(raw.get("id", "")),
        name.strip(),
        flag.strip().lower() if isinstance(flag, str) else None,
        tuple(polygons),
    )


def load_video(path: Path) -> VisorVideo:
    """Read one VISOR sparse JSON into a :class:`VisorVideo`.

    Raises :class:`ImportFormatError` (naming the file and the entry) when the file is not JSON,
    has no ``video_annotations`` list, or an entry lacks ``image.name`` with a frame number or
    repeats a frame. A malformed entity makes only its frame unusable (``Frame.error``).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ImportFormatError(f"{path}: not a JSON file ({error})") from error
    entries = data.get("video_annotations") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ImportFormatError(
            f"{path}: not a VISOR annotation file (no top-level 'video_annotations' list)"
        )
    frames: dict[int, Frame] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: video_annotations[{i}]"
        image = entry.get("image") if isinstance(entry, dict) else None
        name = image.get("name") if isinstance(image, dict) else None
        if not isinstance(name, str):
            raise ImportFormatError(f"{where}: missing image.name")
        match = FRAME_NUMBER.search(name)
        if not match:
            raise ImportFormatError(
                f"{where}: image.name {name!r} has no frame number (<video>_frame_<number>.jpg)"
            )
        number = int(match.group(1))
        if number in frames:
            raise ImportFormatError(f"{where}: frame {name} appears twice")
        error = None
        entities: list[Entity] = []
        raw_entities = entry.get("annotations")
        if not isinstance(raw_entities, list):
            error = f"video_annotations[{i}].annotations is not a list"
        else:
            for k, raw in enumerate(raw_entities):
                try:
                    entities.append(_entity(raw, f"video_annotations[{i}].annotations[{k}]"))
                except ValueError as problem:
                    error = str(problem)
                    break
        frames[number] = Frame(
            number,
            name,
            str(image.get("image_path") or name),
            str(image.get("subsequence") or ""),
            tuple(entities),
            error,
        )
    split = path.parent.name
    return VisorVideo(path.stem, path, frames, split)


def read_narrations(
    path: PathLike, annotation_files: Mapping[str, Path], writer: ManifestWriter
) -> dict[str, list[NarrationRow]]:
    """The table's usable rows grouped by video (in order of first appearance).

    Rows with a missing value, non-integer or reversed frame range, malformed tags or an unknown
    video are skipped with their reason.
    """
    by_video: dict[str, list[NarrationRow]] = {}
    for line, values in read_rows(path, NARRATION_COLUMNS, "VISOR narration table"):
        item = f"line {line} ({values.get('clip_id') or '?'})"
        empty = [c for c in ("clip_id", "video_id", "narration") if not values.get(c)]
        if empty:
            writer.skip(item, f"narration row without {' / '.join(empty)}")
            continue
        try:
            start, stop = int(values["start_frame"]), int(values["stop_frame"])
        except ValueError:
            writer.skip(item, "start_frame / stop_frame is not an integer")
            continue
        if start > stop:
            writer.skip(f"{item}: {start} > {stop}", "start_frame after stop_frame")
            continue
        try:
            tags = tag_ids(values["narration"])
        except TagError as error:
            writer.skip(f"{item}: {error}", "malformed narration tag")
            continue
        video_id = values["video_id"]
        if video_id not in annotation_files:
            writer.skip(f"{item}: {video_id}", "no VISOR annotation JSON for the video")
            continue
        by_video.setdefault(video_id, []).append(
            NarrationRow(
                line,
                values["clip_id"],
                video_id,
                start,
                stop,
                values["narration"],
                values.get("split", ""),
                tuple(tags),
            )
        )
    return by_video


def read_data_mapping(path: PathLike) -> dict[str, dict[int, str]]:
    """A VISOR-VOS ``*_data_mapping.json``: subsequence → {label: entity name}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mapping = {
            str(seq): {int(k): str(v) for k, v in labels.items()} for seq, labels in data.items()
        }
    except FileNotFoundError as error:
        raise ImportFormatError(f"{path}: data mapping not found") from error
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
        raise ImportFormatError(
            f"{path}: not a VISOR-VOS data mapping ({{subsequence: {{label: name}}}}): {error}"
        ) from error
    return mapping


def slug(name: str) -> str:
    """Entity name → the form a name tag takes: lower case, other runs of characters → ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
