"""``nvos import vost``: JPEGImages/, Annotations/, ImageSets/ + a narration table → a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from importer_fixtures import (
    CUT,
    PEEL,
    TEAR,
    VOST_NARRATIONS,
    VOST_SIZE,
    VOST_STEP,
    decode,
    manifest_lines,
    run_import,
    skipped,
    vost_labels,
    write_png,
    write_vost,
)
from PIL import Image

from nvos.importers.common import open_manifest, summary_path
from nvos.importers.vost import import_vost
from nvos.manifest import validate_manifest

SPLITS = ["train", "val", "test"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vost")
    fixture = write_vost(root)
    out = root / "out" / "manifest.jsonl"
    assert run_import("vost", fixture.argv(out, "--fps", "30")) == 0
    return out


def test_import_writes_a_valid_manifest_at_the_annotated_positions(imported: Path) -> None:
    records = {r.clip_id: r for r in validate_manifest(imported, SPLITS)}
    assert list(records) == [CUT, TEAR, "555_tear_paper_b"]  # table order
    cut = manifest_lines(imported)[CUT]
    assert cut["video"] == f"../vost/JPEGImages/{CUT}" and cut["fps"] == 30.0
    assert cut["split"] == "val"  # from ImageSets/val.txt
    assert [a["frame_index"] for a in cut["annotations"]] == [0, VOST_STEP]
    assert (records[CUT].height, records[CUT].width) == VOST_SIZE
    assert records[CUT].fps == 30.0


def test_cut_pieces_with_one_label_stay_one_mask_and_ignore_is_background(imported: Path) -> None:
    cut = manifest_lines(imported)[CUT]
    after = cut["annotations"][1]["objects"]
    carrot = decode(after["1"])  # one RLE: VOST gives both pieces the carrot's label
    labels = vost_labels(CUT, 1)
    assert np.array_equal(carrot, labels == 1)
    assert carrot.sum() == 2 * 20 * 12 and not carrot[30:34].any()  # the 255 band is in no mask
    assert np.array_equal(decode(after["2"]), labels == 2)
    assert set(after) == {"1", "2"}  # the hand (label 3) is not tagged


def test_separately_labelled_pieces_are_instances(imported: Path) -> None:
    tear = manifest_lines(imported)[TEAR]
    before, after = (a["objects"]["1"] for a in tear["annotations"])
    assert isinstance(before, dict)  # only label 1 on the first frame: one mask
    assert isinstance(after, list) and len(after) == 2  # labels 1 and 4: two instances
    labels = vost_labels(TEAR, 1)
    assert [np.array_equal(decode(m), labels == v) for m, v in zip(after, (1, 4), strict=True)] == [
        True,
        True,
    ]
    untagged = manifest_lines(imported)["555_tear_paper_b"]
    assert untagged["split"] == "train" and "annotations" not in untagged


def test_summary_lists_untagged_objects_and_sequences_without_narration(imported: Path) -> None:
    summary = json.loads(summary_path(imported).read_text())
    assert summary["clips"] == 3 and summary["per_split"] == {"train": 2, "val": 1}
    assert skipped(imported) == [
        ("line 2 (3161_cut_carrot): label 3", "VOST object not tagged in the narration"),
        (f"{PEEL} (val)", "sequence has no narration row"),
    ]


def test_ignore_pixels_are_counted(tmp_path: Path) -> None:
    fixture = write_vost(tmp_path)
    with open_manifest(tmp_path / "m.jsonl", "vost") as writer:
        counts = import_vost(fixture.root, fixture.narrations, writer)
    assert (counts.frames, counts.pixels, counts.annotated_frames) == (1, 4 * 30, 4)
    assert writer.summary.to_dict()["notes"] == [
        "ignore label 255: 1 of 4 annotated frames, 120 pixels (background in every mask)"
    ]
    assert "fps" not in manifest_lines(tmp_path / "m.jsonl")[CUT]  # no --fps: the manifest default


def test_bad_rows_sequences_and_pngs_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    rows = [
        {"sequence": CUT, "clip_id": "ok", "narration": "cut the [carrot]<1>"},
        {"sequence": "", "clip_id": "noseq", "narration": "cut"},
        {"sequence": CUT, "clip_id": "badtag", "narration": "cut the [carrot<1>"},
        {
            "sequence": CUT,
            "clip_id": "badgroup",
            "narration": "the [carrot]<1>",
            "instances": "1=a",
        },
        {
            "sequence": CUT,
            "clip_id": "othergroup",
            "narration": "the [carrot]<1>",
            "instances": "2=2",
        },
        {"sequence": CUT, "clip_id": "name", "narration": "the [carrot]<carrot>"},
        {"sequence": CUT, "clip_id": "absent", "narration": "the [pot]<7>"},
        {"sequence": "999_unknown", "clip_id": "nosplit", "narration": "stir"},
        {"sequence": "999_unknown", "clip_id": "nojpeg", "narration": "stir", "split": "val"},
        {"sequence": PEEL, "clip_id": "rgb", "narration": "peel the [potato]<1>"},
        {"sequence": TEAR, "clip_id": "orphan", "narration": "tear the [paper]<1>"},
        {"sequence": "888_size", "clip_id": "size", "narration": "the [x]<1>", "split": "val"},
    ]
    fixture = write_vost(tmp_path, narrations=rows)
    annotations = fixture.root / "Annotations"
    Image.new("RGB", (VOST_SIZE[1], VOST_SIZE[0])).save(annotations / PEEL / "00000.png")
    write_png(annotations / TEAR / "00099.png", vost_labels(TEAR, 0))
    (fixture.root / "JPEGImages" / "888_size").mkdir()
    Image.new("RGB", (32, 32)).save(fixture.root / "JPEGImages" / "888_size" / "00000.jpg")
    write_png(annotations / "888_size" / "00000.png", np.ones(VOST_SIZE, np.uint8))
    out = tmp_path / "m.jsonl"
    assert run_import("vost", fixture.argv(out)) == 0
    assert list(manifest_lines(out)) == ["ok"]
    found = dict(skipped(out))
    assert found == {
        "line 2 (ok): label 2": "VOST object not tagged in the narration",
        "line 2 (ok): label 3": "VOST object not tagged in the narration",
        "line 3 (noseq)": "narration row without sequence / narration",
        "line 4 (badtag): column 16: '<' inside the phrase opened at column 9": (
            "malformed narration tag"
        ),
        "line 5 (badgroup): '1=a' is not <tag>=<label>+<label>...": "malformed instances column",
        "line 6 (othergroup): '2=2' names <2>, which the narration does not tag": (
            "malformed instances column"
        ),
        "line 7 (name): <carrot>": "tag is not a VOST object label and has no instances entry",
        "line 8 (absent): <7>": "tagged object has no pixel in any annotated frame",
        "line 9 (nosplit): 999_unknown": "sequence in no ImageSets list and no split given",
        f"line 10 (nojpeg): {fixture.root}/JPEGImages/999_unknown": (
            "no JPEG frames for the sequence"
        ),
        f"line 11 (rgb): {PEEL}/00000.png has mode RGB": (
            "annotation PNG is not an indexed (palette) image"
        ),
        f"line 12 (orphan): {TEAR}/00099.png": "annotation PNG has no JPEG frame of that name",
        "line 13 (size): 888_size masks 64x48, frames 32x32": (
            "annotation size differs from the frame size"
        ),
    }


def test_format_errors_stop_the_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = write_vost(tmp_path)
    out = tmp_path / "m.jsonl"
    (fixture.root / "ImageSets" / "test.txt").write_text(f"{CUT}\n")
    assert run_import("vost", fixture.argv(out)) == 1
    assert (
        f"ImageSets/val.txt:1: sequence {CUT} is also in ImageSets/test.txt"
        in capsys.readouterr().err
    )
    (fixture.root / "ImageSets" / "test.txt").unlink()
    fixture.narrations.write_text("seq,narration\n")
    assert run_import("vost", fixture.argv(out)) == 1
    err = capsys.readouterr().err
    assert "vost_narrations.csv:1: VOST narration table lacks column(s) sequence" in err
    assert (
        run_import(
            "vost", ["--root", str(tmp_path / "nope"), "--narrations", "x", "--out", str(out)]
        )
        == 1
    )
    assert "nope: VOST root folder not found" in capsys.readouterr().err
    assert not out.exists()


def test_several_narrations_of_one_sequence_are_separate_clips(tmp_path: Path) -> None:
    rows = [dict(VOST_NARRATIONS[0], clip_id=f"c{i}") for i in range(3)]
    fixture = write_vost(tmp_path, narrations=rows)
    out = tmp_path / "m.jsonl"
    assert run_import("vost", fixture.argv(out)) == 0
    clips = manifest_lines(out)
    assert list(clips) == ["c0", "c1", "c2"]
    assert clips["c0"]["annotations"] == clips["c2"]["annotations"]
