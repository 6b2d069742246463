"""``nvos import visor``: VISOR sparse JSONs + frames + a tagged narration table → a manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from importer_fixtures import (
    FULL_HD,
    P01,
    SEQ1,
    VISOR_FRAMES,
    VISOR_NARRATIONS,
    decode,
    entity,
    filled,
    frame_name,
    manifest_lines,
    rect,
    run_import,
    skipped,
    visor_frame,
    write_visor,
    write_visor_json,
)

from nvos.importers.common import summary_path
from nvos.importers.polygons import PolygonError, entity_polygons, rasterise, resize_labels
from nvos.manifest import validate_manifest

SPLITS = ["train", "val", "test"]


# ------------------------------------------------------------------------------------ polygons


def test_polygons_truncate_fill_inclusively_and_later_entities_cover_earlier() -> None:
    hand = entity_polygons([rect(10.9, 20.2, 30.7, 40.99)])
    spoon = entity_polygons([rect(25, 25, 50, 35)])
    labels = rasterise([hand, spoon], size=(60, 80))
    assert np.array_equal(labels == 2, filled((60, 80), (25, 25, 50, 35)))
    expected_hand = filled((60, 80), (10, 20, 30, 40)) & ~filled((60, 80), (25, 25, 50, 35))
    assert np.array_equal(labels == 1, expected_hand)


def test_polygons_of_one_entity_fill_even_odd_and_empty_polygon_is_the_origin() -> None:
    # one fillPoly call per entity, as VISOR-VOS does: the overlap of two polygons is a hole
    two = entity_polygons([rect(0, 0, 20, 20), rect(10, 10, 30, 30)])
    labels = rasterise([two], size=(40, 40))
    assert labels[5, 5] == 1 and labels[25, 25] == 1 and labels[15, 15] == 0
    empty = rasterise([entity_polygons([[]])], size=(8, 8))
    assert np.argwhere(empty == 1).tolist() == [[0, 0]]
    assert rasterise([entity_polygons([])], size=(8, 8)).max() == 0


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ({"x": 1}, "segments must be a list of polygons, got dict"),
        ([[[1, 2], [3]]], "segments[0][1] is not an [x, y] number pair: [3]"),
        ([[[1, 2]], "poly"], "segments[1] must be a list of [x, y] points, got str"),
        ([[[1, "2"]]], "segments[0][0] is not an [x, y] number pair"),
        ([[[1, float("nan")]]], "segments[0][0] is not an [x, y] number pair"),
    ],
)
def test_malformed_polygons_are_named(segments: Any, message: str) -> None:
    with pytest.raises(PolygonError) as error:
        entity_polygons(segments)
    assert message in str(error.value)


def test_label_maps_resize_with_nearest_neighbour() -> None:
    labels = rasterise([entity_polygons([rect(100, 100, 700, 500)])])
    small = resize_labels(labels, (480, 854))
    assert small.shape == (480, 854)
    reference = cv2.resize(labels.astype(np.uint8), (854, 480), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(small, reference)


# --------------------------------------------------------------------------------- the import


@pytest.fixture(scope="module")
def full_hd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture imported at VISOR's own resolution (frames linked, not copied)."""
    root = tmp_path_factory.mktemp("visor_full")
    fixture = write_visor(root)
    out = root / "out" / "manifest.jsonl"
    assert run_import("visor", fixture.argv(out)) == 0
    return out


def test_import_writes_a_valid_manifest_with_exact_masks(full_hd: Path) -> None:
    records = {r.clip_id: r for r in validate_manifest(full_hd, SPLITS)}
    assert sorted(records) == ["P01_01_c1", "P01_01_c2", "P01_01_c3", "P01_01_c4", "P02_03_c1"]
    clips = manifest_lines(full_hd)
    c1 = clips["P01_01_c1"]
    # frames 100, 250, 400 of P01_01 are the first three of its folder (900, 1000 follow)
    assert (c1["video"], c1["fps"], c1["start_sec"], c1["end_sec"]) == (
        "manifest_frames/P01_01",
        1.0,
        0.0,
        3.0,
    )
    assert [a["frame_index"] for a in c1["annotations"]] == [0, 1, 2]
    first = c1["annotations"][0]["objects"]
    pan = filled(FULL_HD, (800, 400, 1400, 900))
    assert np.array_equal(decode(first["pan"]), pan)
    # the pan is drawn after the spoon, so it covers the spoon where they overlap
    assert np.array_equal(
        decode(first["wooden_spoon"]), filled(FULL_HD, (500, 300, 900, 500)) & ~pan
    )
    assert not decode(c1["annotations"][2]["objects"]["wooden_spoon"]).any()  # absent on 400
    assert c1["split"] == "train"  # the JSON's folder
    assert c1["exhaustive"] == {"pan": False, "wooden_spoon": True}
    frames = sorted(p.name for p in (full_hd.parent / "manifest_frames" / P01).iterdir())
    assert frames == [frame_name(P01, n) for n in (100, 250, 400, 900, 1000)]
    assert (full_hd.parent / "manifest_frames" / P01 / frames[0]).is_symlink()


def test_labels_mask_ids_and_names_resolve_to_entities(full_hd: Path) -> None:
    clips = manifest_lines(full_hd)
    # <2> = onion (2nd of left hand, onion, pan, wooden spoon): two masks → a list of instances
    c2 = clips["P01_01_c2"]
    assert (c2["start_sec"], c2["end_sec"]) == (1.0, 2.0)
    onions = c2["annotations"][0]["objects"]["2"]
    assert [decode(m).sum() for m in onions] == [101 * 101, 101 * 101]
    assert np.array_equal(decode(onions[1]), filled(FULL_HD, (1700, 100, 1800, 200)))
    assert np.array_equal(
        decode(c2["annotations"][0]["objects"]["3"]), filled(FULL_HD, (800, 400, 1400, 900))
    )
    # <d900> is the knife's mask id on frame 900: the knife on every frame of the clip
    c3 = clips["P01_01_c3"]
    knife = [decode(a["objects"]["d900"]) for a in c3["annotations"]]
    assert np.array_equal(knife[1], filled(FULL_HD, (320, 600, 720, 660)))
    assert c3["split"] == "val" and c3["exhaustive"] == {"d900": True}  # the board lacks a flag
    # labels of P02_03_seq_00001: right hand, sponge, tap
    p2 = clips["P02_03_c1"]
    assert np.array_equal(
        decode(p2["annotations"][0]["objects"]["3"]), filled(FULL_HD, (900, 50, 1100, 300))
    )
    assert p2["split"] == "val"
    assert "annotations" not in clips["P01_01_c4"]  # untagged narration: frames only


def test_summary_and_skip_list_name_every_untagged_entity(full_hd: Path) -> None:
    summary = json.loads(summary_path(full_hd).read_text())
    assert summary["clips"] == 5 and summary["per_split"] == {"train": 3, "val": 2}
    assert summary["skipped_by_reason"] == {"VISOR entity not tagged in the narration": 4}
    assert ("P01_01_c2: wooden spoon", "VISOR entity not tagged in the narration") in skipped(
        full_hd
    )


def test_size_option_resizes_masks_nearest_and_writes_frames(tmp_path: Path) -> None:
    fixture = write_visor(tmp_path)
    out = tmp_path / "m.jsonl"
    assert (
        run_import(
            "visor", fixture.argv(out, "--size", "854x480", "--frames-out", str(tmp_path / "f"))
        )
        == 0
    )
    records = validate_manifest(out, SPLITS)
    assert {(r.height, r.width) for r in records} == {(480, 854)}
    c1 = manifest_lines(out)["P01_01_c1"]
    assert c1["video"] == "f/P01_01"
    full = filled(FULL_HD, (500, 300, 900, 500)) & ~filled(FULL_HD, (800, 400, 1400, 900))
    reference = cv2.resize(full.astype(np.uint8), (854, 480), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(
        decode(c1["annotations"][0]["objects"]["wooden_spoon"]), reference.astype(bool)
    )
    image = tmp_path / "f" / P01 / frame_name(P01, 100)
    assert not image.is_symlink() and cv2.imread(str(image)).shape == (480, 854, 3)


def test_data_mapping_file_gives_the_labels(tmp_path: Path) -> None:
    rows = [dict(VISOR_NARRATIONS[1], narration="put the [onions]<2> beside the [pan]<1>")]
    fixture = write_visor(tmp_path, narrations=rows)
    mapping = tmp_path / "val_data_mapping.json"
    mapping.write_text(json.dumps({SEQ1: {"1": "pan", "2": "onion"}}))
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out, "--data-mapping", str(mapping))) == 0
    objects = manifest_lines(out)["P01_01_c2"]["annotations"][0]["objects"]
    assert len(objects["2"]) == 2 and decode(objects["1"]).sum() == 601 * 501


def test_bad_rows_and_tags_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    base = {"video_id": P01, "start_frame": 100, "stop_frame": 400, "split": "train"}
    rows = [
        dict(base, clip_id="ok", narration="stir the [pan]<pan>"),
        dict(base, clip_id="", narration="stir the [pan]<pan>"),
        dict(base, clip_id="float", start_frame="1.5", narration="stir"),
        dict(base, clip_id="reversed", start_frame=500, narration="stir"),
        dict(base, clip_id="badtag", narration="stir the [pan<pan>"),
        dict(base, clip_id="novideo", video_id="P99_99", narration="stir"),
        dict(base, clip_id="noframes", start_frame=401, stop_frame=899, narration="stir"),
        dict(base, clip_id="spans", stop_frame=1000, narration="stir the [pan]<3>"),
        dict(base, clip_id="range", narration="stir the [pan]<9>"),
        dict(base, clip_id="nothing", narration="open the [fridge]<fridge>"),
        dict(base, clip_id="twice", narration="the [pan]<pan> and [it]<3>"),
        dict(base, clip_id="absent", start_frame=250, stop_frame=250, narration="the [hand]<1>"),
    ]
    fixture = write_visor(tmp_path, narrations=rows)
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out)) == 0
    assert list(manifest_lines(out)) == ["ok"]
    reasons = {
        re.match(r"line \d+ \((.*?)\)", item).group(1): reason
        for item, reason in skipped(out)
        if item.startswith("line ")
    }
    assert reasons == {
        "?": "narration row without clip_id",
        "float": "start_frame / stop_frame is not an integer",
        "reversed": "start_frame after stop_frame",
        "badtag": "malformed narration tag",
        "novideo": "no VISOR annotation JSON for the video",
        "noframes": "no annotated VISOR frame in the clip window",
        "spans": "label tag on a clip that spans several subsequences",
        "range": "label tag out of range",
        "nothing": "tag matches no VISOR entity of the clip's frames",
        "twice": "two tags name the same VISOR entity",
        "absent": "tagged entity has no mask in the clip",
    }
    items = [item for item, _ in skipped(out)]
    assert "line 10 (range): <9> but P01_01_seq_00001 has labels 1..4" in items
    assert "line 12 (twice): <pan> and <3> are both 'pan'" in items


def test_missing_and_wrong_size_images_skip_their_frame_only(tmp_path: Path) -> None:
    fixture = write_visor(tmp_path)
    (fixture.frames / P01 / frame_name(P01, 400)).unlink()
    cv2.imwrite(str(fixture.frames / P01 / frame_name(P01, 250)), np.zeros((480, 854, 3), np.uint8))
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out)) == 0
    c1 = manifest_lines(out)["P01_01_c1"]
    assert [a["frame_index"] for a in c1["annotations"]] == [0]  # only frame 100 is left
    assert (c1["start_sec"], c1["end_sec"]) == (0.0, 1.0)
    assert "P01_01_c2" not in manifest_lines(out)
    found = skipped(out)
    assert (f"{P01} {frame_name(P01, 400)}", "frame image not found") in found
    assert any(
        reason == "frame image is not 1920x1080 (resize with --size)" and item.endswith("854x480")
        for item, reason in found
    )
    assert ("line 3 (P01_01_c2)", "no frame image of the clip could be used") in found
    validate_manifest(out, SPLITS)


def test_a_malformed_entity_skips_the_clips_that_use_its_frame(tmp_path: Path) -> None:
    fixture = write_visor(tmp_path, narrations=VISOR_NARRATIONS[:3])
    entries = [visor_frame(P01, n, seq, list(ents)) for n, seq, ents in VISOR_FRAMES[P01]]
    entries[1]["annotations"].append(entity("x", "lid", [[10, 10], [20, "y"]]))
    write_visor_json(fixture.annotations / "train" / "P01_01.json", entries)
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out)) == 0
    assert list(manifest_lines(out)) == ["P01_01_c3"]  # frames 900, 1000 are fine
    where = (
        "P01_01.json P01_01_frame_0000000250.jpg: video_annotations[1].annotations[4]"
        ".segments[0][1] is not an [x, y] number pair: [20, 'y']"
    )
    reason = "malformed VISOR annotation on a frame of the clip"
    assert skipped(out) == [
        (f"line 2 (P01_01_c1): {where}", reason),
        (f"line 3 (P01_01_c2): {where}", reason),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "P01_01.json: not a JSON file"),
        (
            '{"annotations": []}',
            "P01_01.json: not a VISOR annotation file (no top-level 'video_annotations' list)",
        ),
        (
            '{"video_annotations": [{"image": {}}]}',
            "P01_01.json: video_annotations[0]: missing image.name",
        ),
        (
            '{"video_annotations": [{"image": {"name": "P01_01_0001.jpg"}}]}',
            "video_annotations[0]: image.name 'P01_01_0001.jpg' has no frame number",
        ),
    ],
)
def test_a_json_not_in_the_visor_format_stops_the_import(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = write_visor(tmp_path)
    (fixture.annotations / "train" / "P01_01.json").write_text(content)
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out)) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_repeated_frame_and_a_second_json_of_a_video_are_format_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = write_visor(tmp_path)
    entry = visor_frame(P01, 100, SEQ1, [])
    write_visor_json(fixture.annotations / "train" / "P01_01.json", [entry, entry])
    assert run_import("visor", fixture.argv(tmp_path / "m.jsonl")) == 1
    assert (
        "video_annotations[1]: frame P01_01_frame_0000000100.jpg appears twice"
        in capsys.readouterr().err
    )
    write_visor_json(fixture.annotations / "val" / "P01_01.json", [entry])
    assert run_import("visor", fixture.argv(tmp_path / "m.jsonl")) == 1
    assert "a second annotation JSON of video P01_01" in capsys.readouterr().err


def test_a_table_without_its_columns_is_a_format_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = write_visor(tmp_path)
    fixture.narrations.write_text("clip_id,video,narration\nc,P01_01,stir\n")
    assert run_import("visor", fixture.argv(tmp_path / "m.jsonl")) == 1
    err = capsys.readouterr().err
    assert (
        "narrations.csv:1: VISOR narration table lacks column(s) video_id, start_frame, stop_frame"
        in err
    )


def test_reimport_replaces_the_frame_folders(tmp_path: Path) -> None:
    fixture = write_visor(tmp_path)
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out)) == 0
    assert run_import("visor", fixture.argv(out, "--size", "192x108")) == 0
    folder = tmp_path / "m_frames"
    assert sorted(p.name for p in folder.iterdir()) == ["P01_01", "P02_03"]  # no temporary left
    image = folder / P01 / frame_name(P01, 100)
    assert not image.is_symlink() and cv2.imread(str(image)).shape == (108, 192, 3)
    assert {(r.height, r.width) for r in validate_manifest(out, SPLITS)} == {(108, 192)}


def test_ambiguous_names_unmapped_subsequences_and_unreadable_images(tmp_path: Path) -> None:
    frames = {
        P01: [
            (
                100,
                SEQ1,
                [
                    entity("a", "chopping board", rect(0, 0, 99, 99)),
                    entity("b", "Chopping-Board", rect(200, 0, 299, 99)),
                    entity("c", "pan", rect(400, 0, 499, 99)),
                ],
            ),
            (200, SEQ1, [entity("d", "pan", rect(400, 0, 499, 99))]),
        ]
    }
    base = {"video_id": P01, "start_frame": 100, "stop_frame": 100, "split": "val"}
    rows = [
        dict(base, clip_id="ok", narration="wash the [pan]<pan>"),
        dict(base, clip_id="board", narration="wipe the [board]<chopping_board>"),
        dict(base, clip_id="label", narration="wipe the [pan]<1>"),
        dict(base, clip_id="broken", start_frame=200, stop_frame=200, narration="the [pan]<pan>"),
    ]
    fixture = write_visor(tmp_path, narrations=rows, frames=frames)
    (fixture.frames / P01 / frame_name(P01, 200)).write_bytes(b"not a jpeg")
    # a dense interpolation file and the frame mapping beside the JSONs are not read
    (fixture.annotations / "train" / "P01_01_interpolations.json").write_text("{broken")
    (fixture.annotations / "frame_mapping.json").write_text("{}")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"P09_09_seq_00001": {"1": "pan"}}))
    out = tmp_path / "m.jsonl"
    assert run_import("visor", fixture.argv(out, "--data-mapping", str(mapping))) == 0
    assert list(manifest_lines(out)) == ["ok"]
    found = skipped(out)
    assert (
        "line 3 (board): <chopping_board> = Chopping-Board, chopping board",
        "tag names several VISOR entities",
    ) in found
    assert (
        "line 4 (label): P01_01_seq_00001",
        "subsequence not in the --data-mapping file",
    ) in found
    assert any(
        r == "frame image cannot be read" and i.endswith(frame_name(P01, 200)) for i, r in found
    )
    assert ("line 5 (broken)", "no frame image of the clip could be used") in found
