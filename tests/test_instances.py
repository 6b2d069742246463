"""Tests of J_union / J_ins and the connected-component split (nvos.metrics.instances).

The component split keeps a label image, not a mask per component: checked against the former
implementation (one full-size mask per component) on random masks, and on a fragmented 480p mask
under a memory bound.
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from test_metrics import H, W, _square, _zeros

from nvos import rle
from nvos.evaluation.score import region_scores
from nvos.evaluation.truth import ObjectFrameTruth
from nvos.metrics import connected_instances, instance_scores, jaccard
from nvos.metrics.instances import Components
from nvos.metrics.masks import bounding_box


def _full_masks(mask: np.ndarray, connectivity: int = 8) -> list[np.ndarray]:
    """The former connected_instances: one full-size mask per cv2 component."""
    n_labels, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=connectivity)
    return [labels == label for label in range(1, n_labels)]


def _old_scores(pred: np.ndarray, masks: list[np.ndarray], void: np.ndarray | None = None):
    """The former instance_scores over full-size instance masks."""
    union = np.logical_or.reduce(masks)
    return jaccard(union, pred, void), max(jaccard(m, pred, void) for m in masks)


def _random_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Noise, blobs or both: from a single component to hundreds."""
    kind = rng.integers(3)
    noise = rng.random(shape) < rng.choice([0.01, 0.1, 0.3, 0.6])
    if kind == 0:
        return noise
    blobs = np.zeros(shape, dtype=bool)
    for _ in range(rng.integers(1, 6)):
        y0, y1 = sorted(rng.integers(0, shape[0], 2))
        x0, x1 = sorted(rng.integers(0, shape[1], 2))
        blobs[y0 : y1 + 1, x0 : x1 + 1] = True
    return blobs if kind == 1 else blobs ^ noise


def test_instance_scores_two_pieces() -> None:
    left, right = _square(10, 5, 10), _square(10, 30, 10)
    scores = instance_scores(left, [left, right])
    assert scores.j_ins == 1.0
    assert scores.j_union == 0.5
    both = left | right
    assert instance_scores(both, [left, right]) == (1.0, 0.5)


def test_instance_scores_empty_object() -> None:
    assert instance_scores(_zeros(), []) == (1.0, 1.0)
    assert instance_scores(_square(1, 1, 3), []) == (0.0, 0.0)
    assert instance_scores(_zeros(), connected_instances(_zeros())) == (1.0, 1.0)


def test_connected_instances_connectivity() -> None:
    mask = _zeros()
    mask[5, 5] = mask[6, 6] = True  # diagonal neighbours
    mask[20:25, 20:25] = True
    assert len(connected_instances(mask)) == 2
    pieces = connected_instances(mask, connectivity=4)
    assert len(pieces) == 3
    np.testing.assert_array_equal(np.logical_or.reduce(list(pieces)), mask)
    assert len(connected_instances(_zeros())) == 0
    assert list(connected_instances(_zeros())) == []
    with pytest.raises(ValueError, match="connectivity"):
        connected_instances(mask, connectivity=6)


def test_instance_scores_from_union_components() -> None:
    left, right = _square(10, 5, 10), _square(10, 30, 12)
    union = left | right
    j_union, j_ins = instance_scores(right, connected_instances(union))
    assert j_union == jaccard(union, right)
    assert j_ins == 1.0


def test_components_are_the_former_full_masks() -> None:
    """Masks, order, boxes, areas and crops equal the former one-mask-per-component split."""
    rng = np.random.default_rng(7)
    checked = 0
    for trial in range(40):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 80)))
        mask = _random_mask(rng, shape)
        connectivity = (4, 8)[trial % 2]
        old = _full_masks(mask, connectivity)
        new = connected_instances(mask, connectivity)
        assert isinstance(new, Components)
        assert len(new) == len(old)
        for k, expected in enumerate(old):
            np.testing.assert_array_equal(new[k], expected)
            assert new.box(k) == bounding_box(expected)
            assert int(new.areas[k]) == int(expected.sum())
            y0, y1, x0, x1 = new.box(k)
            np.testing.assert_array_equal(new.crop(k), expected[y0:y1, x0:x1])
            checked += 1
        if old:
            np.testing.assert_array_equal(new[-1], old[-1])
            with pytest.raises(IndexError):
                new[len(old)]
    assert checked > 1000  # the noisy masks give many components


@pytest.mark.parametrize("with_void", [False, True])
def test_component_scores_equal_the_former_implementation(with_void: bool) -> None:
    """J_union / J_ins on the label image equal the former ones on full masks, exactly."""
    rng = np.random.default_rng(11 + with_void)
    for trial in range(60):
        mask = _random_mask(rng, (H, W))
        if not mask.any():
            continue
        preds = [_zeros(), mask, rng.random((H, W)) < 0.3, _full_masks(mask)[0], ~mask]
        void = (rng.random((H, W)) < 0.2) if with_void else None
        for pred in preds:
            expected = _old_scores(pred, _full_masks(mask), void)
            assert instance_scores(pred, connected_instances(mask), void) == expected, trial


def test_region_scores_equal_the_former_implementation() -> None:
    """The evaluation's count-based J_ins (ground truth given as a union) equals the former
    instance_scores over one full mask per component, exactly."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        mask = _random_mask(rng, (H, W))
        if not mask.any():
            continue
        truth = ObjectFrameTruth.decode([rle.encode(mask)], H, W)
        for pred in (_zeros(), mask, rng.random((H, W)) < 0.3, _full_masks(mask)[-1]):
            expected = _old_scores(pred, _full_masks(mask))
            assert region_scores(truth, np.ascontiguousarray(pred)) == expected


def test_fragmented_480p_mask_in_bounded_memory() -> None:
    """A 480p ground truth with 30 % salt noise (about 19,000 components: one full-size mask each
    took about 8 GB) is split and scored within 64 MB of traced allocations."""
    height, width = 480, 854
    mask = np.random.default_rng(0).random((height, width)) < 0.3
    counts = rle.encode(mask)
    tracemalloc.start()
    try:
        truth = ObjectFrameTruth.decode([counts], height, width)
        components = truth.instances
        assert isinstance(components, Components)
        k = int(np.argmax(components.areas))  # the largest component, alone as the prediction
        pred = np.zeros((height, width), dtype=bool)
        y0, y1, x0, x1 = components.box(k)
        pred[y0:y1, x0:x1] = components.crop(k)
        j_union, j_ins = region_scores(truth, pred)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(components) > 15_000
    assert sum(truth.instance_areas) == int(mask.sum())
    assert j_ins == 1.0
    assert j_union == int(components.areas[k]) / int(mask.sum())
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MB"
