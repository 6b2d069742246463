"""Qualitative overlays: each phrase's predicted mask in its own colour, the GT outline, a legend.

For a deterministic sample of clips (smallest SHA-1 of the clip id) a few annotated frames are
drawn: the stored frame, every tagged object's predicted mask (its first phrase, as in evaluation)
alpha-blended and outlined in the object's colour, the outline of the ground-truth union of all
objects in white (on a dark halo, drawn last), and a legend band under the frame (colour swatch +
phrase text in any script, :mod:`nvos.report.fonts`). Masks are brought to the stored frame's size
with nearest-neighbour.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nvos import rle, storage
from nvos.evaluation.masks import to_gt_size
from nvos.evaluation.truth import ClipTruth, TaggedObject
from nvos.frames import ROLE_ANNOTATED, ClipFrames, iter_frames
from nvos.report.fonts import draw_text, fit_text
from nvos.types import PathLike

logger = logging.getLogger(__name__)


PHRASE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
)
"""RGB colours of the phrases, in tag order (cycled beyond ten)."""

GT_COLOUR = (255, 255, 255)
LEGEND_ROW = 18
LEGEND_FONT = 12
GT_LEGEND = "ground truth"
"""The legend line of the white outline (the union of all tagged objects' ground truth)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def phrase_colour(position: int) -> tuple[int, int, int]:
    """RGB colour of the ``position``-th tagged object of a clip (0-based)."""
    return PHRASE_COLOURS[position % len(PHRASE_COLOURS)]


def colour_hex(rgb: tuple[int, int, int]) -> str:
    """``#rrggbb`` of an RGB colour."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def select_clips(candidates: Sequence[str], n: int) -> list[str]:
    """``n`` clips from ``candidates``: those with the smallest SHA-1 of their id (deterministic,
    independent of file order, spread over the data), returned in that order."""
    unique = sorted(set(candidates), key=lambda c: (hashlib.sha1(c.encode()).hexdigest(), c))
    return unique[: max(0, n)]


def select_frames(frames: Sequence[int], n: int) -> list[int]:
    """At most ``n`` of the sorted ``frames``, evenly spaced, first and last included."""
    frames = sorted(frames)
    if n <= 0 or not frames:
        return []
    if len(frames) <= n:
        return frames
    picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in sorted(set(picks.tolist()))]


def overlay_name(clip_id: str, frame_index: int) -> str:
    """File name of an overlay: ``<clip>_<frame>.jpg`` (unsafe characters replaced by '_')."""
    return f"{_UNSAFE.sub('_', clip_id)}_{int(frame_index)}.jpg"


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: the phrase text and its RGB colour."""

    text: str
    colour: tuple[int, int, int]


def render_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray | None],
    gt_union: np.ndarray | None,
    legend: Sequence[LegendEntry],
    alpha: float = 0.5,
) -> np.ndarray:
    """The annotated frame as an RGB uint8 image (H + legend height, W, 3).

    ``image``: the frame (H, W, 3) RGB uint8. ``masks[i]``: phrase i's predicted mask (H, W) bool
    (None: no prediction), blended with ``legend[i].colour`` at ``alpha`` and outlined in it (later
    phrases on top). ``gt_union``: (H, W) bool, outlined in white on a dark halo, over everything.
    ``legend`` is drawn under the frame, one line per phrase (any Unicode text; cut with '…' where
    wider than the frame), then the ground-truth line (:data:`GT_LEGEND`, an outlined swatch);
    ``gt_union`` None (a video without annotations): no outline and no ground-truth line.
    """
    if len(masks) != len(legend):
        raise ValueError(f"{len(masks)} masks but {len(legend)} legend entries")
    height, width = image.shape[:2]
    thickness = max(1, round(width / 320))
    canvas = image.astype(np.float32)
    for mask, entry in zip(masks, legend, strict=True):
        if mask is None:
            continue
        if mask.shape != (height, width):
            raise ValueError(f"mask {mask.shape} does not match the frame {image.shape[:2]}")
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.array(entry.colour, np.float32)
    frame = np.ascontiguousarray(canvas.round().clip(0, 255).astype(np.uint8))
    for mask, entry in zip(masks, legend, strict=True):
        if mask is not None:
            cv2.drawContours(frame, _contours(mask), -1, entry.colour, thickness=thickness)
    rows = list(legend)
    if gt_union is not None:
        gt_contours = _contours(gt_union)
        cv2.drawContours(frame, gt_contours, -1, (0, 0, 0), thickness=thickness + 2)  # halo
        cv2.drawContours(frame, gt_contours, -1, GT_COLOUR, thickness=thickness)
        rows.append(LegendEntry(GT_LEGEND, GT_COLOUR))
    band = np.full((LEGEND_ROW * len(rows) + 4, width, 3), 32, dtype=np.uint8)
    for i, entry in enumerate(rows):
        y = 4 + i * LEGEND_ROW
        fill = -1 if i < len(legend) else 2  # the ground truth's swatch is an outline too
        cv2.rectangle(band, (4, y + 2), (16, y + 14), entry.colour, thickness=fill)
        text = fit_text(entry.text, LEGEND_FONT, width - 26)
        band = draw_text(band, text, (22, y + 13), LEGEND_FONT, (240, 240, 240))
    return np.concatenate([frame, band], axis=0)


def _contours(mask: np.ndarray) -> Sequence[np.ndarray]:
    """Outer contours of a (H, W) bool mask (OpenCV point arrays)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return contours


def write_jpeg(path: PathLike, image_rgb: np.ndarray, quality: int = 90) -> None:
    """Write an RGB uint8 image as JPEG, atomically."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"cannot JPEG-encode an image of shape {image_rgb.shape} for {path}")
    with storage.atomic_path(path) as tmp:
        tmp.write_bytes(buffer.tobytes())


@dataclass(frozen=True)
class Overlay:
    """One written overlay: its file (relative to the report folder), clip, frame, legend."""

    path: str
    clip_id: str
    frame_index: int
    legend: tuple[LegendEntry, ...]


@dataclass
class OverlayCounts:
    """What the overlay step skipped (counted, logged)."""

    clips_without_frames: int = 0
    frames_without_prediction: int = 0


def read_method_predictions(
    paths: Sequence[PathLike], clip_ids: Sequence[str]
) -> dict[tuple[str, str, int, int], tuple[float, int, int, bytes]]:
    """(clip, object_id, phrase_id, frame) -> (score, height, width, counts) of ``clip_ids``.

    Rows of untagged phrases (null object_id) are left out; of duplicates the best score is kept.
    """
    if not clip_ids:
        return {}
    columns = [
        "clip_id",
        "object_id",
        "phrase_id",
        "frame_index",
        "score",
        "height",
        "width",
        "rle_counts",
    ]
    out: dict[tuple[str, str, int, int], tuple[float, int, int, bytes]] = {}
    for path in paths:
        table = pq.read_table(path, columns=columns, filters=[("clip_id", "in", list(clip_ids))])
        declared = pa.schema([storage.SCHEMAS["predictions"].field(c) for c in columns])
        table = storage.conform(table, declared, str(path))
        rows = table.to_pydict()
        for i, clip_id in enumerate(rows["clip_id"]):
            object_id = rows["object_id"][i]
            if object_id is None:
                continue
            key = (clip_id, object_id, int(rows["phrase_id"][i]), int(rows["frame_index"][i]))
            value = (
                float(rows["score"][i]),
                int(rows["height"][i]),
                int(rows["width"][i]),
                rows["rle_counts"][i],
            )
            if key not in out or out[key][0] < value[0]:
                out[key] = value
    return out


def clip_overlays(
    frames: ClipFrames,
    objects: Sequence[TaggedObject],
    truth: ClipTruth,
    predictions: Mapping[tuple[str, str, int, int], tuple[float, int, int, bytes]],
    out_dir: Path,
    frames_per_clip: int,
    alpha: float,
    counts: OverlayCounts,
) -> list[Overlay]:
    """Write the overlays of one clip under ``out_dir/overlays``; return what was written."""
    legend = tuple(LegendEntry(obj.phrase, phrase_colour(i)) for i, obj in enumerate(objects))
    position = {int(f): i for i, f in enumerate(frames.frame_index.tolist())}
    written = []
    for frame in select_frames(list(position), frames_per_clip):
        image = frames.images[position[frame]]
        height, width = image.shape[:2]
        masks: list[np.ndarray | None] = []
        for obj in objects:
            found = predictions.get((frames.clip_id, obj.object_id, obj.phrase_id, frame))
            if found is None:
                counts.frames_without_prediction += 1
                masks.append(None)
                continue
            _, h, w, counts_bytes = found
            masks.append(to_gt_size(rle.decode(counts_bytes, h, w), height, width))
        gt = np.zeros((truth.height, truth.width), dtype=bool)
        for obj in objects:
            gt |= truth.object_frame(obj.object_id, frame).union
        rendered = render_overlay(image, masks, to_gt_size(gt, height, width), legend, alpha)
        name = overlay_name(frames.clip_id, frame)
        write_jpeg(out_dir / "overlays" / name, rendered)
        written.append(Overlay(f"overlays/{name}", frames.clip_id, frame, legend))
    return written


def iter_clip_frames(
    frames_paths: Sequence[PathLike], clip_ids: Sequence[str]
) -> Iterator[ClipFrames]:
    """Annotated frames of ``clip_ids`` from all ``frames/<shard>.parquet`` files."""
    for path in frames_paths:
        yield from iter_frames(path, roles={ROLE_ANNOTATED}, clip_ids=set(clip_ids))
