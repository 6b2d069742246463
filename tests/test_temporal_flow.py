"""Tests of DIS flow, mask warping and the link term (nvos.temporal.flow)."""

from __future__ import annotations

import numpy as np
import pytest
from temporal_scenes import HEIGHT, WIDTH, iou, scene_frame, square_mask

from nvos import rle
from nvos.metrics.coco import iou_matrix
from nvos.temporal.flow import (
    FlowEstimator,
    FlowSettings,
    chained_links,
    clip_links,
    link_matrix,
)


def test_warp_follows_a_given_flow_exactly() -> None:
    """An integer flow pulls each pixel from a fixed offset: an exact shift, 0 from outside."""
    estimator = FlowEstimator(20, 30)
    masks = np.zeros((5, 20, 30), np.float32)  # 5 masks: remap's 4-channel chunks are crossed
    masks[:, 5:10, 2:8] = 1.0
    masks[4, 0:3, 0:3] = 0.5
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = -4.0  # pixel x takes the value at x - 4: everything moves 4 to the right
    flow[..., 1] = 1.0  # pixel y takes the value at y + 1: everything moves 1 up
    warped = estimator.warp(masks, flow)
    expected = np.zeros_like(masks)
    expected[:, 4:9, 6:12] = 1.0
    expected[4, 0:2, 4:7] = 0.5
    np.testing.assert_array_equal(warped, expected)


def test_warp_scales_a_flow_computed_at_lower_resolution() -> None:
    estimator = FlowEstimator(40, 60)
    masks = np.zeros((1, 40, 60), np.float32)
    masks[0, 10:20, 10:20] = 1.0
    flow = np.full((20, 30, 2), [-2.0, 0.0], np.float32)  # half resolution: 4 px at full size
    warped = estimator.warp(masks, flow)
    expected = np.zeros_like(masks)
    expected[0, 10:20, 14:24] = 1.0
    np.testing.assert_allclose(warped, expected, atol=1e-6)


def test_flow_resolution_follows_max_side() -> None:
    assert FlowEstimator(480, 854, FlowSettings(max_side=427)).flow_size == (427, 240)
    assert FlowEstimator(240, 320, FlowSettings(max_side=640)).flow_size == (320, 240)
    with pytest.raises(ValueError, match="preset"):
        FlowSettings(preset="slowest")
    with pytest.raises(ValueError, match="does not match"):
        FlowEstimator(240, 320).prepare(np.zeros((10, 10, 3), np.uint8))


def test_iou_matrix_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(4, 17, 23)) < 0.4
    b = rng.uniform(size=(3, 17, 23)) < 0.3
    b[2] = False  # an empty mask: IoU 0 with everything
    got = iou_matrix(rle.encode_many(a), rle.encode_many(b), 17, 23, empty_iou=0.0)
    expected = np.array([[iou(x, y) if y.any() else 0.0 for y in b] for x in a])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert iou_matrix([], rle.encode_many(b), 17, 23, empty_iou=0.0).shape == (0, 3)


def test_link_matrix_compensates_motion() -> None:
    """The square moved 18 px between the two keyframes: warped by the flow, its mask overlaps
    its new mask far more than without motion compensation; a distractor far away gets 0."""
    estimator = FlowEstimator(HEIGHT, WIDTH, FlowSettings(preset="medium", max_side=320))
    distractor = np.zeros((HEIGHT, WIDTH), bool)
    distractor[170:230, 230:300] = True
    links = link_matrix(
        estimator,
        scene_frame(0),
        scene_frame(6),
        rle.encode_many(np.stack([square_mask(0)])),
        rle.encode_many(np.stack([square_mask(6), distractor])),
    )
    assert links.shape == (1, 2)
    static = iou(square_mask(0), square_mask(6))  # 42/78 = 0.54
    assert links[0, 0] > static + 0.2
    assert links[0, 1] == 0.0


def test_link_matrix_without_proposals_is_empty() -> None:
    estimator = FlowEstimator(HEIGHT, WIDTH)
    counts = rle.encode_many(np.stack([square_mask(0)]))
    assert link_matrix(estimator, scene_frame(0), scene_frame(1), [], counts).shape == (0, 1)


def test_clip_links_equal_pairwise_link_matrices() -> None:
    estimator = FlowEstimator(HEIGHT, WIDTH, FlowSettings(preset="medium", max_side=320))
    frames = [scene_frame(t) for t in (0, 3, 6)]
    counts = [
        rle.encode_many(np.stack([square_mask(t), square_mask(t, col0=150)])) for t in (0, 3, 6)
    ]
    counts[1] = []  # no proposal on the middle keyframe
    links = clip_links(estimator, frames, counts)
    assert [link.shape for link in links] == [(2, 0), (0, 2)]
    two = clip_links(estimator, [frames[0], frames[2]], [counts[0], counts[2]])
    single = link_matrix(estimator, frames[0], frames[2], counts[0], counts[2])
    np.testing.assert_array_equal(two[0], single)
    with pytest.raises(ValueError, match="3 frames but proposals for 2"):
        clip_links(estimator, frames, counts[:2])


def test_chained_links_follow_motion_that_one_flow_step_misses() -> None:
    """The square moves 24 px between keyframes 0 and 8: one DIS step (ultrafast) loses it (no
    better than no motion compensation), the flow chained through the frames in between follows
    it (with some lag: DIS underestimates this scene's motion by about a fifth per step)."""
    estimator = FlowEstimator(HEIGHT, WIDTH, FlowSettings(preset="ultrafast", max_side=320))
    distractor = np.zeros((HEIGHT, WIDTH), bool)
    distractor[170:230, 230:300] = True
    counts = [
        rle.encode_many(np.stack([square_mask(0)])),
        rle.encode_many(np.stack([distractor, square_mask(8)])),
        rle.encode_many(np.stack([square_mask(12)])),
    ]
    requests: list[list[int]] = []

    def source(indices):  # noqa: ANN001, ANN202
        requests.append(list(indices))
        return ((i, scene_frame(i)) for i in indices)

    chained = chained_links(estimator, source, [0, 8, 12], counts)
    assert requests == [list(range(13))]
    direct = link_matrix(estimator, scene_frame(0), scene_frame(8), counts[0], counts[1])
    static = iou(square_mask(0), square_mask(8))
    assert [link.shape for link in chained] == [(1, 2), (2, 1)]
    assert direct[0, 1] < static + 0.05  # 0.42 vs 0.43
    assert chained[0][0, 1] > static + 0.2  # 0.72
    assert chained[0][0, 0] == 0.0
    assert chained[1][1, 0] > 0.8  # 4 frames: 0.89
    strided = chained_links(estimator, source, [0, 8, 12], counts, step=2)
    assert requests[-1] == [0, 2, 4, 6, 8, 10, 12]
    assert strided[0][0, 1] > static + 0.2  # 0.75
    assert chained_links(estimator, source, [3], counts[:1]) == []
    with pytest.raises(ValueError, match="distinct and ascending"):
        chained_links(estimator, source, [8, 0], counts[:2])
