"""The propagation job (nvos.temporal.dense) and its family member (nvos.methods.propagated):
keyframe rows in, dense masks and annotated-frame predictions out, leave-one-out, accounting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tables import write_clips
from temporal_scenes import HEIGHT, WIDTH, iou, scene_frame, square_mask
from test_oracle import write_annotations

from nvos import rle, storage
from nvos.checks import config_problems
from nvos.config import load_config
from nvos.layout import RunLayout
from nvos.methods import member, predict_method_shard
from nvos.methods.rows import PredictionRows
from nvos.temporal.backends import make_propagator
from nvos.temporal.dense import PropagateSettings, propagate_shard
from nvos.temporal.propagate import Keyframe, video_frame_source
from nvos.video import probe

FRAMES = 13  # the scene's frames 0..12 at 10 fps
ANNOTATED = (0, 6, 12)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunLayout:
    """A run folder: clip ``c`` (test, a frame folder of the sliding-square scene, annotated on
    frames 0, 6, 12) and clip ``t`` (train, no keyframes)."""
    root = tmp_path_factory.mktemp("run")
    folder = root / "video"
    folder.mkdir()
    for t in range(FRAMES):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(scene_frame(t), cv2.COLOR_RGB2BGR))
    layout = RunLayout(str(root))
    write_clips(Path(layout.clips), [("c", "test", "a [square]<o1>"), ("t", "train", "a square")])
    table = pq.read_table(layout.clips)
    table = table.set_column(1, "video", pa.array([str(folder)] * 2))
    table = table.set_column(3, "end_sec", pa.array([None, None], pa.float64()))
    pq.write_table(table, layout.clips)
    write_annotations(
        Path(layout.annotations), [("c", t, "o1", 0, square_mask(t)) for t in ANNOTATED]
    )
    return layout


def write_keyframes(path: str, frames: dict[int, np.ndarray]) -> None:
    """Keyframe method rows of clip ``c``, phrase 0 (object o1): frame -> mask."""
    rows = PredictionRows()
    for frame, mask in frames.items():
        rows.add("c", 0, "o1", frame, 0, 0.5, HEIGHT, WIDTH, rle.encode(mask))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rows.write(path, {})


def masks_by_frame(path: str) -> dict[int, tuple[str, np.ndarray]]:
    rows = pq.read_table(path).to_pylist()
    return {
        r["frame_index"]: (
            r.get("source", ""),
            rle.decode(r["rle_counts"], r["height"], r["width"]),
        )
        for r in rows
    }


def propagate(run: RunLayout, keyframes: dict[int, np.ndarray], leave_one_out: bool, name: str):
    write_keyframes(run.predictions("kf", "s00000"), keyframes)
    summary = propagate_shard(
        run.clips,
        run.annotations,
        run.predictions("kf", "s00000"),
        "s00000",
        make_propagator("flow", {"preset": "medium", "max_side": 320}),
        PropagateSettings(fps=None, leave_one_out=leave_one_out),
        run.masks(name, "s00000"),
        run.predictions(name, "s00000"),
        name,
        folder_fps=10.0,
    )
    return (
        summary,
        masks_by_frame(run.masks(name, "s00000")),
        masks_by_frame(run.predictions(name, "s00000")),
    )


def test_oracle_keyframes_leave_one_out(run: RunLayout) -> None:
    """Keyframes on the annotated frames (as the oracle's): every frame of the window gets a
    mask; each annotated frame is predicted from the other keyframes, exactly what propagating
    those alone gives there, and close to the truth."""
    truth = {t: square_mask(t) for t in ANNOTATED}
    summary, dense, predicted = propagate(run, truth, True, "kf+flow")
    assert sorted(dense) == list(range(FRAMES))
    assert {t for t, (source, _) in dense.items() if source == "keyframe"} == set(ANNOTATED)
    assert all(np.array_equal(dense[t][1], truth[t]) for t in ANNOTATED)
    assert sorted(predicted) == list(ANNOTATED)
    assert (summary.left_out, summary.left_out_alone, summary.clips) == (3, 0, 1)
    assert summary.ledger.clips_out == {"c"}
    assert [(s.clip_id, s.reason) for s in summary.ledger.skips] == [("t", "no_keyframes")]
    # frame 6 from keyframes 0 and 12 only: the same masks as propagating those two
    info = probe(str(Path(run.root) / "video"), 10.0)
    two = [Keyframe.from_masks(t, truth[t][None], np.ones(1)) for t in (0, 12)]
    alone = {
        d.frame_index: d.masks[0]
        for d in make_propagator("flow", {"preset": "medium", "max_side": 320}).propagate(
            two, range(FRAMES), video_frame_source(info, HEIGHT, WIDTH)
        )
    }
    assert np.array_equal(predicted[6][1], alone[6])
    assert not np.array_equal(predicted[6][1], truth[6])  # not its own keyframe
    for t in ANNOTATED:
        assert iou(predicted[t][1], truth[t]) > 0.7, t
    table = storage.read_table(run.predictions("kf+flow", "s00000"), "predictions")
    assert set(table.column("proposal_id").to_pylist()) == {-1}


def test_without_leave_one_out_keyframes_are_the_predictions(run: RunLayout) -> None:
    truth = {t: square_mask(t) for t in ANNOTATED}
    summary, _, predicted = propagate(run, truth, False, "kf+flow")
    assert summary.left_out == 0
    assert all(np.array_equal(predicted[t][1], truth[t]) for t in ANNOTATED)


def test_keyframes_between_annotated_frames(run: RunLayout) -> None:
    """Keyframes away from the annotated frames (the honest protocol): every annotated frame is
    propagated, within tolerance of the truth; leave-one-out changes nothing."""
    keys = {t: square_mask(t) for t in (3, 9)}
    summary, dense, predicted = propagate(run, keys, True, "kf+flow")
    assert summary.left_out == 0
    assert {t: s for t, (s, _) in dense.items() if s == "keyframe"} == {
        3: "keyframe",
        9: "keyframe",
    }
    for t in ANNOTATED:
        assert iou(predicted[t][1], square_mask(t)) > 0.7, t


def test_backend_none_keeps_the_keyframes_only(run: RunLayout) -> None:
    """Backend none: the dense masks and predictions are the keyframes (no leave-one-out)."""
    truth = {t: square_mask(t) for t in ANNOTATED}
    write_keyframes(run.predictions("kf", "s00000"), truth)
    summary = propagate_shard(
        run.clips, run.annotations, run.predictions("kf", "s00000"), "s00000",
        make_propagator("none"), PropagateSettings(), run.masks("kf+none", "s00000"),
        run.predictions("kf+none", "s00000"), "kf+none", folder_fps=10.0,
    )  # fmt: skip
    assert (summary.dense_frames, summary.left_out) == (len(ANNOTATED), 0)
    predicted = masks_by_frame(run.predictions("kf+none", "s00000"))
    assert all(np.array_equal(predicted[t][1], truth[t]) for t in ANNOTATED)


def test_a_lone_keyframe_left_out_is_a_frame_skip(run: RunLayout) -> None:
    summary, dense, predicted = propagate(run, {6: square_mask(6)}, True, "kf+flow")
    assert sorted(predicted) == [0, 12]
    assert [(s.reason, s.frame_index) for s in summary.ledger.skips if s.clip_id == "c"] == [
        ("only_keyframe_left_out", 6)
    ]
    assert len(dense) == FRAMES


def test_member_names_params_and_job(run: RunLayout) -> None:
    """The family provides <keyframe method>+<backend>; the job writes both files at the layout's
    paths; only sam2 claims a GPU; an unknown keyframe method is a config problem naming it."""
    config = load_config()
    config["temporal"]["propagate"].update(methods=["oracle", "sam_clip"], backend="flow")
    found = member(config, "oracle+flow")
    assert found.name == "propagated"
    assert found.names(config) == ["oracle+flow", "sam_clip+flow"]
    assert found.inputs(config, run, "sam_clip+flow", "s00000")["keyframes"] == run.predictions(
        "sam_clip", "s00000"
    )
    assert found.gpus(config) == 0
    params = found.params(config, "oracle+flow")
    assert params["propagate"]["backend_settings"] == config["temporal"]["propagate"]["flow"]
    write_keyframes(run.predictions("oracle", "s00000"), {t: square_mask(t) for t in ANNOTATED})
    summary = predict_method_shard(config, run, "oracle+flow", "s00000")
    assert summary.predictions == len(ANNOTATED)
    assert Path(run.masks("oracle+flow", "s00000")).is_file()
    assert Path(run.skipped("predictions/oracle+flow", "s00000")).is_file()
    record = storage.read_provenance(run.masks("oracle+flow", "s00000"))
    assert record["config"]["backend"] == "flow" and record["keyframe_method"] == "oracle"
    config["temporal"]["propagate"].update(methods=["rosa_typo"], backend="sam2")
    assert found.gpus(config) == 1
    problems = config_problems(config)
    assert any("unknown keyframe method 'rosa_typo'" in p for p in problems)
    assert any(p.startswith("temporal.propagate.sam2.config") for p in problems)
