"""Evaluation protocols: which frames and objects are scored, and the per-object statistics.

``evaluate.protocol`` picks one (``docs/evaluation.md``, "Protocols"):

- ``all_frames`` (default): every annotated frame of a clip, every tagged object; nvos's own rule.
- ``davis``: the DAVIS 2017 semi-supervised rules (``davis2017-evaluation``): the first and last
  annotated frames are not scored; the objects are the labels 1..K, K the highest label on the
  first annotated frame; J and F; a result label above K is an error.
- ``vost``: VOST's rules (``TRI-ML/VOST`` ``evaluation/``): the same frames and objects as
  ``davis``, J only (no F), and ``J_last``, the J of the last quarter of the evaluated frames
  (from index floor(0.75 n)); a result label above K is dropped with a warning.

In both official protocols the ignore label 255 is background (their ``get_all_masks`` sets it to
0 and ``evaluate`` passes no void mask); nvos's ground truth has no ignore region either (the VOST
importer makes 255 background). Per object, :func:`statistics` gives the official mean, recall and
decay of its per-frame values; the split's number is the mean over objects.

In the pipeline an object's label is its position in :func:`label_order` (the tagged objects by
first phrase, then objects only in the annotations): the labels ``nvos export-davis`` writes, so
``davis`` / ``vost`` score the tagged objects the official scripts score on that export.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np

from nvos import rle
from nvos.errors import NvosError
from nvos.evaluation.predictions import PredictionCounts
from nvos.evaluation.score import ClipTask

T = TypeVar("T")

IGNORE_LABEL = 255
"""VOST's label for ambiguous regions that belong to no object (background when scoring)."""


class ProtocolError(NvosError, ValueError):
    """An unknown protocol name, or data the protocol cannot score (the message says where)."""


@dataclass(frozen=True)
class Protocol:
    """The rules of one evaluation protocol.

    Attributes:
        name: ``all_frames``, ``davis`` or ``vost``.
        drop_ends: The first and last annotated frames of a clip are not scored.
        first_frame_objects: Only labels 1..K are objects, K = the highest label present on the
            first annotated frame.
        boundary: The protocol reports F (and J&F); VOST reports J only.
        last_fraction: ``J_last`` is J over the evaluated frames from index
            floor(last_fraction * n) on (None: no ``J_last``).
        extra_labels: What a result label above K does: ``error`` (DAVIS exits) or ``truncate``
            (VOST drops it with a warning).
    """

    name: str
    drop_ends: bool
    first_frame_objects: bool
    boundary: bool
    last_fraction: float | None
    extra_labels: Literal["error", "truncate"]

    @property
    def min_frames(self) -> int:
        """The fewest annotated frames a clip needs to have one evaluated frame."""
        return 3 if self.drop_ends else 1


PROTOCOLS: dict[str, Protocol] = {
    "all_frames": Protocol("all_frames", False, False, True, None, "error"),
    "davis": Protocol("davis", True, True, True, None, "error"),
    "vost": Protocol("vost", True, True, False, 0.75, "truncate"),
}
DEFAULT_PROTOCOL = "all_frames"


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; :class:`ProtocolError` listing the choices otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ProtocolError(
            f"evaluate.protocol: unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}"
        ) from None


def evaluated(protocol: Protocol, frames: Sequence[T]) -> tuple[T, ...]:
    """The scored frames among a clip's annotated ``frames`` (ascending): all, or ``[1:-1]``
    (frame indices, or anything given per frame in that order)."""
    return tuple(frames[1:-1]) if protocol.drop_ends else tuple(frames)


def object_count(protocol: Protocol, present_first: Sequence[bool]) -> int:
    """K, the number of leading labels that are objects, from presence on the first frame.

    ``present_first[i]`` says whether label i + 1 has a pixel on the first annotated frame. Under
    the official rule K is the highest such label (0 when none); otherwise every label counts.
    """
    if not protocol.first_frame_objects:
        return len(present_first)
    present = [i + 1 for i, flag in enumerate(present_first) if flag]
    return present[-1] if present else 0


def last_start(protocol: Protocol, n: int) -> int:
    """Index of the first of ``n`` evaluated frames in ``J_last``: floor(0.75 n) for VOST."""
    if protocol.last_fraction is None:
        raise ProtocolError(f"protocol {protocol.name!r} has no J_last")
    return int(math.floor(n * protocol.last_fraction))


def label_order(tagged: Sequence[str], annotated: Iterable[str]) -> list[str]:
    """Object ids in label order (label = position + 1): ``tagged`` first, then the other
    annotated ids, sorted. ``nvos export-davis`` writes these labels."""
    order = list(tagged)
    order.extend(sorted(set(annotated) - set(order)))
    return order


@dataclass(frozen=True)
class Statistics:
    """Per-object statistics of per-frame values, as the official ``utils.db_statistics``."""

    mean: float
    recall: float
    decay: float


def decay_bins(n: int) -> np.ndarray:
    """The 5 edge indices (int64) of the 4 decay bins of ``n`` values; bin i is
    ``values[ids[i]:ids[i + 1] + 1]``, so neighbouring bins share their edge.

    As the official code: round(linspace(1, n, 5) + 1e-10) - 1, cast to uint8, which wraps modulo
    256 when n > 256 (kept, so that the decay matches the official numbers on long videos).
    """
    ids = np.round(np.linspace(1, n, 5) + 1e-10) - 1
    return ids.astype(np.int64) % 256


def statistics(values: np.ndarray) -> Statistics:
    """Mean, recall and decay of one object's per-frame values (n,) float, n >= 1.

    M = nanmean, R = nanmean(values > 0.5), D = mean of the first decay bin minus mean of the
    last (:func:`decay_bins`), with numpy's own reductions so that the numbers are the official
    ones to the last bit.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-frame values, got {values.shape}")
    ids = decay_bins(values.size)
    first = values[ids[0] : ids[1] + 1]
    last = values[ids[3] : ids[4] + 1]
    decay = float(np.nanmean(first) - np.nanmean(last)) if first.size and last.size else math.nan
    return Statistics(
        mean=float(np.nanmean(values)),
        recall=float(np.nanmean(values > 0.5)),
        decay=decay,
    )


@dataclass
class ProtocolCounts:
    """What a protocol left out of the scoring (counted, never silent)."""

    protocol: str
    clips_too_short: int = 0
    frames_dropped: int = 0
    objects_dropped: int = 0
    examples: list[str] | None = None

    def note(self, example: str) -> None:
        """Keep ``example`` among the first few."""
        self.examples = self.examples or []
        if len(self.examples) < 5:
            self.examples.append(example)

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable counts."""
        return {
            "protocol": self.protocol,
            "clips_too_short": self.clips_too_short,
            "frames_dropped": self.frames_dropped,
            "objects_dropped": self.objects_dropped,
            "examples": list(self.examples or []),
        }


def _present(task: ClipTask, object_id: str, frame: int) -> bool:
    truth = task.truth
    return any(
        rle.area(counts, truth.height, truth.width) > 0
        for counts in truth.masks.get((frame, object_id), ())
    )


def restrict_task(
    task: ClipTask,
    protocol: Protocol,
    counts: ProtocolCounts,
    predictions: PredictionCounts | None = None,
) -> ClipTask | None:
    """The task with only the protocol's evaluated frames and objects (None: nothing left).

    Dropped (object, frame) pairs and objects are counted in ``counts``; predictions matched to
    them move from scored to the unscored reasons ``protocol_frame`` / ``protocol_object`` of
    ``predictions``. A clip with fewer than ``protocol.min_frames`` annotated frames is counted
    in ``counts.clips_too_short`` (the official scripts fail on it).
    """
    truth = task.truth
    where = f"clip {truth.clip_id!r}"
    if len(truth.frames) < protocol.min_frames:
        counts.clips_too_short += 1
        counts.note(f"{where}: {len(truth.frames)} annotated frames")
        _unscore(predictions, "protocol_frame", len(task.predictions), where)
        return None
    frames = evaluated(protocol, truth.frames)
    order = label_order([o.object_id for o in task.objects], {oid for _, oid in truth.masks})
    present = [_present(task, oid, truth.frames[0]) for oid in order]
    k = object_count(protocol, present)
    kept = tuple(task.objects[:k])  # the tagged objects are the first labels
    counts.objects_dropped += len(task.objects) - len(kept)
    counts.frames_dropped += (len(truth.frames) - len(frames)) * len(kept)
    if len(kept) < len(task.objects):
        counts.note(f"{where}: {len(task.objects) - len(kept)} objects beyond K = {k}")
    kept_ids, frame_set = {o.object_id for o in kept}, set(frames)
    matched = {}
    for (object_id, frame), mask in task.predictions.items():
        if object_id not in kept_ids:
            _unscore(predictions, "protocol_object", 1, f"{where} object {object_id!r}")
        elif frame not in frame_set:
            _unscore(predictions, "protocol_frame", 1, f"{where} frame {frame}")
        else:
            matched[(object_id, frame)] = mask
    if not kept:
        return None
    return ClipTask(replace(truth, frames=frames), kept, matched)


def _unscore(predictions: PredictionCounts | None, reason: str, n: int, example: str) -> None:
    if predictions is not None and n:
        predictions.scored -= n
        predictions.skip(reason, n, example)


def restrict_tasks(
    tasks: Sequence[ClipTask], protocol: Protocol, predictions: PredictionCounts | None = None
) -> tuple[list[ClipTask], ProtocolCounts]:
    """:func:`restrict_task` over every task; the tasks left and what was left out."""
    counts = ProtocolCounts(protocol.name)
    if not protocol.drop_ends and not protocol.first_frame_objects:
        return list(tasks), counts  # all_frames: every task as it is
    out = []
    for task in tasks:
        restricted = restrict_task(task, protocol, counts, predictions)
        if restricted is not None:
            out.append(restricted)
    return out, counts


def last_part(task: ClipTask, protocol: Protocol) -> ClipTask:
    """An already restricted task cut to its ``J_last`` frames (the last quarter for VOST)."""
    start = last_start(protocol, len(task.truth.frames))
    return replace(task, truth=replace(task.truth, frames=task.truth.frames[start:]))
