"""Video sources: a video file (anything OpenCV decodes) or a folder of frame images.

``frame_index`` is always the 0-based index of the decoded frame (for a folder: the position of the
image in the sorted file list).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nvos.errors import NvosError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_FOLDER_FPS = 30.0


class VideoError(NvosError, RuntimeError):
    """A video that cannot be opened or decoded; the message names the path and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a video source."""

    path: str
    height: int
    width: int
    frame_count: int
    fps: float
    is_folder: bool


def folder_images(path: Path) -> list[Path]:
    """The frame images of a folder, sorted by name."""
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@functools.lru_cache(maxsize=4096)
def probe(path: str, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Open a video file or frame folder and read its size, frame count and frame rate.

    Cached per path: a manifest with many clips of one video probes it once.
    Raises :class:`VideoError` naming the path when it is missing or unreadable.
    """
    source = Path(path)
    if not source.exists():
        raise VideoError(f"{path}: video not found")
    if source.is_dir():
        images = folder_images(source)
        if not images:
            raise VideoError(f"{path}: frame folder contains no images")
        first = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise VideoError(f"{path}: cannot decode frame image {images[0].name}")
        return VideoInfo(path, first.shape[0], first.shape[1], len(images), folder_fps, True)
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open the video")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError(f"{path}: OpenCV cannot decode a frame of the video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 0.0
    finally:
        capture.release()
    if count <= 0 or fps <= 0:
        raise VideoError(f"{path}: video reports frame count {count} and fps {fps}")
    return VideoInfo(path, frame.shape[0], frame.shape[1], count, fps, False)


def read_frames(info: VideoInfo, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, BGR uint8 image (H, W, 3)) for the requested indices, in ascending order.

    Video files are decoded sequentially from the first requested frame (one seek, then
    ``grab`` over frames that are not needed), so reading many frames of a clip costs one pass.
    Raises :class:`VideoError` naming the path and the frame when a frame cannot be decoded.
    """
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return
    if wanted[0] < 0 or wanted[-1] >= info.frame_count:
        raise VideoError(
            f"{info.path}: frame {wanted[-1] if wanted[-1] >= 0 else wanted[0]} is outside "
            f"the video's {info.frame_count} frames"
        )
    if info.is_folder:
        images = folder_images(Path(info.path))
        for index in wanted:
            image = cv2.imread(str(images[index]), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"{info.path}: cannot decode frame {index} ({images[index].name})")
            yield index, image
        return
    capture = cv2.VideoCapture(info.path)
    try:
        if not capture.isOpened():
            raise VideoError(f"{info.path}: OpenCV cannot open the video")
        position = 0
        if wanted[0] > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, wanted[0])
            position = int(capture.get(cv2.CAP_PROP_POS_FRAMES))
            if position != wanted[0]:  # backend could not seek exactly: decode from the start
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                position = 0
        for index in wanted:
            while position < index:
                if not capture.grab():
                    raise VideoError(f"{info.path}: cannot decode frame {position}")
                position += 1
            ok, image = capture.read()
            if not ok or image is None:
                raise VideoError(f"{info.path}: cannot decode frame {index}")
            position += 1
            yield index, image
    finally:
        capture.release()


def check_decodes_at(info: VideoInfo, index: int) -> None:
    """Seek a video file to frame ``index`` and decode one frame there; raise
    :class:`VideoError` if that fails (a file cut short after its index probes fine but fails
    here). One seek, never a decode from the start: cheap on long videos. Folders always pass."""
    if info.is_folder:
        return
    capture = cv2.VideoCapture(info.path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok or image is None:
        raise VideoError(f"{info.path}: cannot decode frame {index} of {info.frame_count}")


def frame_window(
    info: VideoInfo, start_sec: float | None = None, end_sec: float | None = None
) -> range:
    """Frame indices of the clip window [start_sec, end_sec) of a video.

    Frame i is shown at time i / fps; the window holds the frames whose time lies in
    [start_sec, end_sec). Missing bounds default to the whole video.
    """
    first = 0 if start_sec is None else int(np.ceil(start_sec * info.fps - 1e-6))
    stop = info.frame_count if end_sec is None else int(np.ceil(end_sec * info.fps - 1e-6))
    return range(max(first, 0), min(stop, info.frame_count))
