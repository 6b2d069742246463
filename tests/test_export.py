"""DAVIS / VOST export: palette PNGs, labels, overlaps, resizing, layout of GT and results."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
import tables
from PIL import Image

from nvos import rle, storage
from nvos.evaluation.overlaps import ObjectMask, OverlapCounts, compose_labels, count_overlaps
from nvos.export import (
    ExportError,
    export_davis,
    frame_names,
    object_order,
    official_set,
    palette_png,
    voc_colormap,
)

GT_H, GT_W = 40, 60  # ground-truth resolution
PR_H, PR_W = 20, 30  # stored-frame / prediction resolution (half size)

CLIPS = [
    ("clip_a", "val", "The person puts the [pan]<2> next to the [red cup]<1> and the [pan]<2>."),
    ("clip_b", "test", "The person lifts the [knife]<7>."),
    ("clip_train", "train", "#C C opens the drawer"),
]


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """A boolean (h, w) mask with the rectangle [y0:y1, x0:x1] set."""
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def write_clips(path: Path) -> None:
    tables.write_clips(path, CLIPS)


GT_MASKS = {  # (clip, frame, object) -> GT mask at (GT_H, GT_W)
    ("clip_a", 10, "1"): box(GT_H, GT_W, 4, 20, 4, 24),
    ("clip_a", 10, "2"): box(GT_H, GT_W, 20, 36, 30, 56),
    ("clip_a", 20, "1"): box(GT_H, GT_W, 6, 22, 6, 26),
    ("clip_a", 20, "2"): box(GT_H, GT_W, 22, 38, 32, 58),
    ("clip_b", 5, "7"): box(GT_H, GT_W, 10, 30, 10, 50),
}


def write_annotations(path: Path) -> None:
    rows = sorted(GT_MASKS.items())
    storage.write_table(
        pa.table(
            {
                "clip_id": [k[0] for k, _ in rows],
                "frame_index": [k[1] for k, _ in rows],
                "object_id": [k[2] for k, _ in rows],
                "instance": [0] * len(rows),
                "height": [GT_H] * len(rows),
                "width": [GT_W] * len(rows),
                "rle_counts": [rle.encode(m) for _, m in rows],
            }
        ),
        path,
        "annotations",
    )


def write_predictions(path: Path, rows: list[tuple[str, int, str | None, int, float, np.ndarray]]):
    """rows: (clip, phrase_id, object_id, frame, score, mask (h, w))."""
    storage.write_table(
        pa.table(
            {
                "clip_id": [r[0] for r in rows],
                "phrase_id": [r[1] for r in rows],
                "object_id": [r[2] for r in rows],
                "frame_index": [r[3] for r in rows],
                "proposal_id": list(range(len(rows))),
                "score": [r[4] for r in rows],
                "height": [r[5].shape[0] for r in rows],
                "width": [r[5].shape[1] for r in rows],
                "rle_counts": [rle.encode(r[5]) for r in rows],
            }
        ),
        path,
        "predictions",
    )


PREDICTIONS = [  # at the stored-frame size; clip_a: phrase 0 = pan (2), 1 = cup (1), 2 = pan again
    ("clip_a", 0, "2", 10, 0.9, box(PR_H, PR_W, 10, 18, 15, 28)),
    ("clip_a", 1, "1", 10, 0.4, box(PR_H, PR_W, 2, 12, 2, 20)),  # overlaps the pan: pan wins
    ("clip_a", 2, "2", 10, 0.99, box(PR_H, PR_W, 0, 2, 0, 2)),  # later phrase of the pan: skipped
    ("clip_a", 1, "1", 20, 0.5, box(PR_H, PR_W, 3, 11, 3, 13)),  # no pan on frame 20
    ("clip_a", 0, None, 20, 0.5, box(PR_H, PR_W, 0, 5, 0, 5)),  # untagged: skipped
    ("clip_a", 0, "2", 99, 0.5, box(PR_H, PR_W, 0, 5, 0, 5)),  # not an annotated frame
    # clip_b has no prediction: its frame is written empty
]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "clips": tmp_path / "clips.parquet",
        "annotations": tmp_path / "annotations.parquet",
        "predictions": tmp_path / "predictions" / "rosa" / "s00000.parquet",
    }
    write_clips(paths["clips"])
    write_annotations(paths["annotations"])
    write_predictions(paths["predictions"], PREDICTIONS)
    return paths


def read_png(path: Path) -> tuple[str, np.ndarray, list[int]]:
    with Image.open(path) as image:
        return image.mode, np.array(image), image.getpalette() or []


def test_voc_colormap_matches_davis() -> None:
    cmap = voc_colormap(256)
    assert cmap.shape == (256, 3)
    assert cmap[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert len({tuple(c) for c in cmap}) == 256


def test_palette_png_round_trip() -> None:
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mode, values, palette = read_png_bytes(palette_png(labels))
    assert mode == "P"
    np.testing.assert_array_equal(values, labels)
    assert palette[: 3 * 256] == voc_colormap(256).ravel().tolist()


def read_png_bytes(data: bytes) -> tuple[str, np.ndarray, list[int]]:
    import io

    with Image.open(io.BytesIO(data)) as image:
        return image.mode, np.array(image), image.getpalette() or []


def test_object_order_by_first_appearance() -> None:
    assert object_order(CLIPS[0][2], {"1", "2", "9", "3"}) == ["2", "1", "3", "9"]
    assert object_order("no tags here", {"b", "a"}) == ["a", "b"]
    with pytest.raises(ExportError, match="clip 'x'"):
        object_order("a [broken<1>", set(), "x")


def test_frame_names_pad_and_sort() -> None:
    assert frame_names([3, 120]) == {3: "00003", 120: "00120"}
    names = frame_names([7, 123456])
    assert names == {7: "000007", 123456: "123456"}
    assert sorted(names.values()) == [names[7], names[123456]]


def test_compose_labels_overlap_rules() -> None:
    a, b = box(4, 4, 0, 3, 0, 3), box(4, 4, 1, 4, 1, 4)
    high_b = compose_labels([ObjectMask(1, 0.2, a), ObjectMask(2, 0.8, b)], 4, 4)
    assert high_b[1, 1] == 2 and high_b[0, 0] == 1 and high_b[3, 3] == 2
    high_a = compose_labels([ObjectMask(2, 0.2, b), ObjectMask(1, 0.8, a)], 4, 4)
    assert high_a[1, 1] == 1
    tie = compose_labels([ObjectMask(2, 0.5, b), ObjectMask(1, 0.5, a)], 4, 4)
    assert tie[2, 2] == 1  # equal scores: the lower label


def test_export_davis_predictions(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "davis"
    summary = export_davis(
        [world["predictions"]], world["clips"], world["annotations"], out, layout="davis"
    )
    mapping = json.loads((out / "object_ids.json").read_text())["sequences"]
    assert mapping["clip_a"]["labels"] == {"1": "2", "2": "1"}  # pan first in the narration
    assert mapping["clip_b"]["labels"] == {"1": "7"}
    assert "clip_train" not in mapping  # no annotations
    assert mapping["clip_a"]["frames"] == {"00010": 10, "00020": 20}

    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs == ["clip_a/00010.png", "clip_a/00020.png", "clip_b/00005.png"]
    label_of = {oid: int(label) for label, oid in mapping["clip_a"]["labels"].items()}

    mode, values, palette = read_png(out / "clip_a" / "00010.png")
    assert mode == "P" and values.shape == (GT_H, GT_W)
    assert palette[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    pan = cv2.resize(PREDICTIONS[0][5].astype(np.uint8), (GT_W, GT_H), cv2.INTER_NEAREST) > 0
    cup = cv2.resize(PREDICTIONS[1][5].astype(np.uint8), (GT_W, GT_H), cv2.INTER_NEAREST) > 0
    expected = np.zeros((GT_H, GT_W), np.uint8)
    expected[cup] = label_of["1"]
    expected[pan] = label_of["2"]  # higher score wins the overlap
    assert (pan & cup).any()
    np.testing.assert_array_equal(values, expected)

    _, values20, _ = read_png(out / "clip_a" / "00020.png")
    cup20 = cv2.resize(PREDICTIONS[3][5].astype(np.uint8), (GT_W, GT_H), cv2.INTER_NEAREST) > 0
    np.testing.assert_array_equal(values20, np.where(cup20, label_of["1"], 0))

    _, empty, _ = read_png(out / "clip_b" / "00005.png")
    assert not empty.any()

    assert summary.sequences == 2 and summary.frames == 3 and summary.objects == 3
    assert summary.empty_prediction_frames == 1
    assert summary.skipped_untagged_predictions == 1
    assert summary.skipped_secondary_phrase_predictions == 1
    assert summary.skipped_unannotated_frame_predictions == 1
    assert summary.overlaps.pixels == int((pan & cup).sum())
    assert summary.splits == {"test": 1, "val": 1}
    assert not (out / "Annotations").exists()


@pytest.mark.parametrize(
    ("layout", "gt_dir", "sets_dir"),
    [("davis", "Annotations/480p", "ImageSets/2017"), ("vost", "Annotations", "ImageSets")],
)
def test_export_ground_truth_layout(
    world: dict[str, Path], tmp_path: Path, layout: str, gt_dir: str, sets_dir: str
) -> None:
    out = tmp_path / layout
    summary = export_davis(
        [world["predictions"]],
        world["clips"],
        world["annotations"],
        out,
        layout=layout,
        with_gt=True,
        splits=["val"],
    )
    assert summary.sequences == 1 and summary.gt_frames == 2
    assert (out / sets_dir / "val.txt").read_text() == "clip_a\n"
    assert not (out / sets_dir / "test.txt").exists()
    mapping = json.loads((out / "object_ids.json").read_text())["sequences"]["clip_a"]["labels"]
    for frame in (10, 20):
        mode, values, _ = read_png(out / gt_dir / "clip_a" / f"{frame:05d}.png")
        assert mode == "P"
        expected = np.zeros((GT_H, GT_W), np.uint8)
        for label, object_id in sorted(mapping.items()):
            expected[GT_MASKS[("clip_a", frame, object_id)]] = int(label)
        np.testing.assert_array_equal(values, expected)
        assert (out / "clip_a" / f"{frame:05d}.png").exists()


def test_export_writes_jpegs_at_gt_size(world: dict[str, Path], tmp_path: Path) -> None:
    frames = tmp_path / "frames.parquet"
    rows = [("clip_a", 10, "annotated", 10), ("clip_a", 20, "annotated", 20)]
    rows += [("clip_b", 5, "annotated", 5), ("clip_a", 15, "sampled", 15)]
    tables.write_frames(frames, rows, PR_H, PR_W)
    out = tmp_path / "davis"
    summary = export_davis(
        [world["predictions"]],
        world["clips"],
        world["annotations"],
        out,
        with_gt=True,
        frames_paths=[frames],
    )
    jpgs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert jpgs == [
        "JPEGImages/480p/clip_a/00010.jpg",
        "JPEGImages/480p/clip_a/00020.jpg",
        "JPEGImages/480p/clip_b/00005.jpg",
    ]
    assert cv2.imread(str(out / jpgs[0])).shape == (GT_H, GT_W, 3)
    assert summary.jpeg_frames == 3 and summary.missing_jpeg_frames == 0


def test_export_rejects_bad_input(world: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="layout"):
        export_davis([], world["clips"], world["annotations"], tmp_path / "x", layout="coco")
    stray = tmp_path / "stray.parquet"
    write_predictions(stray, [("nope", 0, "1", 1, 1.0, box(2, 2, 0, 1, 0, 1))])
    with pytest.raises(ExportError, match="'nope'"):
        export_davis([stray], world["clips"], world["annotations"], tmp_path / "y")


@pytest.mark.parametrize(
    ("layout", "sets_dir", "test_set"),
    [("davis", "ImageSets/2017", "test-dev"), ("vost", "ImageSets", "test")],
)
def test_image_sets_use_names_the_official_scripts_accept(
    world: dict[str, Path], tmp_path: Path, layout: str, sets_dir: str, test_set: str
) -> None:
    out = tmp_path / layout
    summary = export_davis(
        [world["predictions"]], world["clips"], world["annotations"], out, layout, with_gt=True
    )
    assert sorted(p.name for p in (out / sets_dir).iterdir()) == sorted(
        ["val.txt", f"{test_set}.txt"]
    )
    assert (out / sets_dir / f"{test_set}.txt").read_text() == "clip_b\n"
    assert summary.sets == {"test": test_set, "val": "val"}
    assert json.loads((out / "object_ids.json").read_text())["sets"] == summary.sets
    assert official_set("davis", "train") == "train"
    with pytest.raises(ExportError, match=r"split 'holdout'.* \['train', 'val', 'test'\]"):
        official_set("vost", "holdout")


def test_a_split_without_an_official_set_stops_before_writing(
    world: dict[str, Path], tmp_path: Path
) -> None:
    tables.write_clips(world["clips"], [("clip_a", "holdout", CLIPS[0][2])])
    out = tmp_path / "davis"
    with pytest.raises(ExportError, match="split 'holdout'"):
        export_davis([], world["clips"], world["annotations"], out, with_gt=True)
    assert not out.exists()
    summary = export_davis([], world["clips"], world["annotations"], out)  # no sets: no problem
    assert summary.sets == {} and summary.sequences == 1


def test_stale_official_result_csvs_are_removed(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "davis"
    out.mkdir()
    stale = ["global_results-val.csv", "per-sequence_results-val.csv"]
    for name in [*stale, "notes.csv"]:
        (out / name).write_text("J&F-Mean\n0.999\n")
    summary = export_davis([world["predictions"]], world["clips"], world["annotations"], out)
    assert summary.removed_result_csvs == stale
    assert sorted(p.name for p in out.glob("*.csv")) == ["notes.csv"]


def test_overlaps_count_object_frames_that_lose_pixels(world: dict[str, Path]) -> None:
    counts = OverlapCounts()
    inner, outer = box(8, 8, 2, 4, 2, 4), box(8, 8, 0, 6, 0, 6)
    masks = [ObjectMask(1, 0.2, inner), ObjectMask(2, 0.9, outer), ObjectMask(3, 0.1, inner)]
    labels = compose_labels(masks, 8, 8)
    count_overlaps(masks, labels, counts, "seq/00001")
    assert (counts.object_frames, counts.lost_object_frames) == (2, 2)
    assert counts.pixels == 4
    assert counts.examples == [
        "seq/00001 label 1: 0 of 4 pixels",
        "seq/00001 label 3: 0 of 4 pixels",
    ]


def test_export_counts_the_cup_losing_pixels_to_the_pan(
    world: dict[str, Path], tmp_path: Path
) -> None:
    summary = export_davis(
        [world["predictions"]], world["clips"], world["annotations"], tmp_path / "d"
    )
    assert summary.overlaps.object_frames == 1 and summary.overlaps.lost_object_frames == 0
    assert summary.overlaps.examples[0].startswith("clip_a/00010 label 2: ")


def test_evaluation_counts_the_overlaps_the_export_loses(
    world: dict[str, Path], tmp_path: Path
) -> None:
    from nvos.evaluation.stage import evaluate_method

    export = export_davis([world["predictions"]], world["clips"], world["annotations"], tmp_path)
    summary = evaluate_method(
        "rosa", [world["predictions"]], world["clips"], world["annotations"], "val",
        tmp_path / "metrics", seen_unseen=False,
    )  # fmt: skip
    overlaps = summary["overlaps"]
    # frame 10 as in the PNG: the cup (label 2) loses the pixels the pan claims with a higher
    # score; on frame 20 evaluation also scores the row without an object id as the pan (its
    # phrase 0), which the export passes over, so the cup loses pixels there too
    assert export.overlaps.examples == ["clip_a/00010 label 2: 680 of 720 pixels"]
    assert overlaps["examples"] == [
        "clip_a/10 label 2: 680 of 720 pixels",
        "clip_a/20 label 2: 304 of 320 pixels",
    ]
    assert (overlaps["object_frames"], overlaps["lost_object_frames"]) == (2, 0)
    assert overlaps["pixels"] == export.overlaps.pixels + 16
