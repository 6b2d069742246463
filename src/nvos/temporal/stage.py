"""The ``<base>+temporal`` methods: each phrase's region choice decoded over a clip's keyframes.

A region-scoring method (``sam_clip``, a ROSA variant) writes every proposal's score on every
keyframe (``scores/<base>/<shard>.parquet``, schema ``region_scores``); the ``links`` stage writes
the link term between consecutive keyframes (``links/<shard>.parquet``). Here, per clip, the
keyframes (roles :data:`nvos.frames.KEYFRAME_ROLES`), their scored proposals and the links make
one decoding problem (:class:`ClipProblem`); :func:`nvos.temporal.decode.decode_phrases` chooses
every phrase's path, and :func:`temporal_predictions` writes it as ``predictions`` rows on every
keyframe: the chosen proposal's mask and score, or for ABSENT an empty mask (proposal_id -1,
score 0), so that propagation knows the object is absent there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nvos import rle, storage
from nvos.dataset import read_shard_clips
from nvos.errors import NvosError
from nvos.frames import keyframes
from nvos.methods.rows import PredictionRows
from nvos.proposals.stage import read_proposals
from nvos.skips import Ledger, Skip
from nvos.temporal.decode import ABSENT, DecodeSettings, decode_phrases
from nvos.temporal.links import read_links
from nvos.types import PathLike

__all__ = [
    "ClipProblem",
    "TemporalError",
    "TemporalSummary",
    "clip_problems",
    "decode_clip",
    "flip_rate",
    "read_scores",
    "temporal_predictions",
]

logger = logging.getLogger(__name__)

ABSENT_ROW_SCORE = 0.0
"""The ``score`` of a row whose phrase is decoded ABSENT on that keyframe (an empty mask)."""


class TemporalError(NvosError, ValueError):
    """Scores, links and keyframes that do not fit together (the message names clip and frame)."""


@dataclass(frozen=True)
class ClipScores:
    """One clip's stored scores: per tagged phrase (``phrases``: (phrase_id, object_id), in
    phrase order) and keyframe, the scored proposal ids (K,) and their scores (K,)."""

    phrases: list[tuple[int, str | None]]
    frames: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipProblem:
    """One clip's decoding problem over its T keyframes.

    ``frames`` (T,) ascending keyframe indices with their (height, width); ``proposal_ids[t]``
    (K_t,) the scored proposals of keyframe t; ``scores[t]`` (N, K_t) the N phrases' scores;
    ``links[t]`` (K_t, K_{t+1}); ``phrases`` the N (phrase_id, object_id).
    """

    clip_id: str
    phrases: list[tuple[int, str | None]]
    frames: list[tuple[int, int, int]]
    proposal_ids: list[np.ndarray]
    scores: list[np.ndarray]
    links: list[np.ndarray]

    def best_scores(self) -> np.ndarray:
        """The best score of every (phrase, keyframe with proposals): (M,) float64."""
        best = [s.max(axis=1) for s in self.scores if s.shape[1]]
        return np.concatenate(best) if best else np.zeros(0)


@dataclass(frozen=True)
class TemporalSummary:
    """What :func:`temporal_predictions` wrote for one shard; ``ledger`` accounts for every clip."""

    clips: int
    rows: int
    absent_rows: int
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def read_scores(paths: Sequence[PathLike], clip_ids: Sequence[str]) -> dict[str, ClipScores]:
    """clip_id -> its :class:`ClipScores` from ``region_scores`` files, for ``clip_ids`` only."""
    out: dict[str, ClipScores] = {}
    if not clip_ids:
        return out
    for path in paths:
        table = storage.read_table(path, "region_scores")
        table = table.filter(pc.is_in(table["clip_id"], pa.array(list(clip_ids), pa.string())))
        for row in table.to_pylist():
            clip = out.setdefault(row["clip_id"], ClipScores([]))
            phrase = (int(row["phrase_id"]), row["object_id"])
            if phrase not in clip.phrases:
                clip.phrases.append(phrase)
            ids = np.asarray(row["proposal_ids"], np.int64)
            frame = clip.frames.setdefault(int(row["frame_index"]), (ids, {}))
            if not np.array_equal(frame[0], ids):
                raise TemporalError(
                    f"{path}: clip {row['clip_id']!r} frame {row['frame_index']}: phrase "
                    f"{row['phrase_id']} scores other proposals than the frame's other phrases"
                )
            frame[1][phrase[0]] = np.asarray(row["scores"], np.float64)
    for clip in out.values():
        clip.phrases.sort()
    return out


def clip_problems(
    scores: Mapping[str, ClipScores],
    links: Mapping[str, Mapping[tuple[int, int], np.ndarray]],
    frames: Mapping[str, Sequence[tuple[int, int, int]]],
) -> dict[str, ClipProblem]:
    """The decoding problem of every clip with scores: its keyframes (``frames``: clip ->
    (frame_index, height, width) ascending), the scored proposals and the link submatrices
    between them. Raises :class:`TemporalError` when a keyframe pair has no link row, or a
    scored frame is no keyframe."""
    problems = {}
    for clip_id, clip in scores.items():
        keys = list(frames.get(clip_id, []))
        known = {f for f, _, _ in keys}
        stray = sorted(set(clip.frames) - known)
        if stray:
            raise TemporalError(f"clip {clip_id!r}: scores on frames {stray}, not keyframes")
        ids, values = [], []
        for frame_index, _, _ in keys:
            frame_ids, by_phrase = clip.frames.get(frame_index, (np.zeros(0, np.int64), {}))
            ids.append(frame_ids)
            rows = [by_phrase.get(p, np.zeros(len(frame_ids))) for p, _ in clip.phrases]
            values.append(np.array(rows, np.float64).reshape(len(clip.phrases), len(frame_ids)))
        pairs = []
        for t in range(len(keys) - 1):
            a, b = keys[t][0], keys[t + 1][0]
            if not len(ids[t]) or not len(ids[t + 1]):
                pairs.append(np.zeros((len(ids[t]), len(ids[t + 1]))))
                continue
            matrix = links.get(clip_id, {}).get((a, b))
            if matrix is None:
                raise TemporalError(
                    f"clip {clip_id!r}: no link between keyframes {a} and {b} (rebuild links)"
                )
            if ids[t].max() >= matrix.shape[0] or ids[t + 1].max() >= matrix.shape[1]:
                raise TemporalError(
                    f"clip {clip_id!r}: link {a}->{b} of shape {matrix.shape} does not cover "
                    "the scored proposals (rebuild links)"
                )
            pairs.append(matrix[np.ix_(ids[t], ids[t + 1])])
        problems[clip_id] = ClipProblem(clip_id, clip.phrases, keys, ids, values, pairs)
    return problems


def decode_clip(problem: ClipProblem, settings: DecodeSettings) -> np.ndarray:
    """The chosen proposal id (N, T) of every phrase on every keyframe (ABSENT = -1)."""
    if not problem.frames or not problem.phrases:
        return np.zeros((len(problem.phrases), len(problem.frames)), np.int64)
    choice = decode_phrases(problem.scores, problem.links, settings)
    out = np.full(choice.shape, ABSENT, np.int64)
    for t, ids in enumerate(problem.proposal_ids):
        chosen = choice[:, t] != ABSENT
        out[chosen, t] = ids[choice[chosen, t]]
    return out


def flip_rate(problem: ClipProblem, chosen: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """How often a path changes object between consecutive keyframes: (flips, pairs) over the
    phrases' pairs where both keyframes chose a proposal; a flip is a link IoU below
    ``threshold`` between the two chosen proposals (``chosen`` (N, T) from :func:`decode_clip`)."""
    flips = pairs = 0
    for t, link in enumerate(problem.links):
        position_a = {int(p): i for i, p in enumerate(problem.proposal_ids[t])}
        position_b = {int(p): i for i, p in enumerate(problem.proposal_ids[t + 1])}
        for a, b in zip(chosen[:, t], chosen[:, t + 1], strict=True):
            if a == ABSENT or b == ABSENT:
                continue
            pairs += 1
            flips += int(link[position_a[int(a)], position_b[int(b)]] < threshold)
    return flips, pairs


def empty_mask(height: int, width: int) -> bytes:
    return rle.encode(np.zeros((height, width), bool))


def temporal_predictions(
    scores_path: PathLike,
    links_path: PathLike,
    proposals_path: PathLike,
    frames_path: PathLike,
    clips_path: PathLike,
    shard: str,
    out_path: PathLike,
    settings: DecodeSettings,
    splits: Sequence[str],
    method: str,
    meta: Mapping[str, Any] | None = None,
) -> TemporalSummary:
    """Write ``predictions/<base>+temporal/<shard>.parquet``: the decoded path of every tagged
    phrase of the ``splits`` clips on every keyframe (module docstring)."""
    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    clip_ids = [c for c, s in zip(clips["clip_id"].to_pylist(), clips["split"].to_pylist(),
                                  strict=True) if s in set(splits)]  # fmt: skip
    frames = keyframes(frames_path, clip_ids)
    problems = clip_problems(
        read_scores([scores_path], clip_ids), read_links([links_path], clip_ids), frames
    )
    proposals = read_proposals(proposals_path, list(problems))
    rows = PredictionRows()
    absent = 0
    for clip_id, problem in problems.items():
        chosen = decode_clip(problem, settings)
        for n, (phrase_id, object_id) in enumerate(problem.phrases):
            for t, (frame_index, height, width) in enumerate(problem.frames):
                pid = int(chosen[n, t])
                if pid == ABSENT:
                    absent += 1
                    rows.add(clip_id, phrase_id, object_id, frame_index, -1, ABSENT_ROW_SCORE,
                             height, width, empty_mask(height, width))  # fmt: skip
                    continue
                stored = proposals[(clip_id, frame_index)]
                score = problem.scores[t][n][list(problem.proposal_ids[t]).index(pid)]
                rows.add(clip_id, phrase_id, object_id, frame_index, pid, float(score),
                         stored.height, stored.width, stored.rle_counts[pid])  # fmt: skip
    record = storage.provenance(
        "predict.temporal",
        {"link_weight": settings.link_weight, "absent_score": settings.absent_score},
        method=method,
        shard=shard,
        splits=list(splits),
        **dict(meta or {}),
    )
    table = rows.write(out_path, record)
    skips = [
        Skip(c, "split_not_predicted", detail=f"split {s}")
        for c, s in zip(clips["clip_id"].to_pylist(), clips["split"].to_pylist(), strict=True)
        if s not in set(splits)
    ]
    skips += [Skip(c, "no_scores") for c in clip_ids if c not in problems]
    ledger = Ledger.of(f"predictions/{method}", shard, clips["clip_id"].to_pylist(),
                       rows.clip_ids, skips)  # fmt: skip
    summary = TemporalSummary(
        len(problems), table.num_rows, absent, time.perf_counter() - start, ledger
    )
    logger.info("%s %s: %s", method, shard, summary)
    return summary
