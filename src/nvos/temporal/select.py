"""The ``temporal_select`` stage: the decoder's settings of one ``<base>+temporal`` method, chosen
on **val** (docs/temporal.md, "Selection").

The grid is ``temporal.decode.link_weight`` x ``temporal.decode.absent_quantile``. The absent
threshold is scale-free: quantile q of the method's own best score per (tagged phrase, keyframe
with proposals) over the val clips, so one grid fits methods whose scores spread differently
(q null: no ABSENT state). Every grid point decodes the val clips (:mod:`nvos.temporal.stage`) and
is scored on their annotated frames with the evaluation's own code (``evaluate.protocol``,
``evaluate.bound_th``); the point with the best val J&F wins (ties: the first in grid order,
link weights then quantiles as configured). Only val clips are read: their scores, links,
proposals, keyframes and annotations (the test split's are never opened beyond the filter).

Writes ``temporal/<method>/selection.json`` (the chosen settings, their val scores and the grid)
and ``temporal/<method>/grid.csv`` (one line per grid point). ``flips``: the share of consecutive
keyframe pairs (phrases with a proposal on both) whose chosen proposals overlap by a link IoU
below 0.5, i.e. how often the path changes object (:func:`nvos.temporal.stage.flip_rate`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from nvos import storage
from nvos.evaluation.predictions import PredictedMask, PredictionCounts
from nvos.evaluation.protocols import get_protocol, restrict_tasks
from nvos.evaluation.score import ClipTask, ObjectScores, score_clip
from nvos.evaluation.stage import aggregate, build_tasks
from nvos.evaluation.truth import group_truth, read_annotations
from nvos.frames import keyframes
from nvos.proposals.stage import StoredProposals, read_proposals
from nvos.temporal.decode import ABSENT, DecodeSettings
from nvos.temporal.links import read_links
from nvos.temporal.stage import (
    ClipProblem,
    clip_problems,
    decode_clip,
    empty_mask,
    flip_rate,
    read_scores,
)
from nvos.types import PathLike

__all__ = ["GRID_COLUMNS", "SELECT_SPLIT", "SelectInputs", "select_settings"]

logger = logging.getLogger(__name__)

SELECT_SPLIT = "val"
GRID_COLUMNS = ("link_weight", "absent_quantile", "absent_score", "J", "F", "J&F", "flips",
                "chosen")  # fmt: skip


@dataclass(frozen=True)
class SelectInputs:
    """The files the selection reads: per shard the base method's ``scores``, the ``links``,
    ``proposals`` and ``frames`` (keyframes), and the run's ``clips`` and ``annotations``."""

    scores: Sequence[PathLike]
    links: Sequence[PathLike]
    proposals: Sequence[PathLike]
    frames: Sequence[PathLike]
    clips: PathLike
    annotations: PathLike


def _val_clip_ids(clips_path: PathLike) -> list[str]:
    clips = storage.read_table(clips_path, "clips", columns=["clip_id", "split"])
    return clips.filter(pc.equal(clips["split"], SELECT_SPLIT))["clip_id"].to_pylist()


def _merged(readers: Sequence[Mapping[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for part in readers:
        out.update(part)
    return out


class _Scorer:
    """J, F, J&F of decoded val predictions, with each clip's scores cached by its predictions
    (most grid points change few clips)."""

    def __init__(self, inputs: SelectInputs, clip_ids: list[str], protocol: str, bound_th: float):
        self.clips = storage.read_table(inputs.clips, "clips")
        annotations = read_annotations(inputs.annotations, clip_ids)
        self.truths = group_truth(annotations, inputs.annotations)
        self.protocol = get_protocol(protocol)
        self.bound_th = bound_th
        self.cache: dict[Any, list[ObjectScores]] = {}

    def annotated(self, clip_id: str) -> tuple[int, ...]:
        truth = self.truths.get(clip_id)
        return truth.frames if truth is not None else ()

    def __call__(self, predictions: Mapping[str, Mapping[tuple[int, int], PredictedMask]]) -> Any:
        counts = PredictionCounts()
        tasks, _ = build_tasks(self.clips, SELECT_SPLIT, self.truths, predictions, counts)
        tasks, _ = restrict_tasks(tasks, self.protocol, counts)
        scores: list[ObjectScores] = []
        for task in tasks:
            scores.extend(self._score(task))
        return aggregate(scores)

    def _score(self, task: ClipTask) -> list[ObjectScores]:
        key = (task.truth.clip_id, frozenset(task.predictions.items()))
        if key not in self.cache:
            self.cache[key] = score_clip(task, self.bound_th)
        return self.cache[key]


def _predictions(
    problem: ClipProblem,
    chosen: np.ndarray,
    annotated: Sequence[int],
    proposals: Mapping[tuple[str, int], StoredProposals],
) -> dict[tuple[int, int], PredictedMask]:
    """The decoded masks of one clip on its annotated keyframes (ABSENT: an empty mask)."""
    out = {}
    wanted = set(annotated)
    for t, (frame_index, height, width) in enumerate(problem.frames):
        if frame_index not in wanted:
            continue
        for n, (phrase_id, object_id) in enumerate(problem.phrases):
            pid = int(chosen[n, t])
            if pid == ABSENT:
                mask = PredictedMask(object_id, height, width, empty_mask(height, width))
            else:
                stored = proposals[(problem.clip_id, frame_index)]
                mask = PredictedMask(object_id, stored.height, stored.width, stored.rle_counts[pid])
            out[(phrase_id, frame_index)] = mask
    return out


def select_settings(
    inputs: SelectInputs,
    link_weights: Sequence[float],
    absent_quantiles: Sequence[float | None],
    out_json: PathLike,
    out_csv: PathLike,
    method: str,
    protocol: str = "all_frames",
    bound_th: float = 0.008,
) -> dict[str, Any]:
    """Choose ``method``'s decoder settings on val (module docstring); returns the selection
    written to ``out_json``."""
    start = time.perf_counter()
    clip_ids = _val_clip_ids(inputs.clips)
    problems = clip_problems(
        read_scores(inputs.scores, clip_ids),
        read_links(inputs.links, clip_ids),
        _merged([keyframes(path, clip_ids) for path in inputs.frames]),
    )
    proposals = _merged([read_proposals(path, list(problems)) for path in inputs.proposals])
    scorer = _Scorer(inputs, clip_ids, protocol, bound_th)
    best = np.concatenate([p.best_scores() for p in problems.values()] or [np.zeros(0)])
    grid: list[dict[str, Any]] = []
    for weight in link_weights:
        for quantile in absent_quantiles:
            absent = None
            if quantile is not None:
                absent = float(np.quantile(best, quantile)) if len(best) else 0.0
            settings = DecodeSettings(link_weight=float(weight), absent_score=absent)
            predictions, flips, pairs = {}, 0, 0
            for clip_id, problem in problems.items():
                chosen = decode_clip(problem, settings)
                predictions[clip_id] = _predictions(
                    problem, chosen, scorer.annotated(clip_id), proposals
                )
                clip_flips, clip_pairs = flip_rate(problem, chosen)
                flips, pairs = flips + clip_flips, pairs + clip_pairs
            scores = scorer(predictions)
            grid.append(
                {
                    "link_weight": float(weight),
                    "absent_quantile": quantile,
                    "absent_score": absent,
                    "J": scores["J"],
                    "F": scores["F"],
                    "J&F": scores["J&F"],
                    "flips": flips / pairs if pairs else None,
                }
            )
            logger.info("%s val grid point %s", method, grid[-1])
    chosen = _choose(grid)
    for i, point in enumerate(grid):
        point["chosen"] = i == chosen
    selection = {
        "method": method,
        "split": SELECT_SPLIT,
        "clips": len(problems),
        "best_scores": len(best),
        **{k: grid[chosen][k] for k in ("link_weight", "absent_quantile", "absent_score")},
        "val": {k: grid[chosen][k] for k in ("J", "F", "J&F")},
        "grid": grid,
        "provenance": storage.provenance(
            "temporal_select",
            {
                "link_weight": list(link_weights),
                "absent_quantile": list(absent_quantiles),
                "protocol": protocol,
                "bound_th": bound_th,
            },
            seconds=time.perf_counter() - start,
        ),  # fmt: skip
    }
    storage.write_csv(out_csv, GRID_COLUMNS, grid)
    storage.write_text(out_json, json.dumps(selection, indent=2) + "\n")
    logger.info("%s: chose %s on val in %.1f s", method, grid[chosen], time.perf_counter() - start)
    return selection


def _choose(grid: Sequence[Mapping[str, Any]]) -> int:
    """The grid point with the best J&F (None counts as worst); ties: the first."""
    values = [p["J&F"] if p["J&F"] is not None else -np.inf for p in grid]
    return int(np.argmax(values))


def read_selection(path: PathLike) -> DecodeSettings:
    """The chosen settings of a ``selection.json``."""
    with open(path) as handle:
        record = json.load(handle)
    return DecodeSettings(record["link_weight"], record["absent_score"])
