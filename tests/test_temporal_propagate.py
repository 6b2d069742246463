"""Tests of dense propagation (nvos.temporal.propagate): backends none and flow, frame streaming,
the dense_masks rows."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from temporal_scenes import HEIGHT, WIDTH, iou, scene_frame, square_mask

from nvos import rle, storage, video
from nvos.temporal.backends import make_propagator
from nvos.temporal.flow import FlowSettings
from nvos.temporal.propagate import (
    SOURCE_KEYFRAME,
    SOURCE_PROPAGATED,
    FlowPropagator,
    Keyframe,
    NonePropagator,
    dense_table,
    dense_targets,
    video_frame_source,
)

SETTINGS = FlowSettings(preset="medium", max_side=320)
EMPTY = np.zeros((HEIGHT, WIDTH), bool)


class SceneSource:
    """A frame source over the synthetic scene that records what it was asked for and gave."""

    def __init__(self) -> None:
        self.requests: list[list[int]] = []
        self.given: list[int] = []

    def __call__(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.requests.append(list(indices))
        for index in indices:
            self.given.append(index)
            yield index, scene_frame(index)


def keyframe(t: int, score: float, mask: np.ndarray | None = None) -> Keyframe:
    masks = np.stack([square_mask(t) if mask is None else mask, EMPTY])  # phrase 1 absent
    return Keyframe.from_masks(t, masks, np.array([score, 0.1]))


def test_flow_propagates_between_and_beyond_keyframes() -> None:
    keys = [keyframe(4, 0.8), keyframe(14, 0.4)]
    source = SceneSource()
    dense = list(FlowPropagator(SETTINGS).propagate(keys, range(0, 20, 1), source))
    assert [f.frame_index for f in dense] == list(range(20))
    assert source.requests == [list(range(20))]  # one ascending pass over the frames
    sources = {f.frame_index: f.source for f in dense}
    assert sources[4] == sources[14] == SOURCE_KEYFRAME
    assert [i for i, s in sources.items() if s == SOURCE_PROPAGATED] == [
        i for i in range(20) if i not in (4, 14)
    ]
    by_frame = {f.frame_index: f for f in dense}
    np.testing.assert_array_equal(by_frame[4].masks, keys[0].masks())
    # Scores blend by temporal distance; outside the keyframes they are the nearest one's.
    assert by_frame[9].scores[0] == pytest.approx(0.6)
    assert by_frame[6].scores[0] == pytest.approx(0.8 * 0.8 + 0.4 * 0.2)
    assert by_frame[0].scores[0] == pytest.approx(0.8)
    assert by_frame[19].scores[0] == pytest.approx(0.4)
    for frame in dense:
        truth = square_mask(frame.frame_index)
        nearest = 4 if frame.frame_index <= 9 else 14
        assert iou(frame.masks[0], truth) >= 0.75, frame.frame_index
        if frame.source == SOURCE_PROPAGATED:  # better than copying the nearest keyframe's mask
            assert iou(frame.masks[0], truth) > iou(square_mask(nearest), truth)
        assert not frame.masks[1].any()  # absent at both ends: absent throughout


def test_flow_streams_frames() -> None:
    """After the last keyframe each frame is yielded as soon as it is decoded; between two
    keyframes, frames wait only for the next keyframe."""
    source = SceneSource()
    yielded_after: dict[int, int] = {}
    for frame in FlowPropagator(SETTINGS).propagate([keyframe(2, 1.0)], range(0, 9), source):
        yielded_after[frame.frame_index] = source.given[-1]
    assert yielded_after == {0: 2, 1: 2, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8}


def test_absent_keyframe_fades_the_object_out() -> None:
    keys = [keyframe(2, 0.8), keyframe(12, 0.2, mask=EMPTY)]
    propagated = FlowPropagator(SETTINGS).propagate(keys, range(2, 13), SceneSource())
    dense = {f.frame_index: f for f in propagated}
    assert iou(dense[4].masks[0], square_mask(4)) >= 0.75
    assert not dense[10].masks[0].any()
    assert not dense[12].masks[0].any()


def test_targets_subsample_and_keyframes_are_always_included() -> None:
    source = SceneSource()
    keys = [keyframe(3, 0.5), keyframe(9, 0.5)]
    dense = list(FlowPropagator(SETTINGS).propagate(keys, [0, 6, 12], source))
    assert [f.frame_index for f in dense] == [0, 3, 6, 9, 12]
    assert source.requests == [[0, 3, 6, 9, 12]]
    assert iou(dense[2].masks[0], square_mask(6)) >= 0.75


def test_none_backend_gives_the_keyframes_only() -> None:
    keys = [keyframe(7, 0.3), keyframe(2, 0.9)]
    dense = list(NonePropagator().propagate(keys, range(20), None))
    assert [(f.frame_index, f.source) for f in dense] == [(2, "keyframe"), (7, "keyframe")]
    assert dense[0].scores.tolist() == pytest.approx([0.9, 0.1])


def test_bad_keyframes_and_sources_are_named() -> None:
    propagator = FlowPropagator(SETTINGS)
    with pytest.raises(ValueError, match="no keyframes"):
        list(propagator.propagate([], range(3), SceneSource()))
    with pytest.raises(ValueError, match="duplicate keyframes"):
        list(propagator.propagate([keyframe(1, 0.5), keyframe(1, 0.5)], range(3), SceneSource()))
    bad = Keyframe.from_masks(3, np.zeros((2, 10, 10), bool), np.zeros(2))
    with pytest.raises(ValueError, match="keyframe 3: 2 masks of 10x10, unlike keyframe 1's"):
        list(propagator.propagate([keyframe(1, 0.5), bad], range(3), SceneSource()))
    with pytest.raises(ValueError, match="keyframe 4: masks must be bool"):
        Keyframe.from_masks(4, np.zeros((2, 10, 10), np.uint8), np.zeros(2))

    def short_source(indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        yield indices[0], scene_frame(indices[0])

    with pytest.raises(ValueError, match="ended before frame 1"):
        list(propagator.propagate([keyframe(0, 0.5)], range(3), short_source))

    def skipping_source(indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices[::2]:
            yield index, scene_frame(index)

    with pytest.raises(ValueError, match="gave frame 2, expected 1"):
        list(propagator.propagate([keyframe(0, 0.5)], range(3), skipping_source))
    with pytest.raises(ValueError, match="unknown propagation backend 'optical'"):
        make_propagator("optical")


def test_make_propagator() -> None:
    assert isinstance(make_propagator("none"), NonePropagator)
    flow = make_propagator("flow", {"preset": "fast", "max_side": 200})
    assert isinstance(flow, FlowPropagator) and flow.settings == FlowSettings("fast", 200)
    with pytest.raises(ValueError, match=r"backend 'flow': unknown settings \['presets'\]"):
        make_propagator("flow", {"presets": "fast"})


def test_dense_table_rows_round_trip(tmp_path: Path) -> None:
    keys = [keyframe(1, 0.7), keyframe(4, 0.5)]
    dense = list(FlowPropagator(SETTINGS).propagate(keys, range(0, 6), SceneSource()))
    table = dense_table("clip_a", [0, 3], ["5", None], dense)
    assert table.num_rows == 6 * 2
    path = tmp_path / "masks" / "flow" / "s00000.parquet"
    storage.write_table(table, path, "dense_masks", meta=storage.provenance("propagate"))
    back = storage.read_table(path, "dense_masks").to_pylist()
    assert {r["object_id"] for r in back if r["phrase_id"] == 3} == {None}
    row = next(r for r in back if r["frame_index"] == 2 and r["phrase_id"] == 0)
    assert row["source"] == "propagated"
    frame2 = next(f for f in dense if f.frame_index == 2)
    decoded = rle.decode(row["rle_counts"], row["height"], row["width"])
    np.testing.assert_array_equal(decoded, frame2.masks[0])
    with pytest.raises(ValueError, match="2 phrase ids but 1 object ids"):
        dense_table("clip_a", [0, 3], ["5"], dense)


def test_video_frame_source_decodes_resizes_and_converts(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(4):
        bgr = cv2.cvtColor(scene_frame(t), cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(folder / f"{t:03d}.png"), bgr)
    info = video.probe(str(folder))
    source = video_frame_source(info, HEIGHT // 2, WIDTH // 2)
    frames = list(source([1, 3]))
    assert [i for i, _ in frames] == [1, 3]
    expected = cv2.resize(scene_frame(3), (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(frames[1][1], expected)


def test_dense_targets_sample_the_window_at_fps() -> None:
    window = range(100, 130)  # one second at 30 fps
    assert dense_targets(window, 30.0) == list(window)
    assert dense_targets(window, 30.0, fps=60.0) == list(window)
    assert dense_targets(window, 30.0, fps=10.0) == list(range(100, 130, 3))
    assert dense_targets(window, 30.0, fps=4.0) == [100, 108, 115, 123]  # 0, 7.5, 15, 22.5 half up
    assert dense_targets(range(5, 5), 30.0, fps=4.0) == []
    with pytest.raises(ValueError, match="fps must be > 0"):
        dense_targets(window, 30.0, fps=0.0)


def test_provenance_names_backend_and_settings() -> None:
    assert NonePropagator().provenance() == {"backend": "none"}
    flow = FlowPropagator(FlowSettings("fast", 320)).provenance()
    assert flow == {"backend": "flow", "preset": "fast", "max_side": 320}


def test_sam2_backend_without_the_package_names_the_pip_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sam2", None)  # import sam2 now fails, installed or not
    with pytest.raises(ImportError, match=r"pip install --no-build-isolation sam2==1\.1\.0"):
        make_propagator("sam2", {"config": "configs/sam2.1/sam2.1_hiera_t.yaml"})


def test_flow_with_no_phrase_gives_empty_masks() -> None:
    keys = [Keyframe.from_masks(2, np.zeros((0, HEIGHT, WIDTH), bool), np.zeros(0))]
    dense = list(FlowPropagator(SETTINGS).propagate(keys, range(5), SceneSource()))
    assert [f.masks.shape for f in dense] == [(0, HEIGHT, WIDTH)] * 5
    assert dense_table("clip_a", [], [], dense).num_rows == 0
