"""Exact temporal decoding of one phrase's region choice (Viterbi over proposals or "absent").

A clip has T proposal frames ("keyframes"), frame t with K_t proposals. For one phrase the method
gives region–phrase scores u_t (K_t,); consecutive frames are joined by link matrices
L_t (K_t, K_{t+1}) (e.g. mask IoU after motion compensation, :mod:`nvos.temporal.flow`). A path
chooses on every frame either a proposal or ABSENT (-1) and its value is

    Σ_t u_t(s_t) + link_weight · Σ_t L_t(s_t, s_{t+1})

where ABSENT scores ``absent_score`` on every frame and every link to or from ABSENT is 0. So, with
no links, a frame's best proposal is chosen exactly when its score is at least ``absent_score``
(the absent threshold); ``absent_score=None`` removes the state (a frame without proposals is
still ABSENT, the only state it has). :func:`viterbi` returns the path of highest value, exactly
(dynamic programming, O(Σ_t K_t·K_{t+1})). Ties go to the lowest proposal index, ABSENT last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ABSENT = -1


@dataclass(frozen=True)
class DecodeSettings:
    """Weights of the temporal decoder (config; chosen on val).

    ``link_weight`` multiplies the link term (0 = per-frame choice); ``absent_score`` is the score
    of ABSENT on each frame (the absent threshold), or None for no ABSENT state.
    """

    link_weight: float = 1.0
    absent_score: float | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.link_weight) or self.link_weight < 0:
            raise ValueError(f"link_weight must be a finite number >= 0, got {self.link_weight}")
        if self.absent_score is not None and not np.isfinite(self.absent_score):
            raise ValueError(f"absent_score must be finite or None, got {self.absent_score}")


@dataclass(frozen=True)
class Path:
    """A decoded path: ``choice`` (T,) int64, a proposal index per frame or ABSENT (-1), and its
    value under the objective above."""

    choice: np.ndarray
    value: float


def check_inputs(scores: Sequence[np.ndarray], links: Sequence[np.ndarray]) -> None:
    """Raise ValueError unless scores[t] is (K_t,) and links[t] is (K_t, K_{t+1}), all finite."""
    if len(scores) == 0:
        raise ValueError("no frames to decode")
    if len(links) != len(scores) - 1:
        raise ValueError(
            f"{len(scores)} frames need {len(scores) - 1} link matrices, got {len(links)}"
        )
    for t, score in enumerate(scores):
        if np.ndim(score) != 1 or not np.all(np.isfinite(score)):
            raise ValueError(
                f"scores of frame {t} must be a finite 1-D array, got {np.shape(score)}"
            )
    for t, link in enumerate(links):
        expected = (len(scores[t]), len(scores[t + 1]))
        if np.shape(link) != expected or not np.all(np.isfinite(link)):
            raise ValueError(
                f"link matrix {t} must be finite of shape {expected}, got {np.shape(link)}"
            )


def _unary(score: np.ndarray, absent_score: float | None) -> np.ndarray:
    """Scores of the states of one frame (K+1,): the proposals, then ABSENT (-inf if barred)."""
    if absent_score is not None:
        absent = float(absent_score)
    else:
        absent = -np.inf if len(score) else 0.0  # a frame without proposals can only be ABSENT
    return np.append(np.asarray(score, dtype=np.float64), absent)


def _pairwise(link: np.ndarray, weight: float) -> np.ndarray:
    """Weighted link between the states of two frames (K_a+1, K_b+1); ABSENT rows/columns 0."""
    out = np.zeros((link.shape[0] + 1, link.shape[1] + 1), dtype=np.float64)
    out[:-1, :-1] = weight * np.asarray(link, dtype=np.float64)
    return out


def _state(index: int, n_proposals: int) -> int:
    return ABSENT if index == n_proposals else index


def viterbi(
    scores: Sequence[np.ndarray], links: Sequence[np.ndarray], settings: DecodeSettings
) -> Path:
    """The path of highest value for one phrase (see the module docstring), decoded exactly.

    ``scores[t]`` is (K_t,) (K_t may be 0), ``links[t]`` is (K_t, K_{t+1}).
    """
    check_inputs(scores, links)
    value = _unary(scores[0], settings.absent_score)
    backpointers: list[np.ndarray] = []
    for t in range(1, len(scores)):
        total = value[:, None] + _pairwise(links[t - 1], settings.link_weight)  # (K_a+1, K_b+1)
        best = np.argmax(total, axis=0)  # first maximum: lowest proposal, ABSENT last
        backpointers.append(best)
        value = total[best, np.arange(total.shape[1])] + _unary(scores[t], settings.absent_score)
    last = int(np.argmax(value))
    indices = [last]
    for best in reversed(backpointers):
        indices.append(int(best[indices[-1]]))
    indices.reverse()
    choice = np.array([_state(i, len(s)) for i, s in zip(indices, scores, strict=True)], np.int64)
    return Path(choice=choice, value=float(value[last]))


def path_value(
    choice: Sequence[int],
    scores: Sequence[np.ndarray],
    links: Sequence[np.ndarray],
    settings: DecodeSettings,
) -> float:
    """Value of a given path (ABSENT = -1) under the objective; -inf if it uses a barred state."""
    total = 0.0
    for t, state in enumerate(choice):
        unary = _unary(scores[t], settings.absent_score)
        total += float(unary[state if state != ABSENT else len(scores[t])])
    for t in range(len(choice) - 1):
        a, b = choice[t], choice[t + 1]
        if a != ABSENT and b != ABSENT:
            total += settings.link_weight * float(links[t][a, b])
    return total


def decode_phrases(
    scores: Sequence[np.ndarray], links: Sequence[np.ndarray], settings: DecodeSettings
) -> np.ndarray:
    """Decode every phrase of a clip: ``scores[t]`` is (N, K_t) (N phrases, region–phrase scores
    of frame t's proposals), ``links[t]`` is (K_t, K_{t+1}) and shared by the phrases (it depends
    on the proposals only). Returns the choices (N, T) int64, ABSENT = -1."""
    if len(scores) == 0:
        raise ValueError("no frames to decode")
    shapes = [np.shape(s) for s in scores]
    if any(len(shape) != 2 for shape in shapes) or len({shape[0] for shape in shapes}) != 1:
        raise ValueError(f"scores must be (N phrases, K_t) with one N on every frame, got {shapes}")
    n_phrases = shapes[0][0]
    choices = np.empty((n_phrases, len(scores)), np.int64)
    for phrase in range(n_phrases):
        path = viterbi([np.asarray(s)[phrase] for s in scores], links, settings)
        choices[phrase] = path.choice
    return choices
