"""VISOR (VISOR-NVOS) importer: sparse annotation JSONs + frame images + a tagged narration table.

``nvos import visor --annotations DIR --frames DIR --narrations CSV [--size 854x480] --out M``

**Inputs** (REFERENCE §3):

- ``--annotations``: the VISOR sparse ground truth, one ``<video_id>.json`` per video (e.g.
  ``GroundTruth-SparseAnnotations/annotations/{train,val}/P01_01.json``), searched recursively;
  dense ``*_interpolations.json`` files are not read. Each has ``video_annotations``: one entry per
  annotated frame with ``image`` (``name`` = ``<video>_frame_<10-digit number>.jpg``,
  ``subsequence``, ``video``, ``image_path``) and ``annotations`` (per entity: ``id``, ``name``,
  ``exhaustive``, ``segments`` = polygons in 1920×1080 pixels).
- ``--frames``: the sparse frame JPEGs (the unzipped ``sparse/<split>/PXX/PXX_YY.zip``). An image
  is looked for at ``<frames>/<image_path>``, ``<frames>/<video>/<name>``,
  ``<frames>/<participant>/<video>/<name>`` and ``<frames>/<name>``, in that order.
- ``--narrations``: a CSV table, one clip per row, with columns ``clip_id``, ``video_id``,
  ``start_frame``, ``stop_frame`` (VISOR frame numbers, as in the image names, inclusive: the clip
  holds every annotated frame of the video in that range) and ``narration`` (object phrases
  tagged ``[phrase]<id>``); optional ``split`` (empty: the name of the folder holding the video's
  JSON, e.g. ``train`` / ``val``). Other columns are ignored. An untagged narration makes a clip
  without masks (training).

**Tags → VISOR entities.** A tag id is resolved per clip, first rule that applies:

1. the ``id`` of a mask on one of the clip's frames → that mask's entity name;
2. an integer k → the k-th entity name of the clip's subsequence in alphabetical order, i.e. the
   object label 1..K of VISOR-VOS ``visor_to_davis.py`` (all entities with a non-empty
   ``segments`` over all frames of the subsequence in the JSON; with ``--data-mapping``, the
   labels of that file instead: the ``{train,val}_data_mapping.json`` written by
   ``visor_to_davis.py``, which for val numbers the first frame's objects only). The clip's frames
   must then lie in one subsequence;
3. otherwise an entity name, compared after lower-casing and replacing every run of characters
   other than a-z and 0-9 by ``_`` (``<wooden_spoon>`` is "wooden spoon").

An object is every mask of that entity name on the clip's frames; where one frame has several
masks with that name they are kept as a list of instances. Masks of entities that no tag names are
not written (one skip line per clip and entity says so).

**Masks.** Each frame is rasterised as the VISOR tools do (:mod:`nvos.importers.polygons`): at
1920×1080, one ``fillPoly`` per entity in annotation order (later entities cover earlier ones),
points truncated to int32. With ``--size WxH`` (VISOR-VOS uses ``854x480``) the label map is
resized with nearest-neighbour and the images with bilinear interpolation (as VISOR-VOS does);
without it the images must be 1920×1080. Every tagged object has an entry on every frame of its
clip, an empty mask where it is not annotated on that frame (as the VISOR-VOS evaluation, which
scores a missing object as empty).

**Frames become a video.** The manifest needs a video or a frame folder, so the importer writes
one folder per video, ``<frames-out>/<video_id>/`` (default ``<manifest name>_frames/`` beside
the manifest), holding the annotated frames that the video's clips use, under their VISOR names
(so sorted order = frame-number order): symbolic links to the originals, or resized JPEGs with
``--size``. Each folder is written to a temporary name and renamed when complete. The folder is
played at ``fps`` 1 (``FOLDER_FPS``): its time axis is ordinal (the k-th annotated frame at k s),
and a clip is the window ``[first, last + 1)`` s of its frames' positions.

**exhaustive.** VISOR's per-mask ``exhaustive`` flag ('y' / 'n' / 'inconclusive') becomes the
clip's optional manifest key ``"exhaustive": {object_id: bool}``: true when every mask of the
object in the clip says 'y'; an object with a mask lacking the flag is left out. The evaluation
reports the ``exhaustive`` / ``non_exhaustive`` breakdown from it.

Problems of the table or of one frame skip the row or the frame with a counted reason; a JSON that
is not in the VISOR format, or a table without its columns, stops the import
(:class:`~nvos.importers.common.ImportFormatError`).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from nvos.importers.common import (
    ClipSkip,
    ImportFormatError,
    ManifestWriter,
    mask_json,
)
from nvos.importers.polygons import (
    VISOR_SIZE,
    rasterise,
    resize_labels,
)
from nvos.importers.visor_records import (
    Frame,
    NarrationRow,
    VisorVideo,
    find_annotation_files,
    load_video,
    read_data_mapping,
    read_narrations,
    slug,
)
from nvos.types import PathLike

logger = logging.getLogger(__name__)


FOLDER_FPS = 1.0
"""Frame rate written for the per-video folders of sparse frames (an ordinal time axis)."""

JPEG_QUALITY = 95
"""JPEG quality of resized frames."""

LABEL_CACHE = 32
"""How many rasterised frames are kept for clips that share frames."""


def parse_size(text: str) -> tuple[int, int]:
    """``"854x480"`` → (height, width) = (480, 854); raises ValueError otherwise."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"a size is WIDTHxHEIGHT in pixels, e.g. 854x480; got {text!r}")
    return int(match.group(2)), int(match.group(1))


# --------------------------------------------------------------------------------- one video


@dataclass
class PendingClip:
    """A clip whose masks are ready; frame positions are known once the folder is written."""

    row: NarrationRow
    split: str
    frames: list[int]  # VISOR frame numbers, ascending
    masks: dict[int, dict[str, Any]]  # frame number → {object_id: RLE or [RLE, ...]}
    exhaustive: dict[str, bool]


class VideoImporter:
    """Turns the narration rows of one VISOR video into manifest lines (see the module doc)."""

    def __init__(
        self,
        video: VisorVideo,
        frames_root: Path,
        size: tuple[int, int] | None,
        data_mapping: Mapping[str, Mapping[int, str]] | None,
        writer: ManifestWriter,
    ) -> None:
        self.video = video
        self.frames_root = frames_root
        self.size = size
        self.data_mapping = data_mapping
        self.writer = writer
        self._images: dict[int, Path | None] = {}
        self._labels: OrderedDict[int, np.ndarray] = OrderedDict()

    def image(self, frame: Frame) -> Path | None:
        """The frame's image file, or None (skip counted once per frame) when missing or unfit."""
        if frame.number in self._images:
            return self._images[frame.number]
        video = self.video.video_id
        candidates = [
            self.frames_root / frame.image_path,
            self.frames_root / video / frame.name,
            self.frames_root / video.split("_")[0] / video / frame.name,
            self.frames_root / frame.name,
        ]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            self.writer.skip(f"{video} {frame.name}", "frame image not found")
        elif self.size is None:
            try:
                with Image.open(found) as image:
                    width, height = image.size
            except OSError:
                self.writer.skip(str(found), "frame image cannot be read")
                found = None
            else:
                if (height, width) != VISOR_SIZE:
                    self.writer.skip(
                        f"{found} is {width}x{height}",
                        "frame image is not 1920x1080 (resize with --size)",
                    )
                    found = None
        self._images[frame.number] = found
        return found

    def labels(self, frame: Frame) -> np.ndarray:
        """The frame's label map at the output size (entity i → i + 1), cached for a few frames."""
        cached = self._labels.get(frame.number)
        if cached is None:
            cached = rasterise([e.polygons for e in frame.entities])
            if self.size is not None:
                cached = resize_labels(cached, self.size)
            self._labels[frame.number] = cached
            if len(self._labels) > LABEL_CACHE:
                self._labels.popitem(last=False)
        return cached

    def clip_frames(self, row: NarrationRow) -> list[Frame]:
        """The usable frames of the clip's window (frames with no image are skipped)."""
        numbers = sorted(n for n in self.video.frames if row.start_frame <= n <= row.stop_frame)
        window = [self.video.frames[n] for n in numbers]
        if not window:
            raise ClipSkip(
                f"{row.item}: {row.video_id} frames {row.start_frame}..{row.stop_frame}",
                "no annotated VISOR frame in the clip window",
            )
        for frame in window:
            if frame.error is not None:
                raise ClipSkip(
                    f"{row.item}: {self.video.path.name} {frame.name}: {frame.error}",
                    "malformed VISOR annotation on a frame of the clip",
                )
        usable = [f for f in window if self.image(f) is not None]
        if not usable:
            raise ClipSkip(row.item, "no frame image of the clip could be used")
        return usable

    def resolve(self, row: NarrationRow, frames: Sequence[Frame]) -> dict[str, str]:
        """Tag id → VISOR entity name for the clip (rules in the module doc)."""
        by_id = {e.id: e.name for f in frames for e in f.entities if e.id}
        by_slug: dict[str, set[str]] = {}
        for f in frames:
            for e in f.entities:
                by_slug.setdefault(slug(e.name), set()).add(e.name)
        subsequences = sorted({f.subsequence for f in frames})
        resolved: dict[str, str] = {}
        for tag in row.tags:
            if tag in by_id:
                name = by_id[tag]
            elif tag.isdigit():
                name = self._label(row, tag, subsequences)
            elif len(by_slug.get(slug(tag), ())) == 1:
                name = next(iter(by_slug[slug(tag)]))
            elif by_slug.get(slug(tag)):
                names = ", ".join(sorted(by_slug[slug(tag)]))
                raise ClipSkip(f"{row.item}: <{tag}> = {names}", "tag names several VISOR entities")
            else:
                raise ClipSkip(
                    f"{row.item}: <{tag}>", "tag matches no VISOR entity of the clip's frames"
                )
            for other, other_name in resolved.items():
                if other_name == name:
                    raise ClipSkip(
                        f"{row.item}: <{other}> and <{tag}> are both {name!r}",
                        "two tags name the same VISOR entity",
                    )
            resolved[tag] = name
        return resolved

    def _label(self, row: NarrationRow, tag: str, subsequences: Sequence[str]) -> str:
        if len(subsequences) != 1:
            raise ClipSkip(
                f"{row.item}: <{tag}> over {', '.join(subsequences)}",
                "label tag on a clip that spans several subsequences",
            )
        subsequence = subsequences[0]
        if self.data_mapping is not None:
            if subsequence not in self.data_mapping:
                raise ClipSkip(
                    f"{row.item}: {subsequence}", "subsequence not in the --data-mapping file"
                )
            labels = dict(self.data_mapping[subsequence])
        else:
            labels = self.video.subsequence_labels(subsequence)
        name = labels.get(int(tag))
        if name is None:
            raise ClipSkip(
                f"{row.item}: <{tag}> but {subsequence} has labels 1..{len(labels)}",
                "label tag out of range",
            )
        return name

    def prepare(self, row: NarrationRow) -> PendingClip:
        """Frames, masks and exhaustive flags of one clip (raises :class:`ClipSkip`)."""
        frames = self.clip_frames(row)
        split = row.split or self.video.split
        resolved = self.resolve(row, frames)
        by_name = {name: tag for tag, name in resolved.items()}
        masks: dict[int, dict[str, Any]] = {}
        flags: dict[str, list[str | None]] = {tag: [] for tag in resolved}
        annotated: set[str] = set()
        untagged: set[str] = set()
        for frame in frames:
            labels = self.labels(frame) if resolved else None
            instances: dict[str, list[np.ndarray]] = {tag: [] for tag in resolved}
            for i, entity in enumerate(frame.entities):
                tag = by_name.get(entity.name)
                if tag is None:
                    untagged.add(entity.name)
                    continue
                flags[tag].append(entity.exhaustive)
                assert labels is not None
                mask = labels == i + 1
                if mask.any():
                    instances[tag].append(mask)
            objects: dict[str, Any] = {}
            for tag, found in instances.items():
                if found:
                    annotated.add(tag)
                if len(found) > 1:
                    objects[tag] = [mask_json(m) for m in found]
                else:
                    shape = self.size or VISOR_SIZE
                    objects[tag] = mask_json(found[0] if found else np.zeros(shape, dtype=bool))
            masks[frame.number] = objects
        missing = [tag for tag in resolved if tag not in annotated]
        if missing:
            details = ", ".join(f"<{t}> = {resolved[t]!r}" for t in missing)
            raise ClipSkip(f"{row.item}: {details}", "tagged entity has no mask in the clip")
        for name in sorted(untagged) if resolved else ():
            self.writer.skip(f"{row.clip_id}: {name}", "VISOR entity not tagged in the narration")
        exhaustive = {
            tag: all(f == "y" for f in values)
            for tag, values in flags.items()
            if values and all(f is not None for f in values)
        }
        return PendingClip(row, split, [f.number for f in frames], masks, exhaustive)

    def write_folder(self, numbers: Sequence[int], folder: Path) -> set[int]:
        """Write the frames ``numbers`` into ``folder`` atomically; return those that failed.

        Without a size: symbolic links to the originals; with one: resized JPEGs.
        """
        failed: set[int] = set()
        with atomic_dir(folder) as tmp:
            for number in numbers:
                frame = self.video.frames[number]
                source = self._images[number]
                assert source is not None
                target = tmp / frame.name
                if self.size is None:
                    os.symlink(os.path.abspath(source), target)
                    continue
                image = cv2.imread(str(source), cv2.IMREAD_COLOR)
                if image is None:
                    self.writer.skip(str(source), "frame image cannot be decoded")
                    failed.add(number)
                    continue
                height, width = self.size
                resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                if not cv2.imwrite(str(target.with_suffix(".jpg")), resized, quality):
                    raise OSError(f"cannot write {target}")
        return failed

    def run(self, rows: Sequence[NarrationRow], frames_out: Path) -> None:
        """Import the clips of ``rows``: masks first, then the frame folder, then the lines."""
        pending: list[PendingClip] = []
        for row in rows:
            try:
                pending.append(self.prepare(row))
            except ClipSkip as skip:
                self.writer.skip(skip.item, skip.reason)
        if not pending:
            return
        numbers = sorted({n for clip in pending for n in clip.frames})
        folder = frames_out / self.video.video_id
        failed = self.write_folder(numbers, folder)
        position = {n: i for i, n in enumerate(n for n in numbers if n not in failed)}
        video = self.writer.video_path(folder)
        for clip in pending:
            if failed.intersection(clip.frames):
                self.writer.skip(clip.row.item, "a frame image of the clip cannot be decoded")
                continue
            self.writer.write(clip_line(clip, video, position))


def clip_line(clip: PendingClip, video: str, position: Mapping[int, int]) -> dict[str, Any]:
    """The manifest line of a prepared clip; its window spans its frames' folder positions."""
    first, last = position[clip.frames[0]], position[clip.frames[-1]]
    line: dict[str, Any] = {
        "clip_id": clip.row.clip_id,
        "video": video,
        "fps": FOLDER_FPS,
        "start_sec": first / FOLDER_FPS,
        "end_sec": (last + 1) / FOLDER_FPS,
        "split": clip.split,
        "narration": clip.row.narration,
    }
    if clip.row.tags:
        line["annotations"] = [
            {"frame_index": position[n], "objects": clip.masks[n]} for n in clip.frames
        ]
    if clip.exhaustive:
        line["exhaustive"] = clip.exhaustive
    return line


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the usual folder mode
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# ------------------------------------------------------------------------------------- entry


def import_visor(
    annotations: PathLike,
    frames: PathLike,
    narrations: PathLike,
    writer: ManifestWriter,
    size: tuple[int, int] | None = None,
    frames_out: PathLike | None = None,
    data_mapping: PathLike | None = None,
) -> None:
    """Import VISOR clips into ``writer`` (module doc: inputs, tags, masks, frame folders).

    ``size`` is the output (height, width), None = VISOR's 1080×1920; ``frames_out`` the folder of
    per-video frame folders (default ``<manifest name>_frames`` beside the manifest). JSONs are
    read one video at a time, in the order the table first names them.
    """
    frames_root = Path(frames)
    if not frames_root.is_dir():
        raise ImportFormatError(f"{frames_root}: VISOR frame folder not found")
    files = find_annotation_files(annotations)
    mapping = read_data_mapping(data_mapping) if data_mapping is not None else None
    by_video = read_narrations(narrations, files, writer)
    out_dir = (
        Path(frames_out)
        if frames_out is not None
        else writer.out.with_name(writer.out.stem + "_frames")
    )
    for n, (video_id, rows) in enumerate(by_video.items(), start=1):
        video = load_video(files[video_id])
        VideoImporter(video, frames_root, size, mapping, writer).run(rows, out_dir)
        logger.info("video %d/%d %s: %d clip rows", n, len(by_video), video_id, len(rows))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``nvos import visor``."""
    parser.add_argument(
        "--annotations", required=True, help="folder of VISOR sparse JSONs (searched recursively)"
    )
    parser.add_argument("--frames", required=True, help="folder of the sparse frame JPEGs")
    parser.add_argument(
        "--narrations",
        required=True,
        help="CSV: clip_id, video_id, start_frame, stop_frame, narration [, split]",
    )
    parser.add_argument(
        "--size", type=parse_size, help="resize frames and masks to WxH (e.g. 854x480)"
    )
    parser.add_argument(
        "--frames-out", help="where the per-video frame folders go (default: <out>_frames/)"
    )
    parser.add_argument(
        "--data-mapping", help="VISOR-VOS *_data_mapping.json for integer (label) tags"
    )


def run(args: argparse.Namespace, writer: ManifestWriter) -> None:
    """``nvos import visor``: :func:`import_visor` with the parsed options."""
    import_visor(
        args.annotations,
        args.frames,
        args.narrations,
        writer,
        size=args.size,
        frames_out=args.frames_out,
        data_mapping=args.data_mapping,
    )
