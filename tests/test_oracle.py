"""The oracle ("SAM upper bound"): best-IoU proposal per tagged object and annotated frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tables import write_clips

from nvos import rle, storage
from nvos.evaluation import ResolutionError
from nvos.oracle import build_oracle
from nvos.proposals.stage import read_proposals

H, W = 40, 60


def box(y0: int, y1: int, x0: int, x1: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def write_annotations(path: Path, rows: list[tuple[str, int, str, int, np.ndarray]]) -> None:
    """rows: (clip_id, frame_index, object_id, instance, mask (H, W))."""
    table = pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "frame_index": [r[1] for r in rows],
            "object_id": [r[2] for r in rows],
            "instance": pa.array([r[3] for r in rows], pa.int32()),
            "height": pa.array([r[4].shape[0] for r in rows], pa.int32()),
            "width": pa.array([r[4].shape[1] for r in rows], pa.int32()),
            "rle_counts": [rle.encode(r[4]) for r in rows],
        }
    )
    storage.write_table(table, path, "annotations")


def write_proposals(path: Path, frames: dict[tuple[str, int], list[np.ndarray]]) -> None:
    """frames: (clip_id, frame_index) -> proposal masks, best first."""
    columns: dict[str, list] = {name: [] for name in storage.SCHEMAS["proposals"].names}
    for (clip_id, frame_index), masks in frames.items():
        for k, mask in enumerate(masks):
            code = rle.encode(mask)
            columns["clip_id"].append(clip_id)
            columns["frame_index"].append(frame_index)
            columns["proposal_id"].append(k)
            columns["height"].append(mask.shape[0])
            columns["width"].append(mask.shape[1])
            columns["rle_counts"].append(code)
            columns["bbox"].append(list(rle.bbox(code, *mask.shape)))
            columns["area"].append(int(mask.sum()))
            columns["predicted_iou"].append(0.9)
            columns["stability_score"].append(0.9)
    storage.write_table(pa.table(columns), path, "proposals")


def read_rows(path: Path) -> list[dict]:
    return storage.read_table(path, "predictions").to_pylist()


def test_oracle_picks_the_best_iou_proposal(tmp_path: Path) -> None:
    gt = box(10, 30, 10, 30)  # 400 px
    partial = box(10, 30, 10, 20)  # inside gt: IoU 200 / 400 = 0.5
    close = box(12, 30, 10, 30)  # inside gt: IoU 360 / 400 = 0.9
    disjoint = box(0, 5, 40, 60)  # IoU 0
    other_gt = box(0, 5, 40, 55)  # object 7: disjoint best, IoU 75 / 100 = 0.75
    write_clips(
        tmp_path / "clips.parquet",
        [
            ("c_train", "train", "The person picks up the knife."),
            ("c_val", "val", "The [pan]<3> is under the [lid]<7>; lift [it]<3>."),
        ],
    )
    write_annotations(
        tmp_path / "ann.parquet",
        [
            ("c_val", 4, "3", 0, gt),
            ("c_val", 4, "7", 0, other_gt),
            ("c_val", 9, "3", 0, gt),  # object 7 absent at frame 9 (empty ground truth)
            ("c_val", 12, "3", 0, gt),  # frame 12 gets no proposal
        ],
    )
    write_proposals(
        tmp_path / "props.parquet",
        {
            ("c_train", 0): [gt],
            ("c_val", 4): [partial, disjoint, close],
            ("c_val", 9): [disjoint, close, partial],
        },
    )
    out = tmp_path / "oracle.parquet"
    summary = build_oracle(
        tmp_path / "clips.parquet",
        tmp_path / "ann.parquet",
        tmp_path / "props.parquet",
        "s00000",
        out,
    )
    rows = {(r["phrase_id"], r["frame_index"]): r for r in read_rows(out)}
    # object 3 is tagged by phrases 0 and 2: one row per phrase, the same proposal
    for phrase_id in (0, 2):
        assert rows[(phrase_id, 4)]["proposal_id"] == 2
        assert rows[(phrase_id, 4)]["score"] == pytest.approx(0.9)
        assert rows[(phrase_id, 4)]["object_id"] == "3"
        assert rows[(phrase_id, 9)]["proposal_id"] == 1
    assert rows[(1, 4)]["proposal_id"] == 1
    assert rows[(1, 4)]["score"] == pytest.approx(0.75)
    # absent object: every proposal has IoU 0, the first-ranked one is kept
    assert rows[(1, 9)]["proposal_id"] == 0
    assert rows[(1, 9)]["score"] == 0.0
    # the stored mask is the chosen proposal's own RLE
    stored = read_proposals(tmp_path / "props.parquet")[("c_val", 4)]
    assert rows[(0, 4)]["rle_counts"] == stored.rle_counts[2]
    assert set(rows) == {(0, 4), (1, 4), (2, 4), (0, 9), (1, 9), (2, 9)}
    assert all(r["clip_id"] == "c_val" for r in rows.values())
    # frame 12: no proposal -> no row, counted; the training clip is skipped and counted
    assert summary.frames_without_proposals == (("c_val", 12),)
    assert summary.clips_untagged == 1
    assert summary.frames == 3
    assert summary.object_frames == 4
    assert summary.rows == 6
    record = storage.read_provenance(out)
    assert record["stage"] == "oracle"
    assert record["frames_without_proposals"] == [["c_val", 12]]
    assert record["clips_untagged"] == 1


def test_oracle_compares_at_ground_truth_resolution(tmp_path: Path) -> None:
    """Proposals at half resolution are upsampled (nearest) to the ground truth's size."""
    gt = box(10, 31, 10, 30)  # odd height: at half resolution no proposal matches exactly
    small = (H // 2, W // 2)
    low_a = box(5, 15, 5, 15, small)  # upsampled: rows 10..29, cols 10..29 -> IoU 400 / 420
    low_b = box(5, 16, 5, 15, small)  # upsampled: rows 10..31 -> IoU 420 / 440
    write_clips(tmp_path / "clips.parquet", [("c", "test", "the [cup]<1>")])
    write_annotations(tmp_path / "ann.parquet", [("c", 0, "1", 0, gt)])
    write_proposals(tmp_path / "props.parquet", {("c", 0): [low_a, low_b]})
    out = tmp_path / "oracle.parquet"
    build_oracle(
        tmp_path / "clips.parquet",
        tmp_path / "ann.parquet",
        tmp_path / "props.parquet",
        "s00000",
        out,
    )
    (row,) = read_rows(out)
    assert row["proposal_id"] == 1
    assert row["score"] == pytest.approx(420 / 440)
    assert (row["height"], row["width"]) == small  # stored at the proposals' resolution


def test_oracle_rejects_proposals_of_another_aspect_ratio(tmp_path: Path) -> None:
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [cup]<1>")])
    write_annotations(tmp_path / "ann.parquet", [("c", 0, "1", 0, box(0, 5, 0, 5))])
    write_proposals(tmp_path / "props.parquet", {("c", 0): [box(0, 5, 0, 5, (40, 40))]})
    with pytest.raises(ResolutionError, match="clip 'c' frame 0"):
        build_oracle(
            tmp_path / "clips.parquet",
            tmp_path / "ann.parquet",
            tmp_path / "props.parquet",
            "s00000",
            tmp_path / "oracle.parquet",
        )
    assert not (tmp_path / "oracle.parquet").exists()


def test_oracle_uses_the_union_of_instances(tmp_path: Path) -> None:
    left, right = box(0, 10, 0, 10), box(0, 10, 20, 30)
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [onion]<2>")])
    write_annotations(tmp_path / "ann.parquet", [("c", 0, "2", 0, left), ("c", 0, "2", 1, right)])
    write_proposals(tmp_path / "props.parquet", {("c", 0): [left, left | right]})
    out = tmp_path / "oracle.parquet"
    build_oracle(
        tmp_path / "clips.parquet",
        tmp_path / "ann.parquet",
        tmp_path / "props.parquet",
        "s00000",
        out,
    )
    (row,) = read_rows(out)
    assert (row["proposal_id"], row["score"]) == (1, 1.0)
