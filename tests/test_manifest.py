"""Manifest validation: good manifests resolve to ClipRecords; every kind of bad line is reported
with its line number, clip id and reason, all lines at once."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nvos import rle
from nvos.manifest import ManifestError, summary, validate_manifest

H, W, N_FRAMES, FPS = 48, 64, 20, 10.0
SPLITS = ("train", "val", "test")


def make_video(path: Path, n_frames: int = N_FRAMES, fps: float = FPS) -> Path:
    """A tiny mp4v video of (H, W) frames whose grey level encodes the frame index."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(np.full((H, W, 3), 10 * i, np.uint8))
    writer.release()
    return path


def make_folder(path: Path, n_frames: int = 5) -> Path:
    """A folder of PNG frames of size (H, W)."""
    path.mkdir()
    for i in range(n_frames):
        cv2.imwrite(str(path / f"frame_{i:04d}.png"), np.full((H, W, 3), 20 * i, np.uint8))
    return path


def box_mask(y0: int, x0: int, y1: int, x1: int, height: int = H, width: int = W) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rle_json(mask: np.ndarray) -> dict[str, Any]:
    return {"size": list(mask.shape), "counts": rle.encode(mask).decode("ascii")}


ONION = box_mask(5, 5, 20, 20)
KNIFE_A = box_mask(30, 30, 40, 40)
KNIFE_B = box_mask(0, 50, 10, 60)


def good_clip(clip_id: str = "c0") -> dict[str, Any]:
    """A valid annotated clip: window [0.5, 1.5) s = frames 5..14; object 2 has two instances."""
    return {
        "clip_id": clip_id,
        "video": "videos/v.mp4",
        "start_sec": 0.5,
        "end_sec": 1.5,
        "split": "val",
        "narration": "cut [the onion]<1> with a [knife]<2>",
        "annotations": [
            {
                "frame_index": 9,
                "objects": {"2": [rle_json(KNIFE_A), rle_json(KNIFE_B)], "1": rle_json(ONION)},
            },
            {"frame_index": 6, "objects": {"1": rle_json(ONION), "2": rle_json(KNIFE_B)}},
        ],
    }


def write_manifest(folder: Path, lines: list[dict[str, Any] | str], name: str = "m.jsonl") -> Path:
    path = folder / name
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "v.mp4")
    return tmp_path


def test_good_manifest_resolves_records(folder: Path) -> None:
    untagged = {"clip_id": "t0", "video": "videos/v.mp4", "narration": "C cuts", "split": "train"}
    path = write_manifest(folder, [good_clip(), "", "   ", untagged])
    records = validate_manifest(path, SPLITS)
    assert [r.clip_id for r in records] == ["c0", "t0"]
    assert [r.line for r in records] == [1, 4]
    assert [r.index for r in records] == [0, 1]
    first, second = records
    assert first.video == str((folder / "videos" / "v.mp4").resolve())
    assert (first.start_sec, first.end_sec, first.fps) == (0.5, 1.5, FPS)
    assert (first.height, first.width) == (H, W)
    assert first.window == range(5, 15)
    assert first.narration == good_clip()["narration"]
    assert [(a.frame_index, a.object_id, a.instance) for a in first.annotations] == [
        (6, "1", 0),
        (6, "2", 0),
        (9, "1", 0),
        (9, "2", 0),
        (9, "2", 1),
    ]
    expected = {(6, "1", 0): ONION, (6, "2", 0): KNIFE_B, (9, "1", 0): ONION}
    expected |= {(9, "2", 0): KNIFE_A, (9, "2", 1): KNIFE_B}
    for a in first.annotations:
        assert (a.height, a.width) == (H, W)
        np.testing.assert_array_equal(
            rle.decode(a.counts, a.height, a.width),
            expected[a.frame_index, a.object_id, a.instance],
        )
    # defaults: the whole video
    assert (second.start_sec, second.end_sec, second.window) == (0.0, 2.0, range(0, N_FRAMES))
    assert second.annotations == ()


def test_frame_folder_with_and_without_fps(folder: Path) -> None:
    make_folder(folder / "frames")
    with_fps = {"clip_id": "f0", "video": "frames", "narration": "x", "split": "test", "fps": 5}
    default = {"clip_id": "f1", "video": "frames", "narration": "x", "split": "test"}
    windowed = dict(with_fps, clip_id="f2", fps=10, start_sec=0.2, end_sec=0.4)
    path = write_manifest(folder, [with_fps, default, windowed])
    a, b, c = validate_manifest(path, SPLITS, folder_fps=25.0)
    assert (a.fps, a.end_sec, a.window) == (5.0, 1.0, range(0, 5))
    assert (b.fps, b.end_sec, b.window) == (25.0, pytest.approx(5 / 25.0), range(0, 5))
    assert (c.fps, c.start_sec, c.end_sec, c.window) == (10.0, 0.2, 0.4, range(2, 4))
    assert (c.height, c.width) == (H, W)
    assert c.video == str((folder / "frames").resolve())


def test_null_optional_keys_mean_absent(folder: Path) -> None:
    line = {"clip_id": "n", "video": "videos/v.mp4", "narration": "x", "split": "val"}
    line |= {"start_sec": None, "end_sec": None, "fps": None, "annotations": None}
    (record,) = validate_manifest(write_manifest(folder, [line]), SPLITS)
    assert (record.start_sec, record.end_sec, record.annotations) == (0.0, 2.0, ())


def test_end_within_one_frame_of_the_duration_is_clamped(folder: Path) -> None:
    line = dict(good_clip(), start_sec=1.0, end_sec=2.05, annotations=[])
    line["narration"] = "cut"
    (record,) = validate_manifest(write_manifest(folder, [line]), SPLITS)
    assert record.end_sec == 2.0
    assert record.window == range(10, 20)


def test_summary_counts(folder: Path) -> None:
    other = dict(good_clip("c1"), split="test")
    untagged = {"clip_id": "t0", "video": "videos/v.mp4", "narration": "C cuts", "split": "train"}
    records = validate_manifest(write_manifest(folder, [good_clip(), other, untagged]), SPLITS)
    counts = summary(records)
    assert counts["clips"] == 3
    assert counts["videos"] == 1
    assert counts["annotated_frames"] == 4
    assert counts["objects"] == 4
    assert counts["masks"] == 10
    assert counts["per_split"]["train"] == {
        "clips": 1,
        "annotated_frames": 0,
        "objects": 0,
        "masks": 0,
    }
    assert counts["per_split"]["val"]["masks"] == 5
    json.dumps(counts)  # serialisable for the CLI


def _set(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(line: dict[str, Any]) -> dict[str, Any]:
        line.update(changes)
        return line

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(line: dict[str, Any]) -> dict[str, Any]:
        del line[key]
        return line

    return mutate


def _annotation(k: int, **changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(line: dict[str, Any]) -> dict[str, Any]:
        line["annotations"][k].update(changes)
        return line

    return mutate


def _object(k: int, object_id: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(line: dict[str, Any]) -> dict[str, Any]:
        line["annotations"][k]["objects"][object_id] = value
        return line

    return mutate


def _duplicate_frame(line: dict[str, Any]) -> dict[str, Any]:
    line["annotations"].append(copy.deepcopy(line["annotations"][1]))
    return line


def _unreadable_video(line: dict[str, Any]) -> dict[str, Any]:
    line["video"] = "videos/broken.mp4"
    return line


BAD_LINES: list[tuple[str, Any, str | None, str]] = [
    # (case, mutation or raw line, clip id in the message, reason substring)
    ("invalid json", '{"clip_id": "c1", "video": ', None, "invalid JSON: "),
    ("not an object", "[1, 2, 3]", None, "a line must be a JSON object, got list"),
    ("missing key", _drop("video"), "c1", "missing key 'video'"),
    ("missing narration", _drop("narration"), "c1", "missing key 'narration'"),
    (
        "wrong type clip_id",
        _set(clip_id=7),
        None,
        "wrong type: 'clip_id' must be a string, got int",
    ),
    ("wrong type start", _set(start_sec="0.5"), "c1", "'start_sec' must be a finite number"),
    ("bool is no number", _set(end_sec=True), "c1", "'end_sec' must be a finite number, got bool"),
    ("unknown key", _set(colour="red"), "c1", "unknown key(s) 'colour'"),
    (
        "exhaustive not bools",
        _set(exhaustive={"1": "y"}),
        "c1",
        "wrong type: 'exhaustive' must be an object {object_id: true|false}",
    ),
    (
        "exhaustive of no mask",
        _set(exhaustive={"1": True, "9": False}),
        "c1",
        "'exhaustive' names object '9', which has no mask in the clip",
    ),
    ("duplicate clip_id", _set(clip_id="c0"), "c0", "duplicate clip_id 'c0' (first on line 1)"),
    ("video missing", _set(video="videos/nope.mp4"), "c1", "video not found"),
    ("video unreadable", _unreadable_video, "c1", "OpenCV cannot"),
    ("start >= end", _set(start_sec=1.5, end_sec=0.5), "c1", "start_sec 1.5 >= end_sec 0.5"),
    ("negative start", _set(start_sec=-1.0), "c1", "negative start_sec -1.0"),
    (
        "end beyond video",
        _set(end_sec=5.0),
        "c1",
        "end_sec 5.0 is beyond the end of the video (2 s = 20 frames at 10 fps)",
    ),
    ("empty window", _set(start_sec=0.51, end_sec=0.55, annotations=[]), "c1", "holds no frame"),
    (
        "frame outside window",
        _annotation(1, frame_index=18),
        "c1",
        "annotations[1].frame_index 18 is outside the clip window (frames 5..14)",
    ),
    (
        "frame outside video",
        _annotation(0, frame_index=25),
        "c1",
        "annotations[0].frame_index 25 is outside the video (frames 0..19)",
    ),
    ("frame not int", _annotation(0, frame_index=6.0), "c1", "frame_index must be an integer"),
    (
        "rle size",
        _object(1, "1", rle_json(np.ones((10, 10), bool))),
        "c1",
        "annotations[1].objects['1']: RLE size [10, 10] does not match the video's frame "
        "size [48, 64]",
    ),
    (
        "malformed rle",
        _object(0, "2", [rle_json(KNIFE_A), {"size": [H, W], "counts": "!!"}]),
        "c1",
        "annotations[0].objects['2'][1]: malformed RLE",
    ),
    ("rle not an object", _object(0, "1", "abc"), "c1", "malformed RLE"),
    ("empty instance list", _object(0, "1", []), "c1", "empty list of instances"),
    (
        "malformed tags",
        _set(narration="cut [the onion<1> with a [knife]<2>"),
        "c1",
        "malformed narration tag at column 15: '<' inside the phrase",
    ),
    (
        "tag without mask",
        _set(narration="cut [the onion]<1> with a [knife]<2> on a [board]<3>"),
        "c1",
        "tag [board]<3> has no mask in the clip's annotations",
    ),
    (
        "mask without tag",
        _set(narration="cut [the onion]<1> with a knife"),
        "c1",
        "object '2' has masks but no [phrase]<2> tag in the narration",
    ),
    ("unknown split", _set(split="dev"), "c1", "unknown split 'dev' (allowed: train, val, test)"),
    ("duplicate frame", _duplicate_frame, "c1", "annotations[2]: duplicate frame_index 6"),
    ("fps on a video file", _set(fps=25), "c1", "'fps' 25 is only for frame folders"),
    (
        "start beyond video",
        _set(start_sec=3.0, end_sec=None, annotations=[], narration="cut"),
        "c1",
        "start_sec 3.0 is at or beyond the end of the video (2 s)",
    ),
    ("end not after default start", _set(end_sec=0, start_sec=None), "c1", ">= end_sec 0"),
    ("empty clip_id", _set(clip_id=" "), " ", "wrong value: 'clip_id' is empty"),
    ("fps not positive", _set(fps=0), "c1", "'fps' must be positive, got 0"),
    ("annotations not a list", _set(annotations={}), "c1", "'annotations' must be a list"),
]


@pytest.mark.parametrize(
    ("mutation", "clip_id", "reason"),
    [case[1:] for case in BAD_LINES],
    ids=[case[0] for case in BAD_LINES],
)
def test_bad_line_is_reported_with_line_and_reason(
    folder: Path, mutation: Any, clip_id: str | None, reason: str
) -> None:
    (folder / "videos" / "broken.mp4").write_bytes(b"not a video at all")
    bad = mutation if isinstance(mutation, str) else mutation(good_clip("c1"))
    path = write_manifest(folder, [good_clip("c0"), "", bad])
    with pytest.raises(ManifestError) as info:
        validate_manifest(path, SPLITS)
    error = info.value
    assert {line for line, _ in error.problems} == {3}, error.problems
    assert any(reason in text for _, text in error.problems), error.problems
    prefix = f"{path}:3: {clip_id if clip_id is not None else '?'}: "
    rows = str(error).splitlines()
    assert any(row.startswith(prefix) and reason in row for row in rows), rows


def test_every_problem_of_every_line_is_reported(folder: Path) -> None:
    lines: list[dict[str, Any] | str] = [
        dict(good_clip("a"), split="dev", start_sec=-2.0),
        good_clip("b"),
        "not json",
        dict(good_clip("c"), video="videos/missing.mp4"),
        dict(good_clip("c"), video="videos/missing.mp4"),
    ]
    with pytest.raises(ManifestError) as info:
        validate_manifest(write_manifest(folder, lines), SPLITS)
    problems = info.value.problems
    assert [line for line, _ in problems] == [1, 1, 3, 4, 5, 5]
    assert "unknown split 'dev'" in problems[0][1]
    assert "negative start_sec -2.0" in problems[1][1]
    assert "duplicate clip_id 'c' (first on line 4)" in problems[4][1]
    assert "video not found" in problems[5][1]
    assert f"{info.value.path}: manifest failed validation with 6 problem(s)" in str(info.value)


def test_empty_manifest_is_an_error(folder: Path) -> None:
    path = write_manifest(folder, ["", "  "])
    with pytest.raises(ManifestError) as info:
        validate_manifest(path, SPLITS)
    assert info.value.problems == [(0, "manifest is empty (no non-empty line)")]
    assert f"{path}:0: ?: manifest is empty" in str(info.value)


def test_missing_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest file not found"):
        validate_manifest(tmp_path / "none.jsonl", SPLITS)


def test_invalid_utf8_is_reported(folder: Path) -> None:
    path = folder / "m.jsonl"
    path.write_bytes(json.dumps(good_clip()).encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(ManifestError) as info:
        validate_manifest(path, SPLITS)
    assert [line for line, _ in info.value.problems] == [2]
    assert "invalid JSON" in info.value.problems[0][1]
