"""Dense masks as DAVIS indexed PNG folders: ``<out>/<clip>/<frame>.png`` and ``labels.json``.

The conventions of :mod:`nvos.export` (the official evaluators' result layout): one palette PNG
per frame of the clip (every frame any mask row names), named by its frame index zero-padded to
5 digits (:func:`nvos.export.frame_names`), pixel values the labels (0 = background) with the
PASCAL VOC palette of DAVIS (:func:`nvos.export.palette_png`). Here every phrase is an object:
the clip's phrases in ``phrase_id`` order get labels 1, 2, ... (at most 254; 255 is the void
label). Where two phrases' masks overlap the pixel goes to the higher score (equal scores: the
lower label, :func:`nvos.export.compose_labels`); the pixels claimed by two or more phrases, the
masks that lose pixels and those that lose all of them are counted
(:func:`nvos.evaluation.overlaps.count_overlaps`), since a PNG holds one label per pixel.

``labels.json`` maps, per clip, each label to its phrase (``phrase_id``, ``phrase``, char span,
``object_id``, ``category``) and each file name to its frame index, with the export's ``info``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nvos import rle, storage
from nvos.evaluation.overlaps import count_overlaps
from nvos.export import (
    MAX_LABEL,
    ExportError,
    ObjectMask,
    check_sequence_name,
    compose_labels,
    frame_names,
    palette_png,
)
from nvos.exports.source import ClipMasks, ExportCounts, PhraseInfo

__all__ = ["LABELS_FILE", "export_davis_pngs"]

LABELS_FILE = "labels.json"


def export_davis_pngs(
    clips: Sequence[ClipMasks],
    phrases: dict[tuple[str, int], PhraseInfo],
    out: Path,
    counts: ExportCounts,
    info: dict[str, Any],
) -> None:
    """Write the PNG folders and ``labels.json`` of ``clips`` under ``out``; add to ``counts``."""
    mapping: dict[str, Any] = {}
    for clip in clips:
        check_sequence_name(clip.clip_id)
        phrase_ids = sorted(clip.tracks)
        if len(phrase_ids) > MAX_LABEL:
            raise ExportError(f"clip {clip.clip_id!r}: {len(phrase_ids)} phrases, at most "
                              f"{MAX_LABEL} labels fit in a PNG")  # fmt: skip
        labels = {phrase_id: i + 1 for i, phrase_id in enumerate(phrase_ids)}
        names = frame_names(clip.frames)
        for frame in clip.frames:
            masks = []
            for phrase_id in phrase_ids:
                row = clip.tracks[phrase_id].get(frame)
                if row is None:
                    counts.missing_masks += 1
                    continue
                mask = rle.decode(row.counts, clip.height, clip.width)
                if not mask.any():
                    counts.empty_masks += 1
                    continue
                counts.masks += 1
                masks.append(ObjectMask(labels[phrase_id], row.score, mask))
            label_map = compose_labels(masks, clip.height, clip.width)
            count_overlaps(masks, label_map, counts.overlaps, f"{clip.clip_id}/{names[frame]}")
            with storage.atomic_path(out / clip.clip_id / f"{names[frame]}.png") as tmp:
                tmp.write_bytes(palette_png(label_map))
        counts.frames += len(names)
        counts.tracks += len(phrase_ids)
        mapping[clip.clip_id] = {
            "labels": {str(label): _label(phrases[(clip.clip_id, p)], p)
                       for p, label in labels.items()},
            "frames": {names[f]: f for f in clip.frames},
        }  # fmt: skip
    record = {"info": info, "sequences": mapping}
    storage.write_text(out / LABELS_FILE, json.dumps(record, indent=1, sort_keys=True))


def _label(info: PhraseInfo, phrase_id: int) -> dict[str, Any]:
    """One label of ``labels.json``: the phrase's export fields and its category."""
    return {**info.fields(phrase_id), "category": info.category}
