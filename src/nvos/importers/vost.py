"""VOST importer: ``JPEGImages/`` + ``Annotations/`` + ``ImageSets/`` + a tagged narration table.

``nvos import vost --root DIR --narrations CSV [--fps 30] --out MANIFEST``

**Inputs** (REFERENCE §2): ``<root>/JPEGImages/<seq>/*.jpg`` (the frames),
``<root>/Annotations/<seq>/*.png`` (indexed PNGs: pixel value = object label, 0 = background,
255 = ignore), ``<root>/ImageSets/<split>.txt`` (one sequence per line; the file name is the
split). ``--narrations`` is a CSV table, one clip per row, with columns ``sequence`` and
``narration`` (object phrases tagged ``[phrase]<label>`` with the VOST object label, e.g.
``cut the [carrot]<1> with a [knife]<2>``); optional ``clip_id`` (default: the sequence; give it
when a sequence has several narrations), ``split`` (default: the ImageSets file that lists the
sequence) and ``instances``. Other columns are ignored. An untagged narration makes a clip without
masks (training); it needs no ``Annotations`` folder.

**Clips and frames.** A clip is the whole sequence: ``video`` is its ``JPEGImages/<seq>`` folder
(``fps`` from ``--fps``, else the manifest default ``dataset.folder_fps``), and each PNG is the
annotation of the JPEG with the same file stem, at that JPEG's position in the sorted folder
(VOST annotates at 5 fps, so not every JPEG has a PNG). Every annotated frame lists every tagged
object, with an empty mask where the object is absent (the official VOST J scores a missing
object as empty too).

**Split objects (J_ins).** In VOST all pieces of a cut or broken object keep the object's label,
so a tag's mask is one RLE (the evaluation then takes its connected components as instances).
Where an annotation gives the pieces separate labels, the ``instances`` column groups them:
``2=2+7; 3=3`` makes the object tagged ``<2>`` the labels 2 and 7, written as a list of
instance RLEs on frames where more than one of them is present (their union is the object).

**Ignore (255).** The manifest has no ignore region. Ignore pixels belong to no object, so they
are background in every mask, which is what the official VOST J does (it sets 255 to 0 and passes
no void mask). The import logs how many frames and pixels were ignore.

Problems of one row, sequence or frame skip it with a counted reason; a table without its columns
or a sequence listed in two ImageSets files stops the import
(:class:`~nvos.importers.common.ImportFormatError`).
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nvos.evaluation.protocols import IGNORE_LABEL
from nvos.importers.common import (
    ClipSkip,
    ImportFormatError,
    ManifestWriter,
    mask_json,
    positive_float,
    read_rows,
    tag_ids,
)
from nvos.tags import TagError
from nvos.types import PathLike
from nvos.video import folder_images

logger = logging.getLogger(__name__)


NARRATION_COLUMNS: tuple[str, ...] = ("sequence", "narration")
"""Required columns of the VOST narration table (``clip_id``, ``split``, ``instances`` optional)."""


GROUP = re.compile(r"([A-Za-z0-9_-]+)\s*=\s*(\d+(?:\s*\+\s*\d+)*)")


@dataclass(frozen=True)
class AnnotatedFrame:
    """One VOST annotation PNG: its position in the JPEG folder and its label map (H, W) uint8."""

    frame_index: int
    name: str
    labels: np.ndarray


@dataclass
class IgnoreCount:
    """Frames and pixels with the ignore label over the imported clips."""

    frames: int = 0
    pixels: int = 0
    annotated_frames: int = 0


def read_image_sets(root: Path) -> dict[str, str]:
    """sequence → split from ``<root>/ImageSets/*.txt`` (empty when there is no such folder).

    Raises :class:`ImportFormatError` when a sequence is listed in two files.
    """
    folder = root / "ImageSets"
    splits: dict[str, str] = {}
    if not folder.is_dir():
        return splits
    for path in sorted(folder.glob("*.txt")):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            seq = line.strip()
            if not seq:
                continue
            if seq in splits and splits[seq] != path.stem:
                raise ImportFormatError(
                    f"{path}:{line_no}: sequence {seq} is also in ImageSets/{splits[seq]}.txt"
                )
            splits[seq] = path.stem
    return splits


def parse_instances(text: str, tags: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """The ``instances`` column (``"2=2+7; 3=3"``) → {tag: labels}; ValueError when malformed."""
    groups: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = GROUP.fullmatch(part)
        if not match:
            raise ValueError(f"{part!r} is not <tag>=<label>+<label>...")
        tag = match.group(1)
        if tag not in tags:
            raise ValueError(f"{part!r} names <{tag}>, which the narration does not tag")
        groups[tag] = tuple(int(v) for v in match.group(2).split("+"))
    return groups


def read_annotations(seq: str, annotations: Path, stems: Mapping[str, int]) -> list[AnnotatedFrame]:
    """The annotated frames of a sequence, in frame order (raises :class:`ClipSkip`).

    Each PNG must be an indexed ('P') or greyscale ('L') image named like a JPEG of the sequence.
    """
    pngs = sorted(annotations.glob("*.png"))
    if not pngs:
        raise ClipSkip(f"{seq}: {annotations}", "no annotation PNG for the sequence")
    frames: list[AnnotatedFrame] = []
    for png in pngs:
        if png.stem not in stems:
            raise ClipSkip(f"{seq}/{png.name}", "annotation PNG has no JPEG frame of that name")
        try:
            with Image.open(png) as image:
                if image.mode not in ("P", "L"):
                    raise ClipSkip(
                        f"{seq}/{png.name} has mode {image.mode}",
                        "annotation PNG is not an indexed (palette) image",
                    )
                labels = np.array(image, dtype=np.uint8)
        except OSError as error:
            raise ClipSkip(f"{seq}/{png.name}: {error}", "annotation PNG cannot be read") from error
        frames.append(AnnotatedFrame(stems[png.stem], png.name, labels))
    return sorted(frames, key=lambda f: f.frame_index)


def object_masks(labels: np.ndarray, instance_labels: Sequence[int]) -> Any:
    """One object on one frame: a single RLE (one or no instance present) or a list of RLEs."""
    present = [labels == v for v in instance_labels if (labels == v).any()]
    if len(present) > 1:
        return [mask_json(m) for m in present]
    return mask_json(present[0] if present else np.zeros(labels.shape, dtype=bool))


class VostImporter:
    """Imports narration rows of one VOST root (see the module doc); keeps the last sequence."""

    def __init__(self, root: Path, images: str, fps: float | None, writer: ManifestWriter) -> None:
        self.root = root
        self.images = images
        self.fps = fps
        self.writer = writer
        self.splits = read_image_sets(root)
        self.ignore = IgnoreCount()
        self._cached: tuple[str, list[AnnotatedFrame]] | None = None

    def frames(self, seq: str, stems: Mapping[str, int]) -> list[AnnotatedFrame]:
        """The annotated frames of ``seq`` (read once for consecutive rows of one sequence)."""
        if self._cached is None or self._cached[0] != seq:
            self._cached = (seq, read_annotations(seq, self.root / "Annotations" / seq, stems))
        return self._cached[1]

    def line(self, row_no: int, values: Mapping[str, str]) -> dict[str, Any]:
        """The manifest line of one table row (raises :class:`ClipSkip`)."""
        seq = values["sequence"]
        clip_id = values.get("clip_id") or seq
        item = f"line {row_no} ({clip_id})"
        if not seq or not values["narration"]:
            raise ClipSkip(item, "narration row without sequence / narration")
        try:
            tags = tag_ids(values["narration"])
        except TagError as error:
            raise ClipSkip(f"{item}: {error}", "malformed narration tag") from error
        try:
            groups = parse_instances(values.get("instances", ""), tags)
        except ValueError as error:
            raise ClipSkip(f"{item}: {error}", "malformed instances column") from error
        split = values.get("split") or self.splits.get(seq)
        if not split:
            raise ClipSkip(f"{item}: {seq}", "sequence in no ImageSets list and no split given")
        folder = self.root / self.images / seq
        images = folder_images(folder) if folder.is_dir() else []
        if not images:
            raise ClipSkip(f"{item}: {folder}", "no JPEG frames for the sequence")
        line: dict[str, Any] = {
            "clip_id": clip_id,
            "video": self.writer.video_path(folder),
            "split": split,
            "narration": values["narration"],
        }
        if self.fps is not None:
            line["fps"] = self.fps
        if tags:
            line["annotations"] = self.annotations(item, seq, tags, groups, images)
        return line

    def annotations(
        self,
        item: str,
        seq: str,
        tags: Sequence[str],
        groups: Mapping[str, tuple[int, ...]],
        images: Sequence[Path],
    ) -> list[dict[str, Any]]:
        """The manifest ``annotations`` of a tagged clip (raises :class:`ClipSkip`)."""
        labels_of: dict[str, tuple[int, ...]] = {}
        for tag in tags:
            if tag in groups:
                labels_of[tag] = groups[tag]
            elif tag.isdigit() and 0 < int(tag) < IGNORE_LABEL:
                labels_of[tag] = (int(tag),)
            else:
                raise ClipSkip(
                    f"{item}: <{tag}>", "tag is not a VOST object label and has no instances entry"
                )
        stems = {path.stem: i for i, path in enumerate(images)}
        try:
            frames = self.frames(seq, stems)
        except ClipSkip as skip:
            raise ClipSkip(f"{item}: {skip.item}", skip.reason) from None
        with Image.open(images[0]) as first:
            width, height = first.size
        if frames[0].labels.shape != (height, width):
            shape = frames[0].labels.shape
            raise ClipSkip(
                f"{item}: {seq} masks {shape[1]}x{shape[0]}, frames {width}x{height}",
                "annotation size differs from the frame size",
            )
        wanted = {v for values in labels_of.values() for v in values}
        seen: set[int] = set()
        entries: list[dict[str, Any]] = []
        for frame in frames:
            if frame.labels.shape != (height, width):
                raise ClipSkip(f"{item}: {seq}/{frame.name}", "annotation PNGs differ in size")
            present = set(np.unique(frame.labels).tolist()) - {0}
            seen |= present
            objects = {tag: object_masks(frame.labels, labels_of[tag]) for tag in tags}
            entries.append({"frame_index": frame.frame_index, "objects": objects})
        absent = [tag for tag in tags if not seen.intersection(labels_of[tag])]
        if absent:
            raise ClipSkip(
                f"{item}: {', '.join(f'<{t}>' for t in absent)}",
                "tagged object has no pixel in any annotated frame",
            )
        for label in sorted(seen - wanted - {IGNORE_LABEL}):
            self.writer.skip(f"{item}: label {label}", "VOST object not tagged in the narration")
        self.ignore.annotated_frames += len(frames)
        for frame in frames:
            ignored = int(np.count_nonzero(frame.labels == IGNORE_LABEL))
            self.ignore.frames += int(ignored > 0)
            self.ignore.pixels += ignored
        return entries


def import_vost(
    root: PathLike,
    narrations: PathLike,
    writer: ManifestWriter,
    fps: float | None = None,
    images: str = "JPEGImages",
) -> IgnoreCount:
    """Import VOST clips into ``writer`` (module doc), one table row at a time.

    ``images`` is the frame folder under ``root`` (``JPEGImages``); ``fps`` its frame rate
    (None: the manifest default). Sequences of ImageSets that no row names are listed as skipped.
    Returns the ignore-label counts (also logged).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImportFormatError(f"{root}: VOST root folder not found")
    importer = VostImporter(root, images, fps, writer)
    named: set[str] = set()
    for row_no, values in read_rows(narrations, NARRATION_COLUMNS, "VOST narration table"):
        named.add(values["sequence"])
        try:
            writer.write(importer.line(row_no, values))
        except ClipSkip as skip:
            writer.skip(skip.item, skip.reason)
    for seq in sorted(set(importer.splits) - named):
        writer.skip(f"{seq} ({importer.splits[seq]})", "sequence has no narration row")
    counts = importer.ignore
    writer.summary.note(
        f"ignore label {IGNORE_LABEL}: {counts.frames} of {counts.annotated_frames} annotated"
        f" frames, {counts.pixels} pixels (background in every mask)"
    )
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``nvos import vost``."""
    parser.add_argument(
        "--root", required=True, help="VOST folder with JPEGImages/, Annotations/, ImageSets/"
    )
    parser.add_argument(
        "--narrations",
        required=True,
        help="CSV: sequence, narration [, clip_id, split, instances]",
    )
    parser.add_argument(
        "--fps",
        type=positive_float,
        help="frame rate of the JPEG folders (default: dataset.folder_fps)",
    )
    parser.add_argument(
        "--images", default="JPEGImages", help="frame folder under --root (default: JPEGImages)"
    )


def run(args: argparse.Namespace, writer: ManifestWriter) -> None:
    """``nvos import vost``: :func:`import_vost` with the parsed options."""
    import_vost(args.root, args.narrations, writer, fps=args.fps, images=args.images)
