"""Temporal decoding in the workflow: the links stage, the <base>+temporal predictions and the
selection of their settings on val (nvos.temporal.links / stage / select)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from tables import write_clips
from temporal_scenes import HEIGHT, WIDTH, scene_frame, square_mask

from nvos import rle, storage
from nvos.methods.rows import ScoreRows
from nvos.temporal.decode import DecodeSettings
from nvos.temporal.links import LinkSettings, build_links, read_links
from nvos.temporal.select import SelectInputs, select_settings
from nvos.temporal.stage import temporal_predictions

H, W = 24, 32


def box(x0: int, x1: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[4:20, x0:x1] = True
    return mask


OBJECT, DISTRACTOR = box(2, 12), box(18, 30)


def write_frames(path: Path, rows: list[tuple[str, int, str, np.ndarray]]) -> None:
    """``frames`` rows (clip_id, frame_index, role, RGB image)."""
    jpegs = [cv2.imencode(".jpg", r[3][:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
             for r in rows]  # fmt: skip
    table = pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "frame_index": [r[1] for r in rows],
            "time_sec": [r[1] / 10 for r in rows],
            "height": [r[3].shape[0] for r in rows],
            "width": [r[3].shape[1] for r in rows],
            "role": [r[2] for r in rows],
            "jpeg": jpegs,
        }
    )
    storage.write_table(table, path, "frames")


def write_proposals(path: Path, frames: dict[tuple[str, int], list[np.ndarray]]) -> None:
    """``proposals`` rows: per (clip, frame) its masks, ids 0..K-1 in the given order."""
    rows: dict[str, list] = {n: [] for n in storage.SCHEMAS["proposals"].names}
    for (clip_id, frame_index), masks in frames.items():
        for k, mask in enumerate(masks):
            values = (clip_id, frame_index, k, mask.shape[0], mask.shape[1], rle.encode(mask),
                      [0.0, 0.0, 1.0, 1.0], int(mask.sum()), 1.0 - k / 10, 1.0)  # fmt: skip
            for name, value in zip(rows, values, strict=True):
                rows[name].append(value)
    storage.write_table(pa.table(rows, schema=storage.SCHEMAS["proposals"]), path, "proposals")


def test_links_stage_follows_the_moving_square(tmp_path: Path) -> None:
    """Keyframes 0, 2, 4 of the sliding square (6 px per keyframe): its proposal links to itself,
    not to a static distractor; one-keyframe and train clips get no row."""
    write_clips(tmp_path / "clips.parquet", [("a", "val", "x"), ("b", "test", "x"),
                                             ("c", "train", "x")])  # fmt: skip
    static = np.zeros((HEIGHT, WIDTH), bool)
    static[170:220, 200:280] = True
    frames, proposals = [], {}
    for t in (0, 2, 4):
        frames.append(("a", t, "annotated" if t != 2 else "sampled", scene_frame(t)))
        proposals[("a", t)] = [square_mask(t), static]
    frames += [("b", 0, "annotated", scene_frame(0)), ("c", 0, "annotated", scene_frame(0)),
               ("c", 2, "annotated", scene_frame(2))]  # fmt: skip
    proposals[("b", 0)] = [square_mask(0)]
    proposals[("c", 0)] = proposals[("c", 2)] = [static]
    write_frames(tmp_path / "frames.parquet", frames)
    write_proposals(tmp_path / "proposals.parquet", proposals)
    out = tmp_path / "links.parquet"
    summary = build_links(tmp_path / "frames.parquet", tmp_path / "proposals.parquet",
                          tmp_path / "clips.parquet", "s00000", out,
                          LinkSettings(preset="medium"), ["val", "test"])  # fmt: skip
    assert summary.clips == 2 and summary.pairs == 2
    links = read_links([out], ["a", "b", "c"])
    assert set(links) == {"a"} and sorted(links["a"]) == [(0, 2), (2, 4)]
    for matrix in links["a"].values():
        assert matrix.shape == (2, 2)
        assert matrix[0, 0] > 0.8 and matrix[1, 1] > 0.8  # each to itself
        assert matrix[0, 1] == 0 and matrix[1, 0] == 0
    assert storage.read_provenance(out)["keyframes"] == {"a": 3, "b": 1}


def write_scores(path: Path, rows: list[tuple[str, int, list[float]]]) -> None:
    """``region_scores`` of phrase 0 (object "1"): (clip, frame, scores of proposals 0..K-1)."""
    scores = ScoreRows()
    for clip_id, frame, values in rows:
        scores.add(clip_id, 0, "1", frame, list(range(len(values))), values)
    scores.write(path, {})


def write_links(path: Path, clips: list[str], frames: list[int]) -> None:
    """Identity links (proposal k of a keyframe is proposal k of the next)."""
    rows: dict[str, list] = {n: [] for n in storage.SCHEMAS["links"].names}
    for clip_id in clips:
        for a, b in zip(frames, frames[1:], strict=False):
            for name, value in zip(rows, (clip_id, a, b, 2, 2, [1.0, 0.0, 0.0, 1.0]), strict=True):
                rows[name].append(value)
    storage.write_table(pa.table(rows, schema=storage.SCHEMAS["links"]), path, "links")


FRAMES = [0, 3, 6]
#: Per keyframe: the object's score, the distractor's. The distractor wins on frame 3 only.
FLIP = [[0.9, 0.1], [0.4, 0.6], [0.9, 0.1]]


def make_run(root: Path, test_scores: list[list[float]] | None = None) -> SelectInputs:
    """A val clip "v" and a test clip "t", 3 annotated keyframes each with proposals
    [OBJECT, DISTRACTOR]; the truth is OBJECT everywhere; scores FLIP (test: ``test_scores``)."""
    write_clips(root / "clips.parquet", [("v", "val", "the [cup]<1>"), ("t", "test", "a [cup]<1>")])
    blank = np.zeros((H, W, 3), np.uint8)
    write_frames(
        root / "frames.parquet", [(c, f, "annotated", blank) for c in "vt" for f in FRAMES]
    )
    write_proposals(root / "proposals.parquet",
                    {(c, f): [OBJECT, DISTRACTOR] for c in "vt" for f in FRAMES})  # fmt: skip
    rows = [("v", f, s) for f, s in zip(FRAMES, FLIP, strict=True)]
    rows += [("t", f, s) for f, s in zip(FRAMES, test_scores or FLIP, strict=True)]
    write_scores(root / "scores.parquet", rows)
    write_links(root / "links.parquet", ["v", "t"], FRAMES)
    annotations = {
        "clip_id": [c for c in "vt" for _ in FRAMES],
        "frame_index": FRAMES * 2,
        "object_id": ["1"] * 6,
        "instance": pa.array([0] * 6, pa.int32()),
        "height": pa.array([H] * 6, pa.int32()),
        "width": pa.array([W] * 6, pa.int32()),
        "rle_counts": [rle.encode(OBJECT)] * 6,
    }
    storage.write_table(pa.table(annotations), root / "annotations.parquet", "annotations")
    return SelectInputs([root / "scores.parquet"], [root / "links.parquet"],
                        [root / "proposals.parquet"], [root / "frames.parquet"],
                        root / "clips.parquet", root / "annotations.parquet")  # fmt: skip


def predict(root: Path, settings: DecodeSettings) -> list[dict]:
    out = root / "pred.parquet"
    summary = temporal_predictions(
        root / "scores.parquet", root / "links.parquet", root / "proposals.parquet",
        root / "frames.parquet", root / "clips.parquet", "s00000", out, settings, ["val"],
        "x+temporal",
    )  # fmt: skip
    assert summary.ledger.clips_out == {"v"}
    assert [(s.clip_id, s.reason) for s in summary.ledger.skips] == [("t", "split_not_predicted")]
    return storage.read_table(out, "predictions").to_pylist()


def test_the_link_term_keeps_the_object_and_absent_rows_are_empty_masks(tmp_path: Path) -> None:
    make_run(tmp_path)
    per_frame = predict(tmp_path, DecodeSettings(link_weight=0.0))
    assert [r["proposal_id"] for r in per_frame] == [0, 1, 0]  # the distractor on frame 3
    linked = predict(tmp_path, DecodeSettings(link_weight=1.0))
    assert [r["proposal_id"] for r in linked] == [0, 0, 0]
    assert [r["score"] for r in linked] == pytest.approx([0.9, 0.4, 0.9])
    assert linked[1]["rle_counts"] == rle.encode(OBJECT)
    # ABSENT where the best score (0.6) is below the threshold: an empty mask, score 0
    absent = predict(tmp_path, DecodeSettings(link_weight=0.0, absent_score=0.7))
    assert [r["proposal_id"] for r in absent] == [0, -1, 0]
    assert rle.decode(absent[1]["rle_counts"], H, W).sum() == 0 and absent[1]["score"] == 0.0
    assert (absent[1]["height"], absent[1]["width"]) == (H, W)


def test_selection_chooses_on_val_and_never_reads_the_test_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link term fixes val's distractor frame, so a weight > 0 wins; changing every test
    score and test annotation changes nothing, and only val annotations are requested."""
    import nvos.temporal.select as select

    requested: list[list[str]] = []
    read = select.read_annotations

    def spy(path, clip_ids=None):  # type: ignore[no-untyped-def]
        requested.append(sorted(clip_ids))
        return read(path, clip_ids)

    monkeypatch.setattr(select, "read_annotations", spy)
    results = []
    for name, test_scores in (("a", None), ("b", [[0.1, 0.9]] * 3)):
        root = tmp_path / name
        root.mkdir()
        inputs = make_run(root, test_scores)
        if name == "b":  # the test clip's truth is now the distractor
            table = storage.read_table(root / "annotations.parquet")
            counts = [rle.encode(DISTRACTOR) if c == "t" else r for c, r in
                      zip(table["clip_id"].to_pylist(), table["rle_counts"].to_pylist(),
                          strict=True)]  # fmt: skip
            table = table.set_column(6, "rle_counts", pa.array(counts, pa.binary()))
            storage.write_table(table, root / "annotations.parquet", "annotations")
        selection = select_settings(inputs, [0.0, 0.05, 1.0], [None, 0.5], root / "s.json",
                                    root / "grid.csv", "x+temporal")  # fmt: skip
        assert json.loads((root / "s.json").read_text())["link_weight"] == selection["link_weight"]
        del selection["provenance"]
        results.append((selection, (root / "grid.csv").read_text()))
    assert requested == [["v"], ["v"]]
    assert results[0] == results[1]
    selection = results[0][0]
    assert selection["link_weight"] == 1.0 and selection["absent_quantile"] is None
    assert selection["val"]["J"] == pytest.approx(1.0)
    grid = {(p["link_weight"], p["absent_quantile"]): p for p in selection["grid"]}
    assert len(grid) == 6 and sum(p["chosen"] for p in grid.values()) == 1
    assert grid[(0.0, None)]["J"] == pytest.approx(2 / 3)  # per frame: the distractor once
    assert grid[(0.05, None)]["J"] == pytest.approx(2 / 3)  # too weak to overrule 0.6 vs 0.4
    assert grid[(0.0, None)]["flips"] == 1.0  # object -> distractor -> object: both pairs
    assert grid[(1.0, None)]["flips"] == 0.0
    # quantile 0.5 of val's best scores (0.9, 0.6, 0.9) is 0.9: frame 3 becomes ABSENT (J 0)
    assert grid[(0.0, 0.5)]["absent_score"] == pytest.approx(0.9)
    assert grid[(0.0, 0.5)]["J"] == pytest.approx(2 / 3)
