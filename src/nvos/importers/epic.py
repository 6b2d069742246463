"""EPIC-KITCHENS-100 narration CSVs + videos or frame folders -> clips (REFERENCE §4).

``nvos import epic EPIC_100_train.csv (--videos DIR | --frames DIR) --out MANIFEST``

One clip per CSV row (``EPIC_100_train.csv``, ``EPIC_100_validation.csv``; the test-timestamps CSV
has no narrations and is refused). ``clip_id`` is the row's ``narration_id``, ``narration`` its
``narration`` text, untagged ("take plate"): the phrase stage extracts its object phrases. The
split is ``--split``, by default ``train`` for a file named ``*train*`` and ``val`` for
``*validation*``.

- ``--videos DIR``: video files ``<video_id>.MP4`` (or ``.mp4``) in ``DIR``, ``DIR/<participant>/``
  or ``DIR/<participant>/videos/``; the clip is ``[start_timestamp, stop_timestamp]``.
- ``--frames DIR``: frame folders ``<video_id>/frame_0000000001.jpg ...`` (EPIC's ``rgb_frames``)
  in ``DIR`` or ``DIR/<participant>/rgb_frames/``; the clip is exactly the frames
  ``start_frame..stop_frame`` (1-based), written as seconds at the folder's frame rate: the
  ``fps`` of ``--video-info EPIC_100_video_info.csv`` if given, else ``--fps``, else 60 for
  ``PXX_YY`` and 50 for ``PXX_1YY`` videos (the log says which, per video count).

``all_nouns`` (a Python-literal list such as ``['plate', 'pan:frying']``) is checked but not
written: a ``[phrase]<id>`` tag needs a mask, and these clips have none.

Skipped and counted: malformed rows (wrong field count, bad timestamps, frames or ``all_nouns``),
empty narrations or ones with the reserved tag characters ``[ ] < >``, empty intervals, missing or
unreadable videos, frame folders not numbered from ``frame_0000000001.jpg``, clips beyond the end
of the video, and repeated ``narration_id``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nvos.importers.common import (
    ImportFormatError,
    ManifestWriter,
    positive_float,
    read_rows,
)
from nvos.phrases.normalise import NarrationError, normalise_narration
from nvos.tags import TagError
from nvos.types import PathLike
from nvos.video import VideoError, VideoInfo, folder_images, frame_window, probe

logger = logging.getLogger(__name__)

BASE_COLUMNS: tuple[str, ...] = ("narration_id", "video_id", "narration", "all_nouns")
TIME_COLUMNS: tuple[str, ...] = ("start_timestamp", "stop_timestamp")
FRAME_COLUMNS: tuple[str, ...] = ("start_frame", "stop_frame")
VIDEO_SUFFIXES: tuple[str, ...] = (".MP4", ".mp4")
EPIC55_FPS = 60.0
"""Frame numbering of ``PXX_YY`` videos (EPIC-55 origin) when no video-info CSV is given."""
EXTENSION_FPS = 50.0
"""Frame numbering of ``PXX_1YY`` videos (EPIC-100 extension)."""
MAX_NOUNS_CHARS = 10_000
"""A longer ``all_nouns`` cell is refused without evaluating it."""

SKIP_FIELDS = "malformed row (field count differs from the header)"
SKIP_ID = "empty narration_id or video_id"
SKIP_EMPTY = "empty narration"
SKIP_RESERVED = "narration has reserved characters [ ] < > (not a valid narration)"
SKIP_NOUNS = "bad all_nouns (not a Python-literal list of strings)"
SKIP_TIMESTAMP = "bad start_timestamp/stop_timestamp (not HH:mm:ss.SS)"
SKIP_FRAME = "bad start_frame/stop_frame (not an integer >= 1)"
SKIP_INTERVAL = "empty interval (stop before or at start)"
SKIP_VIDEO_MISSING = "video not found"
SKIP_VIDEO_UNREADABLE = "video unreadable"
SKIP_FOLDER_NUMBERING = "frame folder not numbered frame_0000000001.jpg .. frame_<count>.jpg"
SKIP_BEYOND = "clip beyond the end of the video"
SKIP_NO_FRAME = "clip window holds no frame of the video"

_TIMESTAMP = re.compile(r"(\d+):([0-5]?\d):([0-5]?\d(?:\.\d*)?)")
_EXTENSION_VIDEO = re.compile(r"P\d+_1\d\d")
_FRAME_NAME = "frame_{:010d}.jpg"


def parse_timestamp(text: str) -> float:
    """``HH:mm:ss.SS`` (EPIC's timestamps) in seconds; raises ValueError."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a HH:mm:ss.SS timestamp: {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def parse_all_nouns(text: str) -> tuple[str, ...]:
    """EPIC's ``all_nouns`` cell, a Python-literal list of strings (``"['plate', 'pan:frying']"``).

    Parsed with ``ast.literal_eval`` (single quotes: not JSON). Raises ValueError.
    """
    if len(text) > MAX_NOUNS_CHARS:
        raise ValueError(f"all_nouns is {len(text)} characters long")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"all_nouns {text!r} is not a Python literal") from None
    if not isinstance(value, list) or not all(isinstance(noun, str) for noun in value):
        raise ValueError(f"all_nouns {text!r} is not a list of strings")
    return tuple(value)


def _frame_number(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError(f"frame {value} < 1")
    return value


def default_fps(video_id: str) -> float:
    """Frame rate of EPIC's frame numbers by the video id: 50 for ``PXX_1YY``, else 60."""
    return EXTENSION_FPS if _EXTENSION_VIDEO.fullmatch(video_id) else EPIC55_FPS


def read_video_info(path: PathLike) -> dict[str, float]:
    """``video_id -> fps`` from ``EPIC_100_video_info.csv`` (video_id, duration, fps, resolution).

    Raises :class:`ImportFormatError` naming the file and line for a missing column or a frame
    rate that is not a positive number.
    """
    fps: dict[str, float] = {}
    columns = ("video_id", "fps")
    hint = "EPIC_100_video_info.csv has video_id, duration, fps, resolution"
    for line, row in read_rows(path, columns, "video info CSV", hint):
        try:
            value = float(row["fps"])
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ImportFormatError(
                f"{path}:{line}: fps {row['fps']!r} of {row['video_id']!r} is not a positive number"
            )
        fps[row["video_id"]] = value
    return fps


def infer_split(csv_path: Path) -> str:
    """``train`` / ``val`` / ``test`` from an EPIC CSV's name; raises ImportFormatError."""
    name = csv_path.name.lower()
    for word, split in (("train", "train"), ("validation", "val"), ("test", "test")):
        if word in name:
            return split
    raise ImportFormatError(f"{csv_path}: cannot tell the split from the file name: give --split")


@dataclass(frozen=True)
class _Source:
    """A resolved video: manifest path and probe, or the reason it is skipped."""

    path: str = ""
    info: VideoInfo | None = None
    fps: float | None = None  # frame folders only
    problem: str = ""


class _Videos:
    """Finds and probes each video once (by ``video_id``); counts where folder fps came from."""

    def __init__(
        self,
        writer: ManifestWriter,
        videos: Path | None,
        frames: Path | None,
        video_info: dict[str, float],
        video_info_name: str,
        fps: float | None,
    ) -> None:
        self.writer = writer
        self.videos = videos
        self.frames = frames
        self.video_info = video_info
        self.video_info_name = video_info_name
        self.fps = fps
        self.cache: dict[str, _Source] = {}
        self.fps_source: Counter[str] = Counter()

    def _candidates(self, video_id: str, participant: str) -> Iterator[Path]:
        if self.frames is not None:
            yield self.frames / video_id
            yield self.frames / participant / "rgb_frames" / video_id
            return
        assert self.videos is not None
        for suffix in VIDEO_SUFFIXES:
            name = video_id + suffix
            yield self.videos / name
            yield self.videos / participant / name
            yield self.videos / participant / "videos" / name

    def get(self, video_id: str, participant: str) -> _Source:
        """The video of ``video_id`` (resolved once)."""
        source = self.cache.get(video_id)
        if source is None:
            source = self._resolve(video_id, participant)
            self.cache[video_id] = source
        return source

    def _resolve(self, video_id: str, participant: str) -> _Source:
        folder = self.frames is not None
        candidates = self._candidates(video_id, participant)
        found = next((p for p in candidates if (p.is_dir() if folder else p.is_file())), None)
        if found is None:
            logger.warning("%s: no video found (looked in %s)", video_id, self._looked_in(video_id))
            return _Source(problem=SKIP_VIDEO_MISSING)
        fps: float | None = None
        if folder:
            fps, origin = self._folder_fps(video_id)
            self.fps_source[origin] += 1
        try:
            info = probe(str(found), fps if fps is not None else EPIC55_FPS)
        except VideoError as error:
            logger.warning("%s", error)
            return _Source(problem=SKIP_VIDEO_UNREADABLE)
        if folder and not _numbered_from_one(found, info.frame_count):
            logger.warning("%s: frames are not frame_0000000001.jpg ..", found)
            return _Source(problem=SKIP_FOLDER_NUMBERING)
        return _Source(self.writer.video_path(found), info, fps)

    def _folder_fps(self, video_id: str) -> tuple[float, str]:
        if video_id in self.video_info:
            return self.video_info[video_id], self.video_info_name
        if self.fps is not None:
            return self.fps, "--fps"
        return default_fps(video_id), "the video_id rule (60 for PXX_YY, 50 for PXX_1YY)"

    def _looked_in(self, video_id: str) -> str:
        return ", ".join(str(p) for p in self._candidates(video_id, video_id.split("_")[0]))


def _numbered_from_one(folder: Path, count: int) -> bool:
    """Whether the sorted frame images are ``frame_0000000001.jpg .. frame_<count>.jpg``."""
    images = folder_images(folder)
    return images[0].name == _FRAME_NAME.format(1) and images[-1].name == _FRAME_NAME.format(count)


def _row_problem(row: dict[str | None, str | None]) -> tuple[str, tuple[str, ...]] | str:
    """Why a row's text fields are unusable (a skip reason), else (narration, nouns)."""
    if None in row or any(value is None for value in row.values()):
        return SKIP_FIELDS
    if not (row["narration_id"] or "").strip() or not (row["video_id"] or "").strip():
        return SKIP_ID
    text = row["narration"] or ""
    try:
        clean = normalise_narration(text)
    except (TagError, NarrationError):
        return SKIP_RESERVED
    if not clean.text:
        return SKIP_EMPTY
    try:
        nouns = parse_all_nouns(row["all_nouns"] or "")
    except ValueError:
        return SKIP_NOUNS
    return text, nouns


def import_epic(
    csv_path: PathLike,
    writer: ManifestWriter,
    *,
    videos: PathLike | None = None,
    frames: PathLike | None = None,
    video_info: PathLike | None = None,
    fps: float | None = None,
    split: str | None = None,
) -> None:
    """Stream the rows of an EPIC-100 narration CSV into ``writer`` (see the module docstring).

    Exactly one of ``videos`` (video files; clips from the timestamps) and ``frames`` (frame
    folders; clips from the frame numbers at ``video_info``'s fps, else ``fps``, else the video-id
    rule) is given. ``split`` defaults to the one the file name says. Raises
    :class:`ImportFormatError` naming the file for missing columns or an unknown split.
    """
    if (videos is None) == (frames is None):
        raise ValueError("give exactly one of videos (video files) and frames (frame folders)")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if videos is not None and (fps is not None or video_info is not None):
        raise ValueError("fps and video_info are for frame folders only (video files have theirs)")
    path = Path(csv_path)
    split = split if split is not None else infer_split(path)
    info_fps = read_video_info(video_info) if video_info is not None else {}
    resolver = _Videos(
        writer,
        Path(videos) if videos is not None else None,
        Path(frames) if frames is not None else None,
        info_fps,
        Path(video_info).name if video_info is not None else "",
        fps,
    )
    bounds = FRAME_COLUMNS if frames is not None else TIME_COLUMNS
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in (*BASE_COLUMNS, *bounds) if c not in header]
        if missing:
            raise ImportFormatError(
                f"{path}:1: missing column(s) {', '.join(missing)} (an EPIC-KITCHENS-100 narration "
                "CSV has narration_id, participant_id, video_id, narration_timestamp, "
                "start_timestamp, stop_timestamp, start_frame, stop_frame, narration, verb, "
                "verb_class, noun, noun_class, all_nouns, all_noun_classes; "
                "EPIC_100_test_timestamps.csv has no narrations)"
            )
        for row in reader:
            _import_row(row, f"{path.name}:{reader.line_num}", split, frames is not None, resolver)
    if resolver.fps_source:
        writer.summary.note(
            "frame rate of frame folders: "
            + "; ".join(f"{n} videos from {origin}" for origin, n in resolver.fps_source.items())
        )


def _import_row(
    row: dict[str | None, str | None], where: str, split: str, folders: bool, resolver: _Videos
) -> None:
    """Write one row's clip, or count why not. ``where`` is ``"<file>:<line>"``."""
    writer = resolver.writer
    checked = _row_problem(row)
    narration_id = (row.get("narration_id") or "?").strip() or "?"
    item = f"{where}: {narration_id}"
    if isinstance(checked, str):
        writer.skip(item, checked)
        return
    narration, _nouns = checked
    start_key, stop_key = FRAME_COLUMNS if folders else TIME_COLUMNS
    raw = (row[start_key] or "", row[stop_key] or "")
    try:
        first, last = (
            (_frame_number(raw[0]), _frame_number(raw[1]))
            if folders
            else (parse_timestamp(raw[0]), parse_timestamp(raw[1]))
        )
    except ValueError:
        detail = f" ({start_key} {raw[0]!r}, {stop_key} {raw[1]!r})"
        writer.skip(item + detail, SKIP_FRAME if folders else SKIP_TIMESTAMP)
        return
    if last < first or (not folders and last == first):
        writer.skip(f"{item} ({start_key} {raw[0]}, {stop_key} {raw[1]})", SKIP_INTERVAL)
        return
    video_id = (row["video_id"] or "").strip()
    participant = (row.get("participant_id") or "").strip() or video_id.split("_")[0]
    source = resolver.get(video_id, participant)
    if source.info is None:
        writer.skip(f"{item} ({video_id})", source.problem)
        return
    info = source.info
    duration = info.frame_count / info.fps
    if folders:
        if last > info.frame_count:
            writer.skip(f"{item} ({stop_key} {last} > {info.frame_count} frames)", SKIP_BEYOND)
            return
        start, end = (first - 1) / info.fps, last / info.fps
    else:
        if last > duration + 1.0 / info.fps:
            writer.skip(f"{item} ({stop_key} {raw[1]} > {duration:g} s)", SKIP_BEYOND)
            return
        start, end = first, min(last, duration)
    if start >= end or len(frame_window(info, start, end)) == 0:
        writer.skip(item, SKIP_NO_FRAME)
        return
    line: dict[str, object] = {
        "clip_id": narration_id,
        "video": source.path,
        "narration": narration,
        "split": split,
        "start_sec": start,
        "end_sec": end,
    }
    if folders:
        line["fps"] = source.fps
    writer.write(line)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``nvos import epic`` options."""
    parser.add_argument("csv", help="EPIC_100_train.csv or EPIC_100_validation.csv")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--videos", help="folder of video files <video_id>.MP4")
    where.add_argument("--frames", help="folder of frame folders <video_id>/frame_*.jpg")
    parser.add_argument(
        "--video-info",
        default=None,
        help="EPIC_100_video_info.csv: frame rate of each frame folder",
    )
    parser.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="frame rate of frame folders not in --video-info (default: 60 for PXX_YY, "
        "50 for PXX_1YY)",
    )
    parser.add_argument(
        "--split", default=None, help="split of the clips (default: from the file name)"
    )


def run(args: argparse.Namespace, writer: ManifestWriter) -> None:
    """``nvos import epic``: :func:`import_epic` with the parsed options."""
    if args.videos is not None and (args.fps is not None or args.video_info is not None):
        raise ImportFormatError("--fps and --video-info are for --frames only")
    import_epic(
        args.csv,
        writer,
        videos=args.videos,
        frames=args.frames,
        video_info=args.video_info,
        fps=args.fps,
        split=args.split,
    )
