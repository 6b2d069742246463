"""Predictions of a method, indexed per clip, and the accounting of rows that are not scored.

``predictions/<method>/<shard>.parquet`` (schema ``predictions``) holds one mask per
(clip_id, phrase_id, frame_index). Two rows for the same key (in one file or across shards) are an
error. Rows that cannot be scored are never dropped silently: :class:`PredictionCounts` counts them
by reason and keeps a few examples for the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nvos import storage
from nvos.errors import NvosError
from nvos.types import PathLike

MAX_EXAMPLES = 5
MAX_LISTED_DUPLICATES = 10

UNSCORED_REASONS = (
    "unknown_clip",
    "other_split",
    "unknown_phrase",
    "object_mismatch",
    "not_first_phrase",
    "protocol_frame",
    "protocol_object",
)
"""Why a prediction row is not scored: its clip is not in ``clips.parquet``; its clip belongs to
another split; its phrase_id is not a tagged phrase of the clip's narration; its object_id differs
from the tag of that phrase; it belongs to a later phrase of an object that an earlier phrase
already describes (an object is scored once, with its first phrase); the evaluation protocol does
not score its frame (e.g. DAVIS drops a clip's first and last annotated frames) or its object (an
object beyond the first frame's K, :mod:`nvos.evaluation.protocols`). Rows on unannotated frames
are counted apart (:attr:`PredictionCounts.keyframe_only`)."""


@dataclass(frozen=True, slots=True)
class PredictedMask:
    """One stored prediction: its object id (may be None), frame size, RLE counts and score
    (which wins a pixel two objects claim: :mod:`nvos.evaluation.overlaps`)."""

    object_id: str | None
    height: int
    width: int
    counts: bytes
    score: float = 1.0


ClipPredictions = dict[tuple[int, int], PredictedMask]
"""(phrase_id, frame_index) -> the predicted mask, for one clip."""


class DuplicatePredictionError(NvosError, ValueError):
    """Several prediction rows for the same (clip_id, phrase_id, frame_index)."""


@dataclass
class PredictionCounts:
    """Prediction rows read, scored, and not scored by reason (with up to 5 examples each).

    ``keyframe_only``: rows of evaluated clips on frames without annotation, which every method
    that predicts on all keyframes writes (the keyframes the temporal decoder and propagation
    build on): expected, counted apart from the unscored reasons. ``rows`` = ``scored`` +
    ``keyframe_only`` + the unscored rows.
    """

    rows: int = 0
    scored: int = 0
    keyframe_only: int = 0
    unscored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNSCORED_REASONS, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, n: int, example: str) -> None:
        """Count ``n`` rows not scored for ``reason``; keep ``example`` among the first few."""
        if reason not in self.unscored:
            raise KeyError(f"unknown reason {reason!r}")
        self.unscored[reason] += n
        listed = self.examples.setdefault(reason, [])
        if len(listed) < MAX_EXAMPLES:
            listed.append(example)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable counts: rows, scored, keyframe_only, unscored (by reason),
        examples."""
        return {
            "rows": self.rows,
            "scored": self.scored,
            "keyframe_only": self.keyframe_only,
            "unscored": dict(self.unscored),
            "examples": {k: list(v) for k, v in self.examples.items()},
        }


def read_predictions(paths: Sequence[PathLike]) -> dict[str, ClipPredictions]:
    """Read prediction files and index them: clip_id -> (phrase_id, frame_index) -> mask.

    Raises :class:`DuplicatePredictionError` listing the duplicated keys (and the files holding
    them) when a (clip_id, phrase_id, frame_index) appears more than once.
    """
    index: dict[str, ClipPredictions] = {}
    where: dict[tuple[str, int, int], str] = {}
    duplicates: list[str] = []
    columns = ["clip_id", "phrase_id", "object_id", "frame_index", "height", "width", "rle_counts",
               "score"]  # fmt: skip
    for path in paths:
        table = storage.read_table(path, "predictions", columns=columns)
        values = {name: table.column(name).to_pylist() for name in columns}
        for i, clip_id in enumerate(values["clip_id"]):
            key = (int(values["phrase_id"][i]), int(values["frame_index"][i]))
            clip = index.setdefault(clip_id, {})
            if key in clip:
                first = where[(clip_id, *key)]
                duplicates.append(
                    f"clip {clip_id!r} phrase {key[0]} frame {key[1]} ({first} and {path})"
                )
                continue
            where[(clip_id, *key)] = str(path)
            clip[key] = PredictedMask(
                values["object_id"][i],
                int(values["height"][i]),
                int(values["width"][i]),
                values["rle_counts"][i],
                float(values["score"][i]),
            )
    if duplicates:
        listed = "\n  ".join(duplicates[:MAX_LISTED_DUPLICATES])
        more = len(duplicates) - MAX_LISTED_DUPLICATES
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise DuplicatePredictionError(
            f"{len(duplicates)} duplicate prediction(s) for the same "
            f"(clip_id, phrase_id, frame_index):\n  {listed}{tail}"
        )
    return index
