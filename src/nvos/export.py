"""Export predictions (and optionally ground truth) as indexed PNGs for the official evaluators.

The DAVIS 2017 and VOST evaluation code (REFERENCE §1.3, §2) read one **palette PNG per annotated
frame** whose pixel values are object labels 1..K (0 = background):

- results: ``<out>/<seq>/<frame>.png`` (both layouts; pass ``--results_path <out>``);
- ground truth (``with_gt``): ``<out>/Annotations/480p/<seq>/<frame>.png`` (DAVIS) or
  ``<out>/Annotations/<seq>/<frame>.png`` (VOST), with the sequence lists
  ``<out>/ImageSets/2017/<set>.txt`` (DAVIS) or ``<out>/ImageSets/<set>.txt`` (VOST), and, when
  frames are given, ``JPEGImages/[480p/]<seq>/<frame>.jpg`` (the DAVIS loader requires them).
  ``<set>`` is a name the official script's ``--set`` accepts (:func:`official_set`: the split's
  own name, or ``test-dev`` for a DAVIS ``test`` split); another split name is an error.

The official scripts re-read ``global_results-<set>.csv`` / ``per-sequence_results-<set>.csv``
when both exist in the results folder instead of computing anything, so the export deletes those
files from ``<out>`` (listed in the summary) before writing.

A sequence is a clip (its ``clip_id``); its frames are the clip's annotated frames, named by their
``frame_index`` zero-padded to 5 digits (more when a clip's indices need it), at the ground-truth
resolution (predictions are resized with nearest-neighbour). Labels: the clip's objects in order of
first appearance in the narration's tags, then objects only in the annotations (sorted); the map
label -> object_id is written to ``<out>/object_ids.json``. Where predicted masks overlap the pixel
goes to the higher score (ties: the lower label); the object-frames that lose pixels this way, and
those that lose their whole mask, are counted and logged (the official scores see only the PNG).
As in evaluation, an object tagged by several phrases is represented by its first phrase's
predictions (the others are counted). Annotated frames without a prediction are written empty
(the official code needs a file for every frame) and counted.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from nvos import storage
from nvos.errors import NvosError
from nvos.evaluation.masks import decode_to_gt_size
from nvos.evaluation.official import OFFICIAL_SETS
from nvos.evaluation.overlaps import ObjectMask, OverlapCounts, compose_labels, count_overlaps
from nvos.evaluation.protocols import label_order
from nvos.evaluation.truth import (
    ClipTruth,
    TaggedObject,
    group_truth,
    read_annotations,
    tagged_objects,
)
from nvos.frames import ROLE_ANNOTATED, decode_jpeg
from nvos.logs import Progress
from nvos.types import PathLike

logger = logging.getLogger(__name__)


LAYOUTS = ("davis", "vost")
FRAME_DIGITS = 5
MAX_LABEL = 254  # 255 is the void / ignore label in both benchmarks
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RESERVED_NAMES = frozenset({"Annotations", "ImageSets", "JPEGImages", "object_ids.json"})


class ExportError(NvosError, ValueError):
    """Input that cannot be exported; the message names the file or clip and the reason."""


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC bit-interleaved colour map (DAVIS ``utils.color_map``): (n, 3) uint8 RGB.

    Label 0 is black, label 1 (128, 0, 0), label 2 (0, 128, 0), label 3 (128, 128, 0), ...
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for label in range(n):
        r = g = b = 0
        c = label
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[label] = (r, g, b)
    return cmap


def palette_png(labels: np.ndarray) -> bytes:
    """PNG bytes of a label map (H, W) uint8 as a palette ('P') image with the VOC colour map."""
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"expected a (H, W) uint8 label map, got {labels.shape} {labels.dtype}")
    image = Image.fromarray(labels)  # mode 'L'; putpalette makes it 'P' without touching values
    image.putpalette(voc_colormap(256).ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def object_order(narration: str, annotated_ids: Iterable[str], clip_id: str = "?") -> list[str]:
    """The clip's object ids in label order (label = position + 1).

    First the ids tagged in ``narration`` in order of their first phrase
    (:func:`nvos.evaluation.truth.tagged_objects`), then ids that occur only in the annotations,
    sorted.
    """
    return label_order([obj.object_id for obj in _tagged(narration, clip_id)], annotated_ids)


def official_set(layout: str, split: str) -> str:
    """The ``--set`` name of ``split`` for the official script of ``layout``.

    The split's own name when the script accepts it (DAVIS: train, val, test-dev, test-challenge;
    VOST: train, val, test); a DAVIS ``test`` split is ``test-dev``. Raises :class:`ExportError`
    for any other name.
    """
    accepted = OFFICIAL_SETS[layout]
    if split in accepted:
        return split
    if layout == "davis" and split == "test":
        return "test-dev"
    raise ExportError(
        f"split {split!r}: the official {layout} script accepts only the sets {list(accepted)}; "
        "export the other splits with --split"
    )


def _tagged(narration: str, clip_id: str) -> tuple[TaggedObject, ...]:
    try:
        return tagged_objects(narration, clip_id)
    except ValueError as error:
        raise ExportError(str(error)) from error


def frame_names(frame_indices: Sequence[int]) -> dict[int, str]:
    """File stems of a sequence's frames: the index zero-padded to 5 digits (more if needed).

    One width per sequence, so the names sort in frame order as the official loaders expect.
    """
    digits = max([FRAME_DIGITS] + [len(str(int(i))) for i in frame_indices])
    return {int(i): f"{int(i):0{digits}d}" for i in frame_indices}


@dataclass
class ExportSummary:
    """What :func:`export_davis` wrote, and everything it skipped (counted, never silent)."""

    out_dir: str
    layout: str
    sequences: int = 0
    frames: int = 0
    objects: int = 0
    gt_frames: int = 0
    jpeg_frames: int = 0
    empty_prediction_frames: int = 0
    overlaps: OverlapCounts = field(default_factory=OverlapCounts)
    removed_result_csvs: list[str] = field(default_factory=list)
    gt_overlap_pixels: int = 0
    skipped_untagged_predictions: int = 0
    skipped_unknown_object_predictions: int = 0
    skipped_secondary_phrase_predictions: int = 0
    skipped_unannotated_frame_predictions: int = 0
    skipped_unannotated_clips: list[str] = field(default_factory=list)
    missing_jpeg_frames: int = 0
    objects_beyond_first_frame_k: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prediction:
    phrase_id: int
    object_id: str | None
    frame_index: int
    score: float
    height: int
    width: int
    counts: bytes


def check_sequence_name(clip_id: str) -> None:
    """Raise :class:`ExportError` unless ``clip_id`` is usable as a sequence folder's name."""
    if not _SAFE_NAME.fullmatch(clip_id) or clip_id in _RESERVED_NAMES:
        raise ExportError(
            f"clip {clip_id!r}: not usable as a sequence folder name "
            "(letters, digits, '.', '_', '-'; not a reserved folder name)"
        )


def _read_predictions(paths: Sequence[PathLike]) -> dict[str, list[_Prediction]]:
    columns = [
        "clip_id", "phrase_id", "object_id", "frame_index", "score", "height", "width", "rle_counts"
    ]  # fmt: skip
    by_clip: dict[str, list[_Prediction]] = defaultdict(list)
    for path in paths:
        rows = storage.read_table(path, "predictions", columns=columns).to_pydict()
        for i, clip_id in enumerate(rows["clip_id"]):
            by_clip[clip_id].append(
                _Prediction(
                    phrase_id=int(rows["phrase_id"][i]),
                    object_id=rows["object_id"][i],
                    frame_index=int(rows["frame_index"][i]),
                    score=float(rows["score"][i]),
                    height=int(rows["height"][i]),
                    width=int(rows["width"][i]),
                    counts=rows["rle_counts"][i],
                )
            )
    return by_clip


def _read_annotated_jpegs(
    frames_paths: Sequence[PathLike], clip_ids: set[str]
) -> dict[tuple[str, int], bytes]:
    jpegs: dict[tuple[str, int], bytes] = {}
    if not clip_ids:
        return jpegs
    for path in frames_paths:
        table = pq.read_table(
            path,
            columns=["clip_id", "frame_index", "jpeg"],
            filters=[("role", "=", ROLE_ANNOTATED), ("clip_id", "in", sorted(clip_ids))],
        )
        for clip_id, frame, jpeg in zip(
            table.column("clip_id").to_pylist(),
            table.column("frame_index").to_pylist(),
            table.column("jpeg").to_pylist(),
            strict=True,
        ):
            jpegs[(clip_id, int(frame))] = jpeg
    return jpegs


def _jpeg_at(jpeg: bytes, height: int, width: int) -> bytes:
    """The stored JPEG, resized (bilinear) and re-encoded only when not at (height, width)."""
    image = decode_jpeg(jpeg)
    if image.shape[:2] == (height, width):
        return jpeg
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ExportError(f"cannot JPEG-encode a frame of size {height}x{width}")
    return buffer.tobytes()


def _remove_result_csvs(out: Path, summary: ExportSummary) -> None:
    """Delete the official scripts' cached result CSVs from the results folder ``out``."""
    for pattern in ("global_results-*.csv", "per-sequence_results-*.csv"):
        for path in sorted(out.glob(pattern)):
            path.unlink()
            summary.removed_result_csvs.append(path.name)


def _write_bytes(path: Path, data: bytes) -> None:
    with storage.atomic_path(path) as tmp:
        tmp.write_bytes(data)


class _ClipExporter:
    """Label maps of one clip: objects -> labels, its predictions grouped by annotated frame."""

    def __init__(
        self,
        truth: ClipTruth,
        narration: str,
        predictions: Sequence[_Prediction],
        summary: ExportSummary,
    ) -> None:
        self.truth = truth
        tagged = _tagged(narration, truth.clip_id)
        order = object_order(narration, {oid for _, oid in truth.masks}, truth.clip_id)
        if len(order) > MAX_LABEL:
            raise ExportError(
                f"clip {truth.clip_id!r}: {len(order)} objects, at most {MAX_LABEL} fit"
            )
        self.order = order
        self.label_of = {object_id: i + 1 for i, object_id in enumerate(order)}
        scored_phrase = {obj.object_id: obj.phrase_id for obj in tagged}
        frames = set(truth.frames)
        self.per_frame: dict[int, list[_Prediction]] = defaultdict(list)
        for p in predictions:
            if p.object_id is None:
                summary.skipped_untagged_predictions += 1
            elif p.object_id not in scored_phrase:
                summary.skipped_unknown_object_predictions += 1
            elif p.phrase_id != scored_phrase[p.object_id]:
                summary.skipped_secondary_phrase_predictions += 1
            elif p.frame_index not in frames:
                summary.skipped_unannotated_frame_predictions += 1
            else:
                self.per_frame[p.frame_index].append(p)

    def predicted(self, frame: int) -> list[ObjectMask]:
        """The frame's predicted object masks at the ground-truth size (one per object)."""
        truth = self.truth
        best: dict[int, ObjectMask] = {}
        for p in self.per_frame.get(frame, []):
            label = self.label_of[p.object_id]  # type: ignore[index]
            if label in best and best[label].score >= p.score:
                continue  # a duplicate row for the object: the higher score is kept
            where = f"clip {truth.clip_id!r} frame {frame} object {p.object_id!r}"
            mask = decode_to_gt_size(p.counts, p.height, p.width, truth.height, truth.width, where)
            best[label] = ObjectMask(label, p.score, mask)
        return [best[label] for label in sorted(best)]

    def ground_truth(self, frame: int) -> tuple[np.ndarray, int]:
        """GT label map (H, W) uint8 (instances merged; the higher label wins an overlap) and
        the number of pixels claimed by several objects."""
        truth = self.truth
        labels = np.zeros((truth.height, truth.width), dtype=np.uint8)
        covered = np.zeros((truth.height, truth.width), dtype=np.int32)
        for object_id in self.order:
            union = truth.object_frame(object_id, frame).union
            labels[union] = self.label_of[object_id]
            covered += union
        return labels, int((covered > 1).sum())


def export_davis(
    predictions_paths: Sequence[PathLike],
    clips_path: PathLike,
    annotations_path: PathLike,
    out_dir: PathLike,
    layout: str = "davis",
    with_gt: bool = False,
    frames_paths: Sequence[PathLike] = (),
    splits: Sequence[str] | None = None,
) -> ExportSummary:
    """Write predictions (and optionally GT) as indexed PNGs in the DAVIS or VOST layout.

    ``predictions_paths``: the ``predictions/<method>/<shard>.parquet`` files of one method.
    Every annotated clip (of ``splits``, default all) becomes a sequence; see the module docstring
    for the layout, labels and rules. Returns an :class:`ExportSummary`; skipped predictions
    (untagged phrases, objects the clip does not tag, an object's later phrases, frames without
    annotations) are counted and logged.
    """
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    out = Path(out_dir)
    summary = ExportSummary(out_dir=str(out), layout=layout)
    clip_rows = storage.read_table(
        clips_path, "clips", columns=["clip_id", "split", "narration"]
    ).to_pylist()
    try:
        truths = group_truth(read_annotations(annotations_path), annotations_path)
    except ValueError as error:
        raise ExportError(str(error)) from error
    predictions = _read_predictions(predictions_paths)
    unknown_clips = sorted(set(predictions) - {row["clip_id"] for row in clip_rows})
    if unknown_clips:
        raise ExportError(
            f"{clips_path}: predictions name clips that are not in the clips table: "
            f"{unknown_clips[:5]}{' ...' if len(unknown_clips) > 5 else ''}"
        )
    in_splits = [row for row in clip_rows if splits is None or row["split"] in set(splits)]
    selected = [row for row in in_splits if row["clip_id"] in truths]
    summary.skipped_unannotated_clips = sorted(
        row["clip_id"]
        for row in in_splits
        if row["clip_id"] not in truths and row["clip_id"] in predictions
    )
    sets = {row["split"]: official_set(layout, row["split"]) for row in selected} if with_gt else {}
    if len(set(sets.values())) < len(sets):
        raise ExportError(f"splits {sorted(sets)} share an official set name: {sets}")
    _remove_result_csvs(out, summary)
    jpegs = _read_annotated_jpegs(frames_paths, {r["clip_id"] for r in selected}) if with_gt else {}
    sub = "480p" if layout == "davis" else ""
    gt_root, img_root = out / "Annotations" / sub, out / "JPEGImages" / sub
    sets_dir = out / "ImageSets" / ("2017" if layout == "davis" else "")
    mapping: dict[str, Any] = {}
    split_sequences: dict[str, list[str]] = defaultdict(list)
    progress = Progress(logger, len(selected), "clips")

    for row in selected:
        clip_id = row["clip_id"]
        check_sequence_name(clip_id)
        truth = truths[clip_id]
        clip = _ClipExporter(truth, row["narration"], predictions.get(clip_id, []), summary)
        names = frame_names(truth.frames)
        for position, frame in enumerate(truth.frames):
            masks = clip.predicted(frame)
            summary.empty_prediction_frames += int(not masks)
            labels = compose_labels(masks, truth.height, truth.width)
            count_overlaps(masks, labels, summary.overlaps, f"{clip_id}/{names[frame]}")
            _write_bytes(out / clip_id / f"{names[frame]}.png", palette_png(labels))
            summary.frames += 1
            if not with_gt:
                continue
            gt, overlap = clip.ground_truth(frame)
            summary.gt_overlap_pixels += overlap
            if position == 0:
                summary.objects_beyond_first_frame_k += len(clip.order) - int(gt.max())
            _write_bytes(gt_root / clip_id / f"{names[frame]}.png", palette_png(gt))
            summary.gt_frames += 1
            jpeg = jpegs.get((clip_id, frame))
            if jpeg is not None:
                _write_bytes(
                    img_root / clip_id / f"{names[frame]}.jpg",
                    _jpeg_at(jpeg, truth.height, truth.width),
                )
                summary.jpeg_frames += 1
            elif frames_paths:
                summary.missing_jpeg_frames += 1
        mapping[clip_id] = {
            "split": row["split"],
            "labels": {str(label): object_id for object_id, label in clip.label_of.items()},
            "frames": {names[f]: f for f in truth.frames},
        }
        split_sequences[row["split"]].append(clip_id)
        summary.sequences += 1
        summary.objects += len(clip.order)
        progress.update()

    if with_gt:
        for split, sequences in split_sequences.items():
            text = "".join(f"{s}\n" for s in sequences)
            storage.write_text(sets_dir / f"{sets[split]}.txt", text)
    summary.splits = {split: len(seqs) for split, seqs in sorted(split_sequences.items())}
    summary.sets = {split: sets[split] for split in sorted(split_sequences)} if with_gt else {}
    record = {"layout": layout, "sets": summary.sets, "sequences": mapping}
    storage.write_text(out / "object_ids.json", json.dumps(record, indent=1, sort_keys=True))
    _log_skips(summary)
    return summary


def _log_skips(summary: ExportSummary) -> None:
    counts = asdict(summary)
    for key in (
        "empty_prediction_frames",
        "skipped_untagged_predictions",
        "skipped_unknown_object_predictions",
        "skipped_secondary_phrase_predictions",
        "skipped_unannotated_frame_predictions",
        "missing_jpeg_frames",
    ):
        if counts[key]:
            logger.warning("export: %s = %d", key, counts[key])
    if summary.overlaps.object_frames:
        logger.warning(
            "export: %d object-frames lost pixels to an overlapping object with a higher score "
            "(%d lost their whole mask), e.g. %s; the official scores see only the PNGs",
            summary.overlaps.object_frames,
            summary.overlaps.lost_object_frames,
            "; ".join(summary.overlaps.examples),
        )
    if summary.removed_result_csvs:
        logger.warning(
            "export: removed result CSVs of an earlier evaluation from %s: %s",
            summary.out_dir,
            summary.removed_result_csvs,
        )
    if summary.skipped_unannotated_clips:
        logger.warning(
            "export: %d clips with predictions but no annotations were skipped: %s",
            len(summary.skipped_unannotated_clips),
            summary.skipped_unannotated_clips[:10],
        )
    if summary.objects_beyond_first_frame_k:
        logger.warning(
            "export: %d objects have a label above the largest label of their sequence's first "
            "annotated frame; the official DAVIS/VOST code takes K from the first frame and will "
            "ignore them (DAVIS exits if a result uses such a label)",
            summary.objects_beyond_first_frame_k,
        )
    listed = ("skipped_unannotated_clips", "overlaps", "removed_result_csvs")
    logger.info("export: %s", {k: v for k, v in counts.items() if k not in listed})
