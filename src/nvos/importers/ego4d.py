"""Ego4D narrations (``narration.json``) + canonical videos -> training clips (REFERENCE §5).

``nvos import ego4d narration.json --videos DIR [--metadata ego4d.json] --out MANIFEST``

``narration.json`` is one JSON object keyed by ``video_uid``; each value has ``narration_pass_1``
and/or ``narration_pass_2``, each with ``narrations`` (``timestamp_sec``, ``timestamp_frame``,
``narration_text``, ``annotation_uid``) and ``summaries``. Every narration of the chosen passes
becomes one training clip of the canonical video ``DIR/<video_uid>.mp4``: the window
``[t - before, t + after]`` around its timestamp, clamped to the video. Clip ids are
``<video_uid>_p<pass>_<index in the pass, 5 digits>``. The narration text is written as it is
(``#C C picks ...``): the phrase stage normalises it (:mod:`nvos.phrases.normalise`).

Skipped and counted (never silently dropped): ``#unsure`` narrations, ``#Summary`` lines and the
``summaries`` of each pass, empty texts, texts with the reserved tag characters ``[ ] < >``, bad
timestamps, timestamps beyond the video, missing or unreadable videos, malformed entries, and the
narrations of passes not selected. The file is read incrementally, one video entry at a time:
reading holds one entry, whatever the file's size (the manifest writer's set of written clip ids,
about 140 bytes per clip, is what grows; 1.5M narrations import in 300 MiB peak RSS).

Frame rate and duration come from ``ego4d.json`` (``videos[].video_metadata``: ``fps`` and
``num_frames``, or ``video_duration_sec``) when given, else from probing each video (OpenCV).
A narration without ``timestamp_sec`` uses ``timestamp_frame / fps``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvos.importers.common import (
    ImportFormatError,
    ManifestWriter,
    fraction,
    non_negative_float,
)
from nvos.importers.jsonstream import JsonStream, open_json
from nvos.phrases.normalise import NarrationError, normalise_narration
from nvos.tags import TagError
from nvos.types import PathLike
from nvos.video import VideoError, VideoInfo, frame_window, probe

logger = logging.getLogger(__name__)

DEFAULT_BEFORE_SEC = 2.0
DEFAULT_AFTER_SEC = 2.0
PASSES: tuple[int, ...] = (1, 2)
VIDEO_SUFFIX = ".mp4"
DECIMALS = 6
"""Clip bounds are rounded to this many decimals (microseconds)."""

# Skip reasons (the keys of the summary's ``skipped_by_reason``).
SKIP_ENTRY = "video entry is not a JSON object"
SKIP_PASS = "narration pass is not an object with a 'narrations' list"
SKIP_UNSELECTED = "narration pass not selected (--passes)"
SKIP_SUMMARY = "summary (#Summary), not a narration"
SKIP_NOT_OBJECT = "narration is not a JSON object"
SKIP_NO_TEXT = "missing or non-string narration_text"
SKIP_EMPTY = "empty narration_text"
SKIP_UNSURE = "#unsure narration"
SKIP_RESERVED = "narration_text has reserved characters [ ] < > (not a valid narration)"
SKIP_TIMESTAMP = "missing or bad timestamp_sec (and timestamp_frame)"
SKIP_BEYOND = "timestamp beyond the end of the video"
SKIP_NO_FRAME = "clip window holds no frame of the video"
SKIP_VIDEO_MISSING = "video not found"
SKIP_VIDEO_UNREADABLE = "video unreadable"

_PASS_KEY = re.compile(r"narration_pass_(\d+)")

# ------------------------------------------------------------------------------------------------
# Video timing: ego4d.json metadata or a probe


def read_metadata(path: PathLike) -> dict[str, VideoInfo]:
    """Frame rate and frame count per ``video_uid`` from ``ego4d.json`` (streamed).

    Reads ``videos[].video_uid`` and ``videos[].video_metadata`` (``fps`` and ``num_frames``, or
    ``video_duration_sec``; else the entry's ``duration_sec``). Entries without a usable frame rate
    or duration are left out (their videos are probed). The :class:`VideoInfo` have no frame size
    (0 x 0). Raises :class:`ImportFormatError` when the file has no ``videos`` array.
    """
    path = Path(path)
    found: dict[str, VideoInfo] = {}
    unusable = 0
    seen_videos = False
    with open_json(path) as handle:
        stream = JsonStream(handle, str(path))
        for key in stream.members("the top level of ego4d.json"):
            if key != "videos":
                stream.skip(key)
                continue
            seen_videos = True
            for entry in stream.items("'videos'"):
                info = _metadata_info(entry, str(path))
                if info is None:
                    unusable += 1
                else:
                    found[info.path] = info
        stream.end()
    if not seen_videos:
        raise ImportFormatError(f"{path}: no 'videos' array (is this Ego4D's ego4d.json?)")
    logger.info(
        "%s: frame rate and duration of %d videos (%d entries without them: probed instead)",
        path,
        len(found),
        unusable,
    )
    return found


def _number(value: Any) -> float | None:
    """``value`` as a finite positive float, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value > 0:
            return float(value)
    return None


def _metadata_info(entry: Any, source: str) -> VideoInfo | None:
    """A (size-less) VideoInfo keyed by video_uid in ``path``, from one ``videos`` entry."""
    if not isinstance(entry, dict) or not isinstance(entry.get("video_uid"), str):
        return None
    meta = entry.get("video_metadata")
    meta = meta if isinstance(meta, dict) else {}
    fps = _number(meta.get("fps"))
    if fps is None:
        return None
    frames = _number(meta.get("num_frames"))
    if frames is None:
        duration = _number(meta.get("video_duration_sec")) or _number(entry.get("duration_sec"))
        if duration is None:
            return None
        frames = round(duration * fps)
    return VideoInfo(entry["video_uid"], 0, 0, int(frames), fps, False)


# ------------------------------------------------------------------------------------------------
# The import


@dataclass(frozen=True)
class ClipWindow:
    """How clips are cut around a narration timestamp ``t``: ``[t - before, t + after]``."""

    before: float = DEFAULT_BEFORE_SEC
    after: float = DEFAULT_AFTER_SEC

    def __post_init__(self) -> None:
        for name in ("before", "after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"clip window: {name} must be a finite number >= 0, got {value}")
        if self.before + self.after <= 0:
            raise ValueError("clip window: before + after must be positive")


def held_out(video_uid: str, fraction: float) -> bool:
    """Whether ``video_uid`` falls in the held-out ``fraction`` of videos (a stable hash)."""
    digest = hashlib.blake2b(video_uid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2.0**64


class _Video:
    """One canonical video, resolved lazily: its manifest path and timing, or why it can't be."""

    def __init__(
        self, uid: str, folder: Path, metadata: dict[str, VideoInfo], writer: ManifestWriter
    ) -> None:
        self.uid = uid
        self._path = folder / f"{uid}{VIDEO_SUFFIX}"
        self._metadata = metadata
        self._writer = writer
        self._resolved = False
        self.info: VideoInfo | None = None
        self.manifest_path = ""
        self.problem = ""

    def resolve(self) -> None:
        """Find the video file and its frame rate / frame count (metadata, else a probe)."""
        if self._resolved:
            return
        self._resolved = True
        if not self._path.is_file():
            self.problem = SKIP_VIDEO_MISSING
            return
        info = self._metadata.get(self.uid)
        if info is None:
            try:
                info = probe(str(self._path))
            except VideoError as error:
                logger.warning("%s", error)
                self.problem = SKIP_VIDEO_UNREADABLE
                return
        self.info = info
        self.manifest_path = self._writer.video_path(self._path)


def _timestamp(narration: dict[str, Any], fps: float) -> float | None:
    """The narration's time in seconds: ``timestamp_sec``, else ``timestamp_frame / fps``."""
    value = narration.get("timestamp_sec")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if value is not None:
        return None
    frame = narration.get("timestamp_frame")
    if isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0:
        return frame / fps
    return None


def _text_problem(text: Any) -> str | None:
    """Why a ``narration_text`` is not imported, or None (normalisation is the phrase stage's)."""
    if not isinstance(text, str):
        return SKIP_NO_TEXT
    if not text.strip():
        return SKIP_EMPTY
    if "#unsure" in text.lower():
        return SKIP_UNSURE
    try:
        clean = normalise_narration(text)
    except (TagError, NarrationError):
        return SKIP_RESERVED
    if clean.is_summary:
        return SKIP_SUMMARY
    if not clean.text:
        return SKIP_EMPTY
    return None


@dataclass
class _Importer:
    """State of one ``narration.json`` import (see :func:`import_ego4d`)."""

    name: str
    videos: Path
    writer: ManifestWriter
    metadata: dict[str, VideoInfo]
    window: ClipWindow
    passes: frozenset[int]
    split: str
    held_out_fraction: float
    held_out_split: str

    def video_entry(self, uid: str, line: int, entry: Any) -> None:
        """Import every narration of one video entry."""
        where = f"{self.name}:{line}: {uid}"
        if not isinstance(entry, dict):
            self.writer.skip(where, SKIP_ENTRY)
            return
        video = _Video(uid, self.videos, self.metadata, self.writer)
        split = self.split
        if self.held_out_fraction > 0 and held_out(uid, self.held_out_fraction):
            split = self.held_out_split
        for key, value in entry.items():
            match = _PASS_KEY.fullmatch(key)
            if match is None:
                continue  # e.g. "status"
            number = int(match.group(1))
            pass_where = f"{where} {key}"
            narrations = value.get("narrations") if isinstance(value, dict) else None
            if not isinstance(narrations, list):
                self.writer.skip(pass_where, SKIP_PASS)
                continue
            summaries = value.get("summaries")
            for k in range(len(summaries) if isinstance(summaries, list) else 0):
                self.writer.skip(f"{pass_where}.summaries[{k}]", SKIP_SUMMARY)
            if number not in self.passes:
                for k in range(len(narrations)):
                    self.writer.skip(f"{pass_where}[{k}]", SKIP_UNSELECTED)
                continue
            for k, narration in enumerate(narrations):
                self.narration(video, number, k, narration, pass_where, split)

    def narration(
        self, video: _Video, number: int, k: int, narration: Any, where: str, split: str
    ) -> None:
        """Write one narration's clip, or count why not."""
        item = f"{where}[{k}]"
        if not isinstance(narration, dict):
            self.writer.skip(item, SKIP_NOT_OBJECT)
            return
        text = narration.get("narration_text")
        problem = _text_problem(text)
        if problem is not None:
            self.writer.skip(item, problem)
            return
        video.resolve()
        if video.info is None:
            self.writer.skip(item, video.problem)
            return
        info = video.info
        t = _timestamp(narration, info.fps)
        if t is None:
            self.writer.skip(item, SKIP_TIMESTAMP)
            return
        duration = info.frame_count / info.fps
        if t > duration + 1.0 / info.fps:
            self.writer.skip(item, SKIP_BEYOND)
            return
        start = round(max(0.0, t - self.window.before), DECIMALS)
        end = min(round(t + self.window.after, DECIMALS), duration)
        if start >= end or len(frame_window(info, start, end)) == 0:
            self.writer.skip(item, SKIP_NO_FRAME)
            return
        self.writer.write(
            {
                "clip_id": f"{video.uid}_p{number}_{k:05d}",
                "video": video.manifest_path,
                "narration": text,
                "split": split,
                "start_sec": start,
                "end_sec": end,
            }
        )


def import_ego4d(
    narration_json: PathLike,
    videos: PathLike,
    writer: ManifestWriter,
    *,
    metadata: PathLike | None = None,
    window: ClipWindow | None = None,
    passes: Sequence[int] = PASSES,
    split: str = "train",
    held_out_fraction: float = 0.0,
    held_out_split: str = "val",
) -> None:
    """Stream ``narration_json`` into ``writer``: one clip per usable narration (module docstring).

    ``videos`` holds the canonical videos ``<video_uid>.mp4``; ``metadata`` is Ego4D's
    ``ego4d.json`` (frame rates and durations; without it each video is probed); ``window`` the
    clip window around each timestamp; ``passes`` the narration passes to import. Clips are in
    ``split``, except the videos whose uid hashes into ``held_out_fraction`` (deterministic), whose
    clips are in ``held_out_split``. Raises :class:`ImportFormatError` (file:line:column) when the
    file is not one JSON object, and ``ValueError`` for bad options.
    """
    if not 0.0 <= held_out_fraction <= 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1], got {held_out_fraction}")
    if not passes or any(p < 1 for p in passes):
        raise ValueError(f"passes must be numbers >= 1, got {list(passes)}")
    path = Path(narration_json)
    importer = _Importer(
        name=path.name,
        videos=Path(videos),
        writer=writer,
        metadata=read_metadata(metadata) if metadata is not None else {},
        window=window or ClipWindow(),
        passes=frozenset(passes),
        split=split,
        held_out_fraction=held_out_fraction,
        held_out_split=held_out_split,
    )
    entries = 0
    with open_json(path) as handle:
        stream = JsonStream(handle, str(path))
        for uid in stream.members("the top level of narration.json (keyed by video_uid)"):
            line = stream.line
            importer.video_entry(uid, line, stream.value())
            entries += 1
        stream.end()
    logger.info(
        "%s: %d video entries, %d clips, %d items skipped",
        path,
        entries,
        writer.summary.clips,
        sum(writer.summary.skipped.values()),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``nvos import ego4d`` options."""
    parser.add_argument("narrations", help="Ego4D narration.json (a JSON object by video_uid)")
    parser.add_argument(
        "--videos", required=True, help="folder of the canonical videos <video_uid>.mp4"
    )
    parser.add_argument(
        "--metadata",
        default=None,
        help="Ego4D ego4d.json: frame rates and durations (default: probe each video)",
    )
    parser.add_argument(
        "--before",
        type=non_negative_float,
        default=DEFAULT_BEFORE_SEC,
        help="seconds of clip before each narration timestamp (default %(default)s)",
    )
    parser.add_argument(
        "--after",
        type=non_negative_float,
        default=DEFAULT_AFTER_SEC,
        help="seconds of clip after each narration timestamp (default %(default)s)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        nargs="+",
        choices=PASSES,
        default=list(PASSES),
        help="narration passes to import (default: 1 2)",
    )
    parser.add_argument("--split", default="train", help="split of the clips (default train)")
    parser.add_argument(
        "--held-out-fraction",
        type=fraction,
        default=0.0,
        help="fraction of videos (by a stable hash of video_uid) put in --held-out-split",
    )
    parser.add_argument(
        "--held-out-split", default="val", help="split of the held-out videos (default val)"
    )


def run(args: argparse.Namespace, writer: ManifestWriter) -> None:
    """``nvos import ego4d``: :func:`import_ego4d` with the parsed options."""
    try:
        window = ClipWindow(args.before, args.after)
    except ValueError as error:
        raise ImportFormatError(str(error)) from None
    import_ego4d(
        args.narrations,
        args.videos,
        writer,
        metadata=args.metadata,
        window=window,
        passes=args.passes,
        split=args.split,
        held_out_fraction=args.held_out_fraction,
        held_out_split=args.held_out_split,
    )
