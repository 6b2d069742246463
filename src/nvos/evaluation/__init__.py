"""Benchmark scoring (DESIGN §8): the ``evaluate`` stage and what it shares with the oracle.

- :mod:`~nvos.evaluation.masks`: bring a predicted mask to the ground truth's size
  (nearest-neighbour), the single rule shared by the oracle and the evaluation;
- :mod:`~nvos.evaluation.truth`: tagged objects of a narration and their ground truth;
- :mod:`~nvos.evaluation.predictions`: a method's predictions and the accounting of unscored rows;
- :mod:`~nvos.evaluation.score`: J, F, J_union, J_ins of one clip;
- :mod:`~nvos.evaluation.seen`: seen / unseen head nouns;
- :mod:`~nvos.evaluation.stage`: :func:`evaluate_method`, the stage's entry point.
"""

from nvos.evaluation.masks import (
    ResolutionError,
    check_same_frame,
    decode_to_gt_size,
    to_gt_size,
)
from nvos.evaluation.predictions import DuplicatePredictionError, read_predictions
from nvos.evaluation.score import ClipTask, ObjectScores, score_clip
from nvos.evaluation.stage import aggregate, evaluate_method
from nvos.evaluation.truth import ClipTruth, TaggedObject, group_truth, tagged_objects

__all__ = [
    "ClipTask",
    "ClipTruth",
    "DuplicatePredictionError",
    "ObjectScores",
    "ResolutionError",
    "TaggedObject",
    "aggregate",
    "check_same_frame",
    "decode_to_gt_size",
    "evaluate_method",
    "group_truth",
    "read_predictions",
    "score_clip",
    "tagged_objects",
    "to_gt_size",
]
