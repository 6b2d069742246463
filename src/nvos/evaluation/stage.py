"""The ``evaluate`` stage: one method's predictions on one split -> per-object CSV + summary JSON.

Outputs in ``out_dir`` (``metrics/<method>/<split>/``):

- ``per_object.csv``: one row per (clip, tagged object) of the split with columns
  :data:`CSV_COLUMNS`: its first phrase (id and text), the number of annotated frames, the means
  over those frames of J, F, J_union and J_ins, the frames without a prediction (scored as an
  empty mask), the phrase's head noun and the breakdown flags ``seen`` and ``exhaustive``
  (``true`` / ``false``, empty when the data has no such information);
- ``summary.json``: the split's means over objects (J, F, J&F = (J + F) / 2, J_union, J_ins),
  the object / frame / missing-frame counts, the same for every breakdown group, the accounting
  of prediction rows that were not scored (by reason), the pixels two objects' predictions claim
  on one frame (``overlaps``: :mod:`nvos.evaluation.overlaps`), and the scoring speed.

Semantics: DESIGN §8 (see :mod:`nvos.evaluation.score`); the mean over a split is over objects
(each object weighs the same, whatever its number of frames), as DAVIS does.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage
from nvos.evaluation.overlaps import OverlapCounts, clip_overlaps
from nvos.evaluation.predictions import ClipPredictions, PredictionCounts, read_predictions
from nvos.evaluation.protocols import (
    DEFAULT_PROTOCOL,
    Protocol,
    ProtocolCounts,
    get_protocol,
    last_part,
    restrict_tasks,
)
from nvos.evaluation.score import ClipTask, ObjectScores, score_clip
from nvos.evaluation.seen import (
    DEFAULT_SPACY_MODEL,
    SeenVocabulary,
    load_tagger,
    read_seen_vocabulary,
    seen_vocabulary,
)
from nvos.evaluation.truth import (
    ClipTruth,
    TaggedObject,
    exhaustive_flags,
    group_truth,
    read_annotations,
    tagged_objects,
)
from nvos.logs import Progress
from nvos.metrics import DEFAULT_BOUND_TH
from nvos.types import PathLike

logger = logging.getLogger(__name__)


CSV_COLUMNS = (
    "clip_id",
    "object_id",
    "phrase_id",
    "phrase",
    "frames",
    "J",
    "F",
    "J_union",
    "J_ins",
    "missing_frames",
    "head_noun",
    "seen",
    "exhaustive",
)
PER_OBJECT_CSV = "per_object.csv"
SUMMARY_JSON = "summary.json"


def aggregate(scores: Sequence[ObjectScores]) -> dict[str, Any]:
    """Split-level numbers: means over objects of the per-object means, and counts.

    Keys: J, F, J&F (= (J + F) / 2), J_union, J_ins (None when there is no object), objects,
    frames ((object, frame) pairs scored) and missing_frames.
    """
    n = len(scores)

    def mean(values: Iterable[float]) -> float | None:
        return math.fsum(values) / n if n else None

    j = mean(s.j for s in scores)
    f = mean(s.f for s in scores)
    return {
        "J": j,
        "F": f,
        "J&F": None if j is None or f is None else (j + f) / 2,
        "J_union": mean(s.j_union for s in scores),
        "J_ins": mean(s.j_ins for s in scores),
        "objects": n,
        "frames": sum(s.frames for s in scores),
        "missing_frames": sum(s.missing_frames for s in scores),
    }


def breakdown(
    scores: Sequence[ObjectScores], flags: Sequence[bool | None], names: tuple[str, str]
) -> dict[str, dict[str, Any]]:
    """:func:`aggregate` of the objects whose flag is True (``names[0]``) and False (``names[1]``).

    Objects with no flag (None) are counted under ``"unknown"`` (only when there are some).
    """
    groups: dict[str, list[ObjectScores]] = {names[0]: [], names[1]: []}
    for score, flag in zip(scores, flags, strict=True):
        key = "unknown" if flag is None else names[0] if flag else names[1]
        groups.setdefault(key, []).append(score)
    return {name: aggregate(group) for name, group in groups.items()}


def build_tasks(
    clips: pa.Table,
    split: str,
    truths: Mapping[str, ClipTruth],
    predictions: Mapping[str, ClipPredictions],
    counts: PredictionCounts,
) -> tuple[list[ClipTask], dict[str, int]]:
    """The clips of ``split`` to score, with their predictions matched to tagged objects.

    Every prediction row ends up either in a task or counted in ``counts`` by reason (see
    :data:`nvos.evaluation.predictions.UNSCORED_REASONS`). Returns the tasks and the clip counts
    ``{"clips", "scored", "untagged", "without_annotations"}`` of the split.
    """
    clip_ids = clips.column("clip_id").to_pylist()
    splits = dict(zip(clip_ids, clips.column("split").to_pylist(), strict=True))
    narrations = dict(zip(clip_ids, clips.column("narration").to_pylist(), strict=True))
    clip_counts = {"clips": 0, "scored": 0, "untagged": 0, "without_annotations": 0}
    tasks: list[ClipTask] = []
    for clip_id, clip_predictions in predictions.items():
        counts.rows += len(clip_predictions)
        if clip_id not in splits:
            counts.skip("unknown_clip", len(clip_predictions), f"clip {clip_id!r}")
        elif splits[clip_id] != split:
            counts.skip("other_split", len(clip_predictions), f"clip {clip_id!r}")
    for clip_id in clip_ids:
        if splits[clip_id] != split:
            continue
        clip_counts["clips"] += 1
        objects = tagged_objects(narrations[clip_id], clip_id)
        clip_predictions = predictions.get(clip_id, {})
        truth = truths.get(clip_id)
        if not objects:
            clip_counts["untagged"] += 1
        elif truth is None:
            clip_counts["without_annotations"] += 1
        matched = _match(clip_id, objects, truth, clip_predictions, counts)
        if objects and truth is not None:
            clip_counts["scored"] += 1
            tasks.append(ClipTask(truth, objects, matched))
    return tasks, clip_counts


def _match(
    clip_id: str,
    objects: Sequence[TaggedObject],
    truth: ClipTruth | None,
    clip_predictions: ClipPredictions,
    counts: PredictionCounts,
) -> dict[tuple[str, int], Any]:
    """(object_id, frame_index) -> predicted mask for one clip; count the rows not used."""
    by_phrase = {pid: obj for obj in objects for pid in obj.phrase_ids}
    frames = set(truth.frames) if truth is not None else set()
    matched = {}
    for (phrase_id, frame_index), mask in sorted(clip_predictions.items()):
        example = f"clip {clip_id!r} phrase {phrase_id} frame {frame_index}"
        obj = by_phrase.get(phrase_id)
        if obj is None:
            counts.skip("unknown_phrase", 1, example)
        elif mask.object_id is not None and mask.object_id != obj.object_id:
            counts.skip(
                "object_mismatch", 1, f"{example}: object {mask.object_id!r}, tag {obj.object_id!r}"
            )
        elif phrase_id != obj.phrase_id:
            counts.skip("not_first_phrase", 1, example)
        elif frame_index not in frames:
            counts.keyframe_only += 1  # a keyframe method's other keyframes: expected
        else:
            counts.scored += 1
            matched[(obj.object_id, frame_index)] = mask
    return matched


def score_tasks(
    tasks: Sequence[ClipTask], bound_th: float = DEFAULT_BOUND_TH, workers: int = 1
) -> list[ObjectScores]:
    """Score every clip (in ``workers`` processes when > 1); results in task order."""
    progress = Progress(logger, len(tasks), "clips")
    scorer = partial(score_clip, bound_th=bound_th)
    scores: list[ObjectScores] = []
    if workers <= 1 or len(tasks) < 2:
        for task in tasks:
            scores.extend(scorer(task))
            progress.update()
        return scores
    chunksize = max(1, len(tasks) // (workers * 8))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for clip_scores in pool.map(scorer, tasks, chunksize=chunksize):
            scores.extend(clip_scores)
            progress.update()
    return scores


def _optional_column(path: PathLike, column: str) -> pa.Table | None:
    """``clip_id`` and ``column`` of a Parquet file, or None when it has no such column."""
    names = pq.read_schema(path).names
    if column not in names:
        return None
    return pq.read_table(path, columns=["clip_id", column])


def _exhaustive(
    scores: Sequence[ObjectScores], annotations: pa.Table, clips_path: PathLike
) -> tuple[list[bool | None] | None, str | None]:
    """Per-object exhaustive flags (annotations column, else per-clip clips column) or a reason."""
    per_object = exhaustive_flags(annotations)
    if per_object is not None:
        return [per_object.get((s.clip_id, s.object_id)) for s in scores], None
    per_clip_table = _optional_column(clips_path, "exhaustive")
    if per_clip_table is not None:
        per_clip = dict(
            zip(
                per_clip_table.column("clip_id").to_pylist(),
                per_clip_table.column("exhaustive").to_pylist(),
                strict=True,
            )
        )
        return [_flag(per_clip.get(s.clip_id)) for s in scores], None
    return None, "the data has no `exhaustive` column (annotations.parquet or clips.parquet)"


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _seen(
    scores: Sequence[ObjectScores],
    clips: pa.Table,
    train_split: str | None,
    spacy_model: str,
    seen_path: PathLike | None = None,
) -> tuple[list[str | None] | None, list[bool | None] | None, str | None]:
    """Head nouns and seen flags of the scored objects' phrases, or a reason for skipping; from
    ``seen_path`` (``seen.json``) when given, else by tagging here."""
    if train_split is None:
        return None, None, "no training split configured (evaluate.train_split is null)"
    vocabulary: SeenVocabulary
    if seen_path is not None:
        vocabulary = read_seen_vocabulary(seen_path)
    else:
        mask = [s == train_split for s in clips.column("split").to_pylist()]
        train = clips.filter(pa.array(mask)).column("narration").to_pylist()
        vocabulary = seen_vocabulary(load_tagger(spacy_model), train, [s.phrase for s in scores])
    if not vocabulary.train_narrations:
        return None, None, f"clips.parquet has no clip of the training split {train_split!r}"
    nouns = vocabulary.nouns(spacy_model, [s.phrase for s in scores])
    seen = [None if noun is None else noun in vocabulary.vocabulary for noun in nouns]
    logger.info(
        "seen/unseen: %d training narrations, %d lemmas; %d of %d objects seen",
        vocabulary.train_narrations,
        len(vocabulary.vocabulary),
        sum(1 for s in seen if s),
        len(seen),
    )
    return nouns, seen, None


def per_object_csv(
    scores: Sequence[ObjectScores],
    nouns: Sequence[str | None] | None,
    seen: Sequence[bool | None] | None,
    exhaustive: Sequence[bool | None] | None,
) -> str:
    """The ``per_object.csv`` text (header :data:`CSV_COLUMNS`; floats at full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, s in enumerate(scores):
        writer.writerow(
            [
                s.clip_id,
                s.object_id,
                s.phrase_id,
                s.phrase,
                s.frames,
                repr(s.j),
                repr(s.f),
                repr(s.j_union),
                repr(s.j_ins),
                s.missing_frames,
                "" if nouns is None or nouns[i] is None else nouns[i],
                _csv_flag(None if seen is None else seen[i]),
                _csv_flag(None if exhaustive is None else exhaustive[i]),
            ]
        )
    return buffer.getvalue()


def _csv_flag(flag: bool | None) -> str:
    return "" if flag is None else "true" if flag else "false"


def evaluate_method(
    method: str,
    prediction_paths: Sequence[PathLike],
    clips_path: PathLike,
    annotations_path: PathLike,
    split: str,
    out_dir: PathLike,
    bound_th: float = DEFAULT_BOUND_TH,
    workers: int = 1,
    train_split: str | None = "train",
    seen_unseen: bool = True,
    spacy_model: str = DEFAULT_SPACY_MODEL,
    meta: Mapping[str, Any] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    seen_path: PathLike | None = None,
) -> dict[str, Any]:
    """Score ``method``'s predictions on the clips of ``split``; write CSV and summary JSON.

    Args:
        method: The method's name (recorded in the summary).
        prediction_paths: Every shard's ``predictions/<method>/<shard>.parquet``.
        clips_path, annotations_path: ``clips.parquet`` and ``annotations.parquet``.
        split: The split to score (e.g. ``val``).
        out_dir: Folder receiving ``per_object.csv`` and ``summary.json`` (written atomically).
        bound_th: F's boundary tolerance (DAVIS default 0.008 of the diagonal).
        workers: Processes scoring clips in parallel (1 = in this process).
        train_split: The split whose narrations define "seen" head nouns (None: no breakdown).
        seen_unseen: Compute the seen / unseen breakdown (needs spaCy and ``spacy_model``).
        spacy_model: spaCy pipeline used for head nouns and lemmas.
        meta: Extra JSON-serialisable provenance stored in the summary (e.g. the config group).
        protocol: ``all_frames``, ``davis`` or ``vost`` (:mod:`nvos.evaluation.protocols`): the
            frames and objects scored; ``vost`` adds ``J_last`` to the summary's ``protocol``.
        seen_path: The run's ``seen.json`` (:func:`nvos.evaluation.seen.write_seen_vocabulary`);
            None: tag the training narrations and phrases here.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        DuplicatePredictionError: several predictions for one (clip_id, phrase_id, frame_index).
        ResolutionError: a prediction whose frame is not a resize of the ground truth's.
        ValueError: malformed tags or annotations (naming the clip).
    """
    start = time.perf_counter()
    rules = get_protocol(protocol)
    clips, annotations, truths = _read_split(clips_path, annotations_path, split)
    predictions = read_predictions(prediction_paths)
    counts = PredictionCounts()
    tasks, clip_counts = build_tasks(clips, split, truths, predictions, counts)
    tasks, left_out = restrict_tasks(tasks, rules, counts)
    _log_unscored(counts)
    logger.info(
        "%s / %s: %d clips (%d untagged, %d without annotations), %d to score",
        method,
        split,
        clip_counts["clips"],
        clip_counts["untagged"],
        clip_counts["without_annotations"],
        len(tasks),
    )
    score_start = time.perf_counter()
    scores = score_tasks(tasks, bound_th, workers)
    protocol_summary = _protocol_summary(tasks, rules, left_out, bound_th, workers)
    overlaps = OverlapCounts()
    for task in tasks:
        overlaps.add(clip_overlaps(task))
    score_seconds = time.perf_counter() - score_start
    seen_reason = "disabled (evaluate.seen_unseen is false)"
    nouns, seen = None, None
    if seen_unseen:
        nouns, seen, seen_reason = _seen(scores, clips, train_split, spacy_model, seen_path)
    exhaustive, exhaustive_reason = _exhaustive(scores, annotations, clips_path)
    breakdowns, skipped = _breakdowns(scores, seen, seen_reason, exhaustive, exhaustive_reason)

    totals = aggregate(scores)
    pairs = totals["frames"]
    summary: dict[str, Any] = {
        "method": method,
        "split": split,
        **totals,
        "clips": clip_counts,
        "protocol": protocol_summary,
        "overlaps": overlaps.as_dict(),
        "predictions": counts.as_dict(),
        "breakdowns": breakdowns,
        "breakdowns_skipped": skipped,
        "bound_th": bound_th,
        "timing": {
            "seconds": time.perf_counter() - start,
            "scoring_seconds": score_seconds,
            "seconds_per_1000_pairs": 1000 * score_seconds / pairs if pairs else None,
            "workers": workers,
        },
        "provenance": storage.provenance(
            "evaluate",
            meta,
            predictions=[str(p) for p in prediction_paths],
            clips=str(clips_path),
            annotations=str(annotations_path),
        ),
    }
    out = Path(out_dir)
    storage.write_text(out / PER_OBJECT_CSV, per_object_csv(scores, nouns, seen, exhaustive))
    storage.write_text(out / SUMMARY_JSON, json.dumps(summary, indent=2, sort_keys=False) + "\n")
    _log_summary(summary, out)
    return summary


def _read_split(
    clips_path: PathLike, annotations_path: PathLike, split: str
) -> tuple[pa.Table, pa.Table, dict[str, ClipTruth]]:
    """Every clip (``clips.parquet``), and the annotations and ground truth of ``split``'s."""
    clips = storage.read_table(clips_path, "clips")
    all_ids = clips.column("clip_id").to_pylist()
    all_splits = clips.column("split").to_pylist()
    split_ids = [c for c, s in zip(all_ids, all_splits, strict=True) if s == split]
    if not split_ids:
        logger.warning("%s: no clip of split %r; writing an empty evaluation", clips_path, split)
    annotations = read_annotations(annotations_path, split_ids)
    return clips, annotations, group_truth(annotations, annotations_path)


def _protocol_summary(
    tasks: Sequence[ClipTask],
    rules: Protocol,
    left_out: ProtocolCounts,
    bound_th: float,
    workers: int,
) -> dict[str, Any]:
    """The summary's ``protocol`` entry: what the protocol left out and, for protocols that
    score the last part of each clip too (VOST), its J as ``J_last``."""
    summary: dict[str, Any] = left_out.as_dict()
    if rules.last_fraction is not None:
        last = score_tasks([last_part(task, rules) for task in tasks], bound_th, workers)
        summary["J_last"] = aggregate(last)["J"]
    return summary


def _breakdowns(
    scores: Sequence[ObjectScores],
    seen: Sequence[bool | None] | None,
    seen_reason: str | None,
    exhaustive: Sequence[bool | None] | None,
    exhaustive_reason: str | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The seen/unseen and exhaustive breakdowns of the flags there are, and why the others
    were skipped (each logged)."""
    breakdowns: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if seen is not None:
        breakdowns["seen"] = breakdown(scores, seen, ("seen", "unseen"))
    else:
        skipped["seen"] = seen_reason or ""
        logger.info("seen/unseen breakdown skipped: %s", seen_reason)
    if exhaustive is not None:
        breakdowns["exhaustive"] = breakdown(scores, exhaustive, ("exhaustive", "non_exhaustive"))
    else:
        skipped["exhaustive"] = exhaustive_reason or ""
        logger.info("exhaustive breakdown skipped: %s", exhaustive_reason)
    return breakdowns, skipped


def _log_summary(summary: Mapping[str, Any], out: Path) -> None:
    logger.info(
        "%s / %s: J %s, F %s, J&F %s over %d objects (%d frames, %d missing); %.3f s per 1000 "
        "(object, frame) pairs -> %s",
        summary["method"],
        summary["split"],
        _fmt(summary["J"]),
        _fmt(summary["F"]),
        _fmt(summary["J&F"]),
        summary["objects"],
        summary["frames"],
        summary["missing_frames"],
        summary["timing"]["seconds_per_1000_pairs"] or 0.0,
        out,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _log_unscored(counts: PredictionCounts) -> None:
    """One log line per reason with unscored prediction rows, with examples (and the rows on
    unannotated keyframes, which are expected)."""
    if counts.keyframe_only:
        logger.info(
            "%d prediction rows on unannotated keyframes (not scored)", counts.keyframe_only
        )
    for reason, n in counts.unscored.items():
        if n:
            examples = "; ".join(counts.examples.get(reason, []))
            logger.info("%d prediction rows not scored (%s), e.g. %s", n, reason, examples)
