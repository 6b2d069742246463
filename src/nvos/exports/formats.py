"""Masks exported in formats other tools read: YouTube-VIS JSON, COCO JSON, DAVIS PNG folders.

:func:`export_masks` reads a ``dense_masks`` or ``predictions`` table (:mod:`nvos.exports.source`)
with the phrases table (and, to choose splits and name videos, the clips table) and writes one of:

- ``ytvis``: one JSON file in the YouTube-VIS layout: ``videos`` (one per clip: ``id``, ``name``
  = clip id, ``width``, ``height``, ``length``, ``file_names`` ``<clip>/<frame>.jpg`` with
  DAVIS-style frame names, and ``frame_indices``), ``categories`` (``id``, ``name`` = head noun,
  ``supercategory`` ``object``), ``annotations`` (one per clip and phrase: ``video_id``,
  ``category_id``, ``segmentations`` (a COCO compressed RLE per video frame, ``null`` where the
  mask is empty or missing), ``areas``, ``bboxes``, ``scores`` (same nulls), ``score`` (mean over
  the frames with a mask), ``iscrowd`` 0, and the phrase: ``phrase``, ``char_start``,
  ``char_end``, ``phrase_id``, ``object_id``);
- ``coco``: one JSON file with an ``images`` entry per clip frame (``file_name`` as above,
  ``clip_id``, ``frame_index``) and an ``annotations`` entry per non-empty mask (``image_id``,
  ``category_id``, ``segmentation`` RLE, ``area``, ``bbox``, ``iscrowd`` 0, ``score`` and the
  phrase fields): the layout ``pycocotools.coco.COCO`` loads, and that ``COCO.loadRes`` takes;
- ``davis``: ``<out>/<clip>/<frame>.png`` palette PNGs (:mod:`nvos.exports.davis`).

Category ids are 1.. in the sorted order of the head nouns. RLE ``counts`` are the stored bytes as
ASCII text, exactly as pycocotools writes them. Every export counts what it wrote (clips, frames,
masks) and what it left out (empty masks, clips of other splits) in an :class:`ExportCounts`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nvos import rle, storage
from nvos.export import ExportError, check_sequence_name, frame_names
from nvos.exports.davis import export_davis_pngs
from nvos.exports.source import (
    ClipMasks,
    ExportCounts,
    HeadNouns,
    PhraseInfo,
    check_phrases,
    read_masks,
    read_phrases,
)
from nvos.phrases.normalise import clean_narration
from nvos.types import PathLike

__all__ = ["FORMATS", "ExportCounts", "export_masks", "rle_json"]

logger = logging.getLogger(__name__)

FORMATS = ("ytvis", "coco", "davis")


def rle_json(counts: bytes, height: int, width: int) -> dict[str, Any]:
    """A COCO compressed RLE as JSON: ``{"size": [height, width], "counts": "<ascii>"}``."""
    return {"size": [int(height), int(width)], "counts": counts.decode("ascii")}


def _categories(phrases: dict[tuple[str, int], PhraseInfo]) -> dict[str, int]:
    return {name: i + 1 for i, name in enumerate(sorted({p.category for p in phrases.values()}))}


def _file_names(clip: ClipMasks) -> dict[int, str]:
    check_sequence_name(clip.clip_id)
    return {f: f"{clip.clip_id}/{name}.jpg" for f, name in frame_names(clip.frames).items()}


def ytvis_json(
    clips: Sequence[ClipMasks],
    phrases: dict[tuple[str, int], PhraseInfo],
    clip_info: dict[str, dict[str, Any]],
    counts: ExportCounts,
) -> dict[str, Any]:
    """The YouTube-VIS document of ``clips`` (see the module docstring)."""
    category_ids = _categories(phrases)
    videos, annotations = [], []
    for video_id, clip in enumerate(clips, start=1):
        names = _file_names(clip)
        frames = clip.frames
        videos.append({
            "id": video_id, "name": clip.clip_id, "width": clip.width, "height": clip.height,
            "length": len(frames), "file_names": [names[f] for f in frames],
            "frame_indices": frames, **clip_info.get(clip.clip_id, {}),
        })  # fmt: skip
        counts.frames += len(frames)
        for phrase_id, rows in sorted(clip.tracks.items()):
            info = phrases[(clip.clip_id, phrase_id)]
            segmentations, areas, boxes, scores = [], [], [], []
            for frame in frames:
                row = rows.get(frame)
                area = rle.area(row.counts, clip.height, clip.width) if row else 0
                counts.missing_masks += int(row is None)
                counts.empty_masks += int(row is not None and area == 0)
                counts.masks += int(area > 0)
                present = row is not None and area > 0
                segmentations.append(
                    rle_json(row.counts, clip.height, clip.width) if present else None
                )
                areas.append(area if present else None)
                boxes.append(
                    list(rle.bbox(row.counts, clip.height, clip.width)) if present else None
                )
                scores.append(row.score if present else None)
            shown = [s for s in scores if s is not None]
            annotations.append({
                "id": len(annotations) + 1, "video_id": video_id,
                "category_id": category_ids[info.category], "iscrowd": 0,
                "height": clip.height, "width": clip.width, "length": 1,
                "segmentations": segmentations, "areas": areas, "bboxes": boxes,
                "scores": scores, "score": sum(shown) / len(shown) if shown else 0.0,
                **info.fields(phrase_id),
            })  # fmt: skip
            counts.tracks += 1
    return {
        "videos": videos,
        "categories": _category_list(category_ids),
        "annotations": annotations,
    }


def _category_list(category_ids: dict[str, int]) -> list[dict[str, Any]]:
    return [{"id": i, "name": n, "supercategory": "object"} for n, i in category_ids.items()]


def coco_json(
    clips: Sequence[ClipMasks],
    phrases: dict[tuple[str, int], PhraseInfo],
    clip_info: dict[str, dict[str, Any]],
    counts: ExportCounts,
) -> dict[str, Any]:
    """The COCO instance document of ``clips``, one image per clip frame (module docstring)."""
    category_ids = _categories(phrases)
    images, annotations = [], []
    for video_id, clip in enumerate(clips, start=1):
        names = _file_names(clip)
        image_ids = {}
        for frame in clip.frames:
            image_ids[frame] = len(images) + 1
            images.append({
                "id": image_ids[frame], "file_name": names[frame], "height": clip.height,
                "width": clip.width, "video_id": video_id, "clip_id": clip.clip_id,
                "frame_index": frame, **clip_info.get(clip.clip_id, {}),
            })  # fmt: skip
        counts.frames += len(image_ids)
        for phrase_id, rows in sorted(clip.tracks.items()):
            info = phrases[(clip.clip_id, phrase_id)]
            counts.tracks += 1
            counts.missing_masks += len(image_ids) - len(rows)
            for frame, row in sorted(rows.items()):
                area = rle.area(row.counts, clip.height, clip.width)
                if area == 0:
                    counts.empty_masks += 1
                    continue
                counts.masks += 1
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_ids[frame],
                    "category_id": category_ids[info.category],
                    "segmentation": rle_json(row.counts, clip.height, clip.width),
                    "area": area, "bbox": list(rle.bbox(row.counts, clip.height, clip.width)),
                    "iscrowd": 0, "score": row.score, "clip_id": clip.clip_id,
                    **info.fields(phrase_id),
                })  # fmt: skip
    return {
        "images": images,
        "categories": _category_list(category_ids),
        "annotations": annotations,
    }


def export_masks(
    fmt: str,
    masks_paths: Sequence[PathLike],
    phrases_path: PathLike,
    out: PathLike,
    clips_path: PathLike | None = None,
    splits: Sequence[str] | None = None,
    heads: Callable[[Sequence[str]], list[str]] | None = None,
    meta: dict[str, Any] | None = None,
) -> ExportCounts:
    """Export the masks of ``masks_paths`` (dense_masks or predictions tables) as ``fmt``.

    ``out`` is a JSON file (``ytvis``, ``coco``) or a folder (``davis``). ``clips_path`` (the
    clips table) is needed to keep only ``splits``; it adds each clip's ``split`` and
    ``narration`` (cleaned: the text that the phrases' char spans index) to its video or images.
    ``heads`` maps phrase texts to categories (default :class:`~nvos.exports.source.HeadNouns`
    without spaCy); ``meta`` goes into the JSON's ``info`` (or ``labels.json``). Written
    atomically; returns the counts of what was written and left out.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {list(FORMATS)})")
    if splits is not None and clips_path is None:
        raise ExportError("choosing splits needs the clips table")
    counts = ExportCounts(format=fmt, out=str(out))
    clip_info: dict[str, dict[str, Any]] = {}
    if clips_path is not None:
        for row in storage.read_table(clips_path, "clips").to_pylist():
            text = clean_narration(row["narration"])  # the text the phrases' spans index
            clip_info[row["clip_id"]] = {"split": row["split"], "narration": text}
    chosen = None
    if splits is not None:
        chosen = {c for c, info in clip_info.items() if info["split"] in set(splits)}
    clips = read_masks(masks_paths)
    unknown = sorted(set(clips) - set(clip_info)) if clips_path is not None else []
    if unknown:
        raise ExportError(f"{clips_path}: the masks name clips it does not have: {unknown[:5]}")
    if chosen is not None:
        counts.skipped_clips_other_splits = sum(c not in chosen for c in clips)
        clips = {c: m for c, m in clips.items() if c in chosen}
    phrases = read_phrases(phrases_path, set(clips), heads or HeadNouns())
    check_phrases(clips, phrases, phrases_path)
    phrases = {k: v for k, v in phrases.items() if k[0] in clips and k[1] in clips[k[0]].tracks}
    counts.clips = len(clips)
    counts.categories = len({p.category for p in phrases.values()})
    info = {"description": f"nvos export ({fmt})", "provenance": dict(meta or {})}
    if fmt == "davis":
        export_davis_pngs(list(clips.values()), phrases, Path(out), counts, info)
    else:
        make = ytvis_json if fmt == "ytvis" else coco_json
        document = {"info": info, "licenses": [], **make(list(clips.values()), phrases,
                                                         clip_info, counts)}  # fmt: skip
        storage.write_text(out, json.dumps(document, separators=(",", ":")))
    logger.info("export %s -> %s: %s", fmt, out, asdict(counts))
    for key in ("empty_masks", "missing_masks", "skipped_clips_other_splits"):
        if getattr(counts, key):
            logger.info("export: %s = %d", key, getattr(counts, key))
    overlaps = counts.overlaps
    if overlaps.pixels:
        logger.warning(
            "export: %d pixels claimed by two or more phrases (the higher score keeps them; %d "
            "masks lost pixels, %d all of them), e.g. %s", overlaps.pixels,
            overlaps.object_frames, overlaps.lost_object_frames, overlaps.examples,
        )  # fmt: skip
    return counts
