"""Validation of the input manifest (DESIGN §4 "Input manifest").

A manifest is JSON Lines, one clip per non-empty line; paths are relative to the manifest's folder::

    {"clip_id": "P01_01_c0007", "video": "videos/P01_01.mp4", "start_sec": 12.0, "end_sec": 16.5,
     "split": "val",
     "narration": "The person uses a [wooden spoon]<5> to stir [pasta]<2> in a [pan]<3>.",
     "annotations": [{"frame_index": 731, "objects": {"5": {"size": [480, 854], "counts": "..."}}}]}

Keys (any other key is an error): ``clip_id`` (str, unique, a safe file name: letters, digits,
``_``, ``-`` and ``.``, not first), ``video`` (a video file or a folder
of frame images), ``narration`` (str; tagged ``[phrase]<object_id>`` on evaluation clips), ``split``
(one of the configured splits), and optionally ``start_sec`` / ``end_sec`` (numbers, default: the
whole video), ``fps`` (frame folders only; default ``folder_fps``), ``annotations`` (a list of
``{"frame_index": int, "objects": {object_id: RLE or [RLE, ...]}}``; a list holds the instances of
the object) and ``exhaustive`` (``{object_id: bool}``: whether every instance of that annotated
object is segmented, e.g. VISOR's per-mask flag; the evaluation breaks its scores down by it).
``null`` for an optional key means "absent".

:func:`validate_manifest` checks every line and collects every problem before raising one
:class:`ManifestError` that lists them all; on success it returns one :class:`ClipRecord` per line.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvos import rle
from nvos.errors import NvosError
from nvos.tags import TagError, parse_tags
from nvos.types import PathLike
from nvos.video import (
    DEFAULT_FOLDER_FPS,
    VideoError,
    VideoInfo,
    check_decodes_at,
    frame_window,
    probe,
)

logger = logging.getLogger(__name__)

REQUIRED_KEYS: tuple[str, ...] = ("clip_id", "video", "narration", "split")
OPTIONAL_KEYS: tuple[str, ...] = ("start_sec", "end_sec", "fps", "annotations", "exhaustive")
ALLOWED_KEYS = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)
ANNOTATION_KEYS = frozenset({"frame_index", "objects"})

CLIP_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")
"""A clip id names files and folders (exports, overlays): letters, digits, '_', '-' and '.', not
first, at most 200 characters (so no '/', space, '..' or hidden name)."""

CLIP_ID_RULE = "letters, digits, '_', '-' and '.' (not first), at most 200 characters"

END_TOLERANCE_FRAMES = 1.0
"""``end_sec`` may exceed the video's duration by at most this many frame periods (container
durations are rounded); the resolved ``end_sec`` is then clamped to the duration."""

MAX_LISTED_PROBLEMS = 1000
"""At most this many problems are spelled out in a :class:`ManifestError` message (all of them
are in its ``problems`` attribute; the message says how many more there are)."""

PROGRESS_EVERY = 100_000


class ManifestError(NvosError, ValueError):
    """A manifest that failed validation.

    ``problems`` is the list of every (line, reason) found (line 0: the file as a whole);
    the message lists ``"<path>:<line>: <clip_id or ?>: <reason>"`` for each.
    """

    def __init__(self, path: str, problems: Sequence[tuple[int, str | None, str]]) -> None:
        self.path = path
        self.problems: list[tuple[int, str]] = [(line, reason) for line, _, reason in problems]
        listed = [
            f"{path}:{line}: {clip_id if clip_id is not None else '?'}: {reason}"
            for line, clip_id, reason in problems[:MAX_LISTED_PROBLEMS]
        ]
        if len(problems) > MAX_LISTED_PROBLEMS:
            listed.append(
                f"... and {len(problems) - MAX_LISTED_PROBLEMS} more problems (see .problems)"
            )
        header = f"{path}: manifest failed validation with {len(problems)} problem(s):"
        super().__init__("\n".join([header, *listed]))


@dataclass(frozen=True, slots=True)
class Annotation:
    """One ground-truth mask: an instance of an object at an annotated frame.

    ``counts`` is COCO compressed RLE (pycocotools, Fortran order) of a (height, width) mask.
    """

    frame_index: int
    object_id: str
    instance: int
    height: int
    width: int
    counts: bytes


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """A validated manifest line.

    ``index`` is the 0-based position among non-empty lines (it decides the shard), ``video`` the
    absolute path of the video file or frame folder, ``start_sec``/``end_sec`` the resolved clip
    window (defaults filled in, ``end_sec`` clamped to the video's duration), ``fps`` the frame
    rate used (container fps for files), ``height``/``width`` the frame size, ``window`` the frame
    indices of the clip window, ``annotations`` sorted by (frame_index, object_id, instance).
    """

    line: int
    index: int
    clip_id: str
    video: str
    start_sec: float
    end_sec: float
    fps: float
    height: int
    width: int
    window: range
    split: str
    narration: str
    annotations: tuple[Annotation, ...] = ()
    exhaustive: tuple[tuple[str, bool], ...] = ()


def summary(records: Iterable[ClipRecord]) -> dict[str, Any]:
    """Counts over validated clips (JSON-serialisable), in total and per split.

    Keys: ``clips``, ``videos`` (distinct paths), ``annotated_frames``, ``objects`` (distinct
    (clip, object_id) pairs with a mask), ``masks`` (instance masks = rows of
    ``annotations.parquet``) and ``per_split``: {split: {clips, annotated_frames, objects, masks}}.
    """
    per_split: dict[str, dict[str, int]] = {}
    videos: set[str] = set()
    totals = {"clips": 0, "annotated_frames": 0, "objects": 0, "masks": 0}
    for record in records:
        counts = per_split.setdefault(
            record.split, {"clips": 0, "annotated_frames": 0, "objects": 0, "masks": 0}
        )
        videos.add(record.video)
        frames = len({a.frame_index for a in record.annotations})
        objects = len({a.object_id for a in record.annotations})
        for target in (counts, totals):
            target["clips"] += 1
            target["annotated_frames"] += frames
            target["objects"] += objects
            target["masks"] += len(record.annotations)
    return {**totals, "videos": len(videos), "per_split": per_split}


@dataclass(frozen=True)
class _Source:
    """A probed video (or why it could not be probed) and its resolved path."""

    path: str
    info: VideoInfo | None
    error: str | None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(obj: dict[str, Any], problems: list[str]) -> None:
    """Unknown keys, and required keys that are missing, not strings or empty."""
    unknown = [k for k in obj if k not in ALLOWED_KEYS]
    if unknown:
        problems.append(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)} "
            f"(allowed: {', '.join(sorted(ALLOWED_KEYS))})"
        )
    for key in REQUIRED_KEYS:
        if key not in obj:
            problems.append(f"missing key {key!r}")
        elif not isinstance(obj[key], str):
            problems.append(f"wrong type: {key!r} must be a string, got {_type_name(obj[key])}")
        elif not obj[key].strip():
            problems.append(f"wrong value: {key!r} is empty")


def _resolve_window(
    info: VideoInfo | None, start: float | None, end: float | None, problems: list[str]
) -> tuple[float, float, range | None]:
    """Fill in the clip window's defaults and check it against the video.

    Returns (start_sec, end_sec clamped to the duration, frame indices of the window); the window
    is None when the video is unknown or the bounds are invalid (a problem was recorded then,
    or earlier for a negative start / start >= end).
    """
    start_sec = float(start) if start is not None else 0.0
    if info is None:
        return start_sec, float(end) if end is not None else 0.0, None
    duration = info.frame_count / info.fps
    end_sec = float(end) if end is not None else duration
    if end is not None and end > duration + END_TOLERANCE_FRAMES / info.fps:
        problems.append(
            f"end_sec {end} is beyond the end of the video ({duration:g} s = "
            f"{info.frame_count} frames at {info.fps:g} fps)"
        )
    elif end is None and start_sec >= duration:
        problems.append(f"start_sec {start} is at or beyond the end of the video ({duration:g} s)")
    end_sec = min(end_sec, duration)
    if not 0 <= start_sec < end_sec:
        return start_sec, end_sec, None
    window = frame_window(info, start_sec, end_sec)
    if len(window) == 0:
        problems.append(
            f"the clip window [{start_sec:g}, {end_sec:g}) s holds no frame "
            f"of the video at {info.fps:g} fps"
        )
        return start_sec, end_sec, None
    return start_sec, end_sec, window


def _check_tags_match_masks(
    tag_ids: dict[str, str], mask_ids: set[str], problems: list[str]
) -> None:
    """Every tagged object needs a mask in the clip, and every masked object a tag."""
    for object_id in sorted(mask_ids - tag_ids.keys()):
        problems.append(
            f"object {object_id!r} has masks but no [phrase]<{object_id}> tag in the narration"
        )
    for object_id, text in tag_ids.items():
        if object_id not in mask_ids:
            problems.append(f"tag [{text}]<{object_id}> has no mask in the clip's annotations")


def _check_exhaustive(
    value: Any, mask_ids: set[str], problems: list[str]
) -> tuple[tuple[str, bool], ...]:
    """The optional ``exhaustive`` key: {object_id: bool} over objects that have masks."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
        problems.append("wrong type: 'exhaustive' must be an object {object_id: true|false}")
        return ()
    for object_id in sorted(set(value) - mask_ids):
        problems.append(f"'exhaustive' names object {object_id!r}, which has no mask in the clip")
    return tuple(sorted(value.items()))


class _LineChecker:
    """Checks one manifest line at a time; remembers clip ids and probed videos across lines."""

    def __init__(self, base: str, splits: Sequence[str], folder_fps: float) -> None:
        self.base = base
        self.splits = frozenset(splits)
        self.splits_text = ", ".join(splits)
        self.folder_fps = folder_fps
        self.first_line: dict[str, int] = {}
        self.sources: dict[tuple[str, float | None], _Source] = {}
        # video file -> (its info, line, clip_id, last frame of its furthest clip window)
        self.furthest: dict[str, tuple[VideoInfo, int, str | None, int]] = {}

    def decode_problems(self) -> list[tuple[int, str | None, str]]:
        """Each video file decoded at the last frame of its furthest clip window: a file cut
        short after its index probes fine but fails there (frames of a folder are files)."""
        problems = []
        for info, line, clip_id, frame in self.furthest.values():
            try:
                check_decodes_at(info, frame)
            except VideoError as error:
                problems.append(
                    (
                        line,
                        clip_id,
                        f"the video does not decode to the end of the clip window "
                        f"(truncated?): {error}",
                    )
                )
        return problems

    def source(self, video: str, fps: float | None) -> _Source:
        """Probe a video once per (path as written, fps); failures are remembered too."""
        key = (video, fps)
        cached = self.sources.get(key)
        if cached is None:
            path = os.path.abspath(os.path.join(self.base, video))
            try:
                info = probe(path, fps if fps is not None else self.folder_fps)
                cached = _Source(path, info, None)
            except VideoError as error:
                cached = _Source(path, None, f"video unreadable: {error}")
            self.sources[key] = cached
        return cached

    @staticmethod
    def _number(obj: dict[str, Any], key: str, problems: list[str]) -> float | None:
        """The optional number ``obj[key]`` (None when absent, null or of the wrong type)."""
        value = obj.get(key)
        if value is None or _is_number(value):
            return value
        problems.append(f"wrong type: {key!r} must be a finite number, got {_type_name(value)}")
        return None

    def check(
        self, line: int, index: int, raw: bytes
    ) -> tuple[ClipRecord | None, str | None, list[str]]:
        """Return (record or None, clip_id or None, problems) for one non-empty line."""
        try:
            obj = json.loads(raw.rstrip())
        except UnicodeDecodeError as error:
            return None, None, [f"invalid JSON: the line is not UTF-8 ({error.reason})"]
        except json.JSONDecodeError as error:
            return None, None, [f"invalid JSON: {error.msg} at column {error.colno}"]
        if not isinstance(obj, dict):
            return None, None, [f"a line must be a JSON object, got {_type_name(obj)}"]

        problems: list[str] = []
        _check_keys(obj, problems)

        clip_id = obj.get("clip_id") if isinstance(obj.get("clip_id"), str) else None
        if clip_id and not CLIP_ID_PATTERN.fullmatch(clip_id):
            problems.append(f"clip_id {clip_id!r} is not a safe file name ({CLIP_ID_RULE})")
        if clip_id is not None:
            first = self.first_line.setdefault(clip_id, line)
            if first != line:
                problems.append(f"duplicate clip_id {clip_id!r} (first on line {first})")

        split = obj.get("split")
        if isinstance(split, str) and split.strip() and split not in self.splits:
            problems.append(f"unknown split {split!r} (allowed: {self.splits_text})")

        tag_ids: dict[str, str] | None = None  # object_id -> first phrase tagging it
        narration = obj.get("narration")
        if isinstance(narration, str):
            try:
                tagged = parse_tags(narration)
                tag_ids = {}
                for phrase in tagged.phrases:
                    tag_ids.setdefault(phrase.object_id, phrase.text)
            except TagError as error:
                problems.append(f"malformed narration tag at {error}")

        start, end, fps = (
            self._number(obj, key, problems) for key in ("start_sec", "end_sec", "fps")
        )
        if fps is not None and fps <= 0:
            problems.append(f"wrong value: 'fps' must be positive, got {fps}")
            fps = None
        if start is not None and start < 0:
            problems.append(f"negative start_sec {start}")
        if end is not None and (start if start is not None else 0.0) >= end:
            problems.append(f"start_sec {start if start is not None else 0.0} >= end_sec {end}")

        info: VideoInfo | None = None
        path = ""
        video = obj.get("video")
        if isinstance(video, str) and video.strip():
            src = self.source(video, fps)
            path, info = src.path, src.info
            if src.error is not None:
                problems.append(src.error)
            elif info is not None and fps is not None and not info.is_folder:
                if abs(fps - info.fps) > 1e-3 * info.fps:
                    problems.append(
                        f"'fps' {fps} is only for frame folders; the video file's own frame "
                        f"rate is {info.fps:g} fps (drop 'fps' from the line)"
                    )

        start_sec, end_sec, window = _resolve_window(info, start, end, problems)

        annotations: list[Annotation] = []
        mask_ids: set[str] = set()
        raw_annotations = obj.get("annotations")
        if raw_annotations is not None:
            if not isinstance(raw_annotations, list):
                problems.append(
                    f"wrong type: 'annotations' must be a list, got {_type_name(raw_annotations)}"
                )
            else:
                self._check_annotations(
                    raw_annotations, info, window, annotations, mask_ids, problems
                )

        if tag_ids is not None:
            _check_tags_match_masks(tag_ids, mask_ids, problems)
        exhaustive = _check_exhaustive(obj.get("exhaustive"), mask_ids, problems)

        if problems or info is None or window is None:
            return None, clip_id, problems
        if not info.is_folder:
            furthest = self.furthest.get(path)
            if furthest is None or window.stop > furthest[3] + 1:
                self.furthest[path] = (info, line, clip_id, window.stop - 1)
        annotations.sort(key=lambda a: (a.frame_index, a.object_id, a.instance))
        record = ClipRecord(
            line=line,
            index=index,
            clip_id=obj["clip_id"],
            video=path,
            start_sec=start_sec,
            end_sec=end_sec,
            fps=info.fps,
            height=info.height,
            width=info.width,
            window=window,
            split=obj["split"],
            narration=obj["narration"],
            annotations=tuple(annotations),
            exhaustive=exhaustive,
        )
        return record, clip_id, []

    def _check_annotations(
        self,
        entries: list[Any],
        info: VideoInfo | None,
        window: range | None,
        annotations: list[Annotation],
        mask_ids: set[str],
        problems: list[str],
    ) -> None:
        """Check the ``annotations`` list; append valid masks and every problem found."""
        seen_frames: dict[int, int] = {}
        for k, entry in enumerate(entries):
            where = f"annotations[{k}]"
            if not isinstance(entry, dict):
                problems.append(
                    f"wrong type: {where} must be an object {{frame_index, objects}}, "
                    f"got {_type_name(entry)}"
                )
                continue
            unknown = [key for key in entry if key not in ANNOTATION_KEYS]
            if unknown:
                problems.append(
                    f"{where}: unknown key(s) {', '.join(repr(u) for u in unknown)} "
                    "(allowed: frame_index, objects)"
                )
            frame_index = entry.get("frame_index")
            frame_ok = False
            if "frame_index" not in entry:
                problems.append(f"{where}: missing key 'frame_index'")
            elif not isinstance(frame_index, int) or isinstance(frame_index, bool):
                problems.append(
                    f"wrong type: {where}.frame_index must be an integer, "
                    f"got {_type_name(frame_index)}"
                )
            elif info is not None and not 0 <= frame_index < info.frame_count:
                problems.append(
                    f"{where}.frame_index {frame_index} is outside the video "
                    f"(frames 0..{info.frame_count - 1})"
                )
            elif window is not None and frame_index not in window:
                problems.append(
                    f"{where}.frame_index {frame_index} is outside the clip window "
                    f"(frames {window.start}..{window.stop - 1})"
                )
            else:
                frame_ok = True
            if isinstance(frame_index, int) and not isinstance(frame_index, bool):
                first = seen_frames.setdefault(frame_index, k)
                if first != k:
                    problems.append(
                        f"{where}: duplicate frame_index {frame_index} (also annotations[{first}])"
                    )
                    frame_ok = False
            objects = entry.get("objects")
            if "objects" not in entry:
                problems.append(f"{where}: missing key 'objects'")
                continue
            if not isinstance(objects, dict):
                problems.append(
                    f"wrong type: {where}.objects must be an object "
                    f"{{object_id: RLE or [RLE, ...]}}, got {_type_name(objects)}"
                )
                continue
            for object_id, value in objects.items():
                mask_ids.add(object_id)
                owhere = f"{where}.objects[{object_id!r}]"
                instances = value if isinstance(value, list) else [value]
                if not instances:
                    problems.append(f"{owhere}: empty list of instances")
                for i, obj_rle in enumerate(instances):
                    iwhere = f"{owhere}[{i}]" if isinstance(value, list) else owhere
                    try:
                        height, width, counts = rle.check_json_rle(obj_rle)
                    except rle.RLEError as error:
                        problems.append(f"{iwhere}: malformed RLE: {error}")
                        continue
                    if info is not None and (height, width) != (info.height, info.width):
                        problems.append(
                            f"{iwhere}: RLE size [{height}, {width}] does not match the video's "
                            f"frame size [{info.height}, {info.width}]"
                        )
                        continue
                    if frame_ok:
                        annotations.append(
                            Annotation(frame_index, object_id, i, height, width, counts)
                        )


def validate_manifest(
    path: PathLike,
    splits: Sequence[str],
    folder_fps: float = DEFAULT_FOLDER_FPS,
) -> list[ClipRecord]:
    """Validate a JSON Lines manifest; return one :class:`ClipRecord` per non-empty line.

    Every line is checked (JSON, keys and types, unique and file-safe clip_id, split, tags, video
    readable, clip window inside the video and decodable to its end, annotation frames inside the
    window, RLE well-formed and of the video's frame size, every tag has a mask and every mask a
    tag). All problems of all lines are collected and raised together as one
    :class:`ManifestError`; nothing is returned then. Videos are probed once per distinct path
    (``nvos.video.probe``).
    """
    manifest = Path(path)
    name = str(path)
    if not manifest.is_file():
        raise ManifestError(name, [(0, None, "manifest file not found")])
    checker = _LineChecker(str(manifest.parent.absolute()), splits, folder_fps)
    records: list[ClipRecord] = []
    problems: list[tuple[int, str | None, str]] = []
    index = 0
    with open(manifest, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record, clip_id, reasons = checker.check(line_no, index, raw)
            index += 1
            if record is not None:
                records.append(record)
            problems.extend((line_no, clip_id, reason) for reason in reasons)
            if index % PROGRESS_EVERY == 0:
                logger.info("%s: checked %d clips (%d problems)", name, index, len(problems))
    if index == 0:
        problems.append((0, None, "manifest is empty (no non-empty line)"))
    problems.extend(checker.decode_problems())
    if problems:
        raise ManifestError(name, problems)
    logger.info("%s: %d clips valid (%d videos)", name, len(records), len(checker.sources))
    return records
