"""Tests of the exact temporal decoder (nvos.temporal.decode)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nvos.temporal.decode import ABSENT, DecodeSettings, decode_phrases, path_value, viterbi


def brute_force(scores, links, settings):
    """Best value and all best paths, by enumerating every path."""
    states = [list(range(len(s))) + [ABSENT] for s in scores]
    best, argbest = -np.inf, []
    for choice in itertools.product(*states):
        value = path_value(choice, scores, links, settings)
        if value > best:
            best, argbest = value, [choice]
        elif value == best:
            argbest.append(choice)
    return best, argbest


def random_problem(rng: np.random.Generator, n_frames: int, max_k: int):
    """Scores and links on a grid of quarters, so that every sum is exact in float64."""
    sizes = rng.integers(0, max_k + 1, size=n_frames)
    scores = [rng.integers(-8, 9, size=k) / 4.0 for k in sizes]
    links = [rng.integers(0, 5, size=(a, b)) / 4.0 for a, b in itertools.pairwise(sizes)]
    return scores, links


@pytest.mark.parametrize("seed", range(60))
def test_viterbi_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores, links = random_problem(rng, n_frames=int(rng.integers(1, 6)), max_k=3)
    settings = DecodeSettings(
        link_weight=float(rng.integers(0, 5)) / 2.0,
        absent_score=None if seed % 3 == 0 else float(rng.integers(-4, 5)) / 4.0,
    )
    best, argbest = brute_force(scores, links, settings)
    path = viterbi(scores, links, settings)
    assert path.value == best
    assert tuple(int(c) for c in path.choice) in argbest
    assert path_value(path.choice, scores, links, settings) == best
    if settings.absent_score is None:  # ABSENT only where a frame has no proposal
        assert all((c == ABSENT) == (len(s) == 0) for c, s in zip(path.choice, scores, strict=True))


@pytest.mark.parametrize("seed", range(10))
def test_viterbi_matches_brute_force_real_valued(seed: int) -> None:
    """Random real scores (ties have probability 0): the same unique path as enumeration."""
    rng = np.random.default_rng(100 + seed)
    sizes = rng.integers(1, 4, size=5)
    scores = [rng.normal(size=k) for k in sizes]
    links = [rng.uniform(size=(a, b)) for a, b in itertools.pairwise(sizes)]
    settings = DecodeSettings(link_weight=1.5, absent_score=-0.3)
    best, argbest = brute_force(scores, links, settings)
    path = viterbi(scores, links, settings)
    assert len(argbest) == 1
    assert tuple(int(c) for c in path.choice) == argbest[0]
    assert path.value == pytest.approx(best, abs=1e-12)


def test_no_link_weight_is_the_per_frame_choice_with_threshold() -> None:
    scores = [np.array([0.2, 0.5, 0.1]), np.array([0.05, 0.02]), np.array([0.3, 0.9])]
    links = [np.ones((3, 2)), np.ones((2, 2))]
    per_frame = viterbi(scores, links, DecodeSettings(link_weight=0.0))
    assert per_frame.choice.tolist() == [1, 0, 1]
    thresholded = viterbi(scores, links, DecodeSettings(link_weight=0.0, absent_score=0.1))
    assert thresholded.choice.tolist() == [1, ABSENT, 1]


def test_link_term_fixes_one_distractor_frame() -> None:
    """An object (proposal 0 everywhere) tracked over 5 frames; on frame 2 a distractor
    (proposal 1) scores slightly higher. Per frame it is chosen; the links restore the track."""
    n_frames = 5
    scores = [np.array([0.60, 0.30]) for _ in range(n_frames)]
    scores[2] = np.array([0.50, 0.55])
    # IoU after motion compensation: the object overlaps itself (0.8), never the distractor.
    link = np.array([[0.8, 0.0], [0.0, 0.1]])
    links = [link] * (n_frames - 1)
    per_frame = viterbi(scores, links, DecodeSettings(link_weight=0.0))
    assert per_frame.choice.tolist() == [0, 0, 1, 0, 0]
    decoded = viterbi(scores, links, DecodeSettings(link_weight=0.5, absent_score=0.2))
    assert decoded.choice.tolist() == [0, 0, 0, 0, 0]
    assert decoded.value == pytest.approx(0.6 * 4 + 0.5 + 0.5 * 0.8 * 4)


def test_absent_is_a_real_state() -> None:
    """The object leaves the view on frames 2-3: only weak unrelated proposals remain there."""
    scores = [np.array([0.7]), np.array([0.7]), np.array([0.1]), np.array([0.15]), np.array([0.7])]
    links = [np.array([[0.9]]), np.array([[0.0]]), np.array([[0.0]]), np.array([[0.0]])]
    decoded = viterbi(scores, links, DecodeSettings(link_weight=1.0, absent_score=0.3))
    assert decoded.choice.tolist() == [0, 0, ABSENT, ABSENT, 0]
    forced = viterbi(scores, links, DecodeSettings(link_weight=1.0, absent_score=None))
    assert forced.choice.tolist() == [0, 0, 0, 0, 0]


def test_frames_without_proposals_are_absent() -> None:
    scores = [np.array([0.4]), np.zeros(0), np.array([0.2, 0.6])]
    links = [np.zeros((1, 0)), np.zeros((0, 2))]
    path = viterbi(scores, links, DecodeSettings(absent_score=None))
    assert path.choice.tolist() == [0, ABSENT, 1]
    assert path.value == pytest.approx(1.0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="no frames"):
        viterbi([], [], DecodeSettings())
    with pytest.raises(ValueError, match="need 1 link"):
        viterbi([np.ones(2), np.ones(2)], [], DecodeSettings())
    with pytest.raises(ValueError, match=r"link matrix 0 must be finite of shape \(2, 3\)"):
        viterbi([np.ones(2), np.ones(3)], [np.ones((3, 2))], DecodeSettings())
    with pytest.raises(ValueError, match="scores of frame 1"):
        viterbi([np.ones(2), np.array([np.nan])], [np.ones((2, 1))], DecodeSettings())
    with pytest.raises(ValueError, match="link_weight"):
        DecodeSettings(link_weight=-1.0)


def test_decode_phrases_decodes_each_phrase_with_shared_links() -> None:
    rng = np.random.default_rng(5)
    sizes = [2, 3, 0, 2]
    scores = [rng.integers(-4, 5, size=(3, k)) / 4.0 for k in sizes]
    links = [rng.integers(0, 5, size=(a, b)) / 4.0 for a, b in itertools.pairwise(sizes)]
    settings = DecodeSettings(link_weight=1.0, absent_score=0.25)
    choices = decode_phrases(scores, links, settings)
    assert choices.shape == (3, 4)
    for phrase in range(3):
        path = viterbi([s[phrase] for s in scores], links, settings)
        assert choices[phrase].tolist() == path.choice.tolist()
    with pytest.raises(ValueError, match="one N on every frame"):
        decode_phrases([np.zeros((2, 1)), np.zeros((3, 1))], [np.zeros((1, 1))], settings)
