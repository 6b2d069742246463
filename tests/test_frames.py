"""Tests of the frames stage: sampling, decoding, resizing, storage and reading back."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from nvos import frames, storage

FPS = 10.0
N_FRAMES = 30
STEP = 8  # brightness step between consecutive frames: frame i has grey level 4 + STEP * i


def level(index: int) -> int:
    return 4 + STEP * index


def identify(image_rgb: np.ndarray) -> int:
    """The frame index whose grey level is nearest to the image's mean."""
    return int(round((float(image_rgb.mean()) - 4) / STEP))


def make_video(path: Path, n_frames: int = N_FRAMES, size: tuple[int, int] = (64, 48)) -> str:
    """An mp4 whose frame i is uniformly grey at ``level(i)``; size is (width, height)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    assert writer.isOpened()
    for index in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), level(index), dtype=np.uint8))
    writer.release()
    return str(path)


def make_folder(path: Path, n_frames: int = 12, size: tuple[int, int] = (40, 30)) -> str:
    """A folder of PNG frames (names sort in frame order) with frame i at ``level(i)``."""
    path.mkdir()
    for index in range(n_frames):
        image = np.full((size[1], size[0], 3), level(index), dtype=np.uint8)
        assert cv2.imwrite(str(path / f"frame_{index:04d}.png"), image)
    return str(path)


def write_inputs(
    tmp_path: Path,
    clips: list[dict],
    annotated: dict[str, list[int]],
) -> tuple[Path, Path]:
    clips_path = tmp_path / "clips.parquet"
    annotations_path = tmp_path / "annotations.parquet"
    rows = [
        {
            "split": "val",
            "narration": "the person takes a [cup]<1>.",
            "shard": "s00000",
            "fps": None,
            **clip,
        }
        for clip in clips
    ]
    storage.write_table(pa.Table.from_pylist(rows), clips_path, "clips")
    ann = [
        {
            "clip_id": clip_id,
            "frame_index": index,
            "object_id": "1",
            "instance": 0,
            "height": 48,
            "width": 64,
            "rle_counts": b"",
        }
        for clip_id, indices in annotated.items()
        for index in indices
    ]
    table = pa.Table.from_pylist(ann) if ann else storage.empty_table("annotations")
    storage.write_table(table, annotations_path, "annotations")
    return clips_path, annotations_path


def run(clips_path: Path, annotations_path: Path, out: Path, shard: str = "s00000", **kw):
    params = {"per_clip": 4, "max_side": 320, "jpeg_quality": 95, "folder_fps": 5.0, **kw}
    return frames.extract_frames(clips_path, annotations_path, shard, out, **params)


# ---------------------------------------------------------------- sampling


def test_sample_uniform_centres_in_window() -> None:
    selection = frames.sample_frame_indices(range(10, 20), [], 4)
    assert selection == [(11, "sampled"), (13, "sampled"), (16, "sampled"), (18, "sampled")]
    # one frame per equal segment of a long window: spread over the whole window
    picked = [i for i, _ in frames.sample_frame_indices(range(0, 1000), [], 10)]
    assert picked == [50 + 100 * k for k in range(10)]


def test_sample_keeps_annotated_once_and_sorted() -> None:
    selection = frames.sample_frame_indices(range(10, 20), [16, 3, 16], 4)
    assert selection == [
        (3, "annotated"),
        (11, "sampled"),
        (13, "sampled"),
        (16, "annotated"),
        (18, "sampled"),
    ]
    assert selection == frames.sample_frame_indices(range(10, 20), [3, 16], 4)


def test_honest_sampling_avoids_annotated_frames() -> None:
    """The honest protocol samples the same way among the unannotated frames of the window: here
    the pool is 10..19 without 13 and 16, whose 4 segment centres are 11, 14, 17, 19."""
    selection = frames.sample_frame_indices(range(10, 20), [16, 13, 3], 4, avoid_annotated=True)
    assert selection == [
        (3, "annotated"),
        (11, "sampled"),
        (13, "annotated"),
        (14, "sampled"),
        (16, "annotated"),
        (17, "sampled"),
        (19, "sampled"),
    ]
    # without it, 13 and 16 would be sampled frames (kept as annotated)
    assert [i for i, r in frames.sample_frame_indices(range(10, 20), [16, 13], 4)] == [
        11, 13, 16, 18,
    ]  # fmt: skip


def test_sample_short_window_takes_every_frame() -> None:
    assert frames.sample_frame_indices(range(5, 8), [], 6) == [
        (5, "sampled"),
        (6, "sampled"),
        (7, "sampled"),
    ]
    assert frames.sample_frame_indices(range(5, 8), [9], 0) == [(9, "annotated")]
    with pytest.raises(ValueError, match="per_clip"):
        frames.sample_frame_indices(range(5, 8), [], -1)


# ---------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [((48, 64, 3), 32, (24, 32)), ((200, 100, 3), 50, (50, 25)), ((48, 64, 3), 320, (48, 64))],
)
def test_resize_long_side_aspect_no_upscale(shape, max_side, expected) -> None:
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    resized = frames.resize_to_max_side(image, max_side)
    assert resized.shape[:2] == expected
    if expected == shape[:2]:
        assert resized is image


# ---------------------------------------------------------------- extract_frames


@pytest.fixture()
def two_clips(tmp_path: Path) -> tuple[Path, Path, str, str]:
    mp4 = make_video(tmp_path / "a.mp4")
    folder = make_folder(tmp_path / "b_frames")
    clips = [
        {"clip_id": "c_video", "video": mp4, "start_sec": 1.0, "end_sec": 2.0},
        {"clip_id": "c_folder", "video": folder, "start_sec": None, "end_sec": None},
    ]
    clips_path, ann_path = write_inputs(tmp_path, clips, {"c_video": [12, 25], "c_folder": [7]})
    return clips_path, ann_path, mp4, folder


def test_extract_annotated_and_sampled_frames(two_clips, tmp_path: Path, caplog) -> None:
    clips_path, ann_path, mp4, folder = two_clips
    out = tmp_path / "frames" / "s00000.parquet"
    with caplog.at_level(logging.INFO, logger="nvos.frames"):
        summary = run(clips_path, ann_path, out)
    assert "2/2 clips" in caplog.text

    table = storage.read_table(out, "frames")
    rows = table.to_pylist()
    by_clip = {c: [r for r in rows if r["clip_id"] == c] for c in ("c_video", "c_folder")}

    # video clip: window 1.0..2.0 s at 10 fps = frames 10..19; 4 sampled + annotated 12 and 25
    video_rows = by_clip["c_video"]
    assert [(r["frame_index"], r["role"]) for r in video_rows] == frames.sample_frame_indices(
        range(10, 20), [12, 25], 4
    )
    sampled = [r["frame_index"] for r in video_rows if r["role"] == "sampled"]
    assert len(sampled) == 4 and all(10 <= i < 20 for i in sampled)
    annotated = [r["frame_index"] for r in video_rows if r["role"] == "annotated"]
    assert annotated == [12, 25]  # 25 is outside the window but annotated: kept exactly

    # folder clip: whole folder (12 frames) at folder_fps 5
    folder_rows = by_clip["c_folder"]
    assert [(r["frame_index"], r["role"]) for r in folder_rows] == frames.sample_frame_indices(
        range(12), [7], 4
    )
    # centres of 4 segments of 12 frames are 1, 4, 7, 10; 7 is annotated, so stored once as such
    assert [r["frame_index"] for r in folder_rows if r["role"] == "sampled"] == [1, 4, 10]

    for row in rows:
        image = frames.decode_jpeg(row["jpeg"])
        # the pixels are those of the decoded frame with that exact index
        assert identify(image) == row["frame_index"], row["clip_id"]
        assert image.shape == (row["height"], row["width"], 3)
        fps = FPS if row["clip_id"] == "c_video" else 5.0
        assert row["time_sec"] == pytest.approx(row["frame_index"] / fps)
    assert {(r["height"], r["width"]) for r in video_rows} == {(48, 64)}  # never upscaled
    assert {(r["height"], r["width"]) for r in folder_rows} == {(30, 40)}

    assert summary.clips == 2
    assert summary.frames_annotated == 3
    assert summary.frames_sampled == len(rows) - 3
    assert summary.annotated_outside_window == 1
    record = storage.read_provenance(out)
    assert record["stage"] == "frames" and record["shard"] == "s00000"
    assert record["config"]["per_clip"] == 4


def test_extract_resizes_long_side(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "wide.mp4", n_frames=5, size=(100, 60))
    clips_path, ann_path = write_inputs(
        tmp_path, [{"clip_id": "w", "video": mp4, "start_sec": None, "end_sec": None}], {"w": [2]}
    )
    out = tmp_path / "f.parquet"
    run(clips_path, ann_path, out, max_side=50, per_clip=2)
    rows = storage.read_table(out, "frames").to_pylist()
    assert len(rows) == 3
    for row in rows:
        assert (row["height"], row["width"]) == (30, 50)
        assert frames.decode_jpeg(row["jpeg"]).shape == (30, 50, 3)
        assert identify(frames.decode_jpeg(row["jpeg"])) == row["frame_index"]


def test_iter_frames_groups_per_clip(two_clips, tmp_path: Path) -> None:
    clips_path, ann_path, _, _ = two_clips
    out = tmp_path / "f.parquet"
    run(clips_path, ann_path, out)
    clips = list(frames.iter_frames(out))
    assert [c.clip_id for c in clips] == ["c_video", "c_folder"]
    video_clip = clips[0]
    assert video_clip.images.shape == (len(video_clip), 48, 64, 3)
    assert video_clip.images.dtype == np.uint8
    assert list(video_clip.frame_index) == sorted(video_clip.frame_index)
    assert [identify(img) for img in video_clip.images] == list(video_clip.frame_index)
    only_annotated = list(frames.iter_frames(out, roles={"annotated"}))
    assert [list(c.frame_index) for c in only_annotated] == [[12, 25], [7]]
    assert all(set(c.roles) == {"annotated"} for c in only_annotated)
    assert [c.clip_id for c in frames.iter_frames(out, clip_ids={"c_folder"})] == ["c_folder"]
    with pytest.raises(ValueError, match="unknown frame roles"):
        list(frames.iter_frames(out, roles={"keyframe"}))


def test_missing_video_names_clip_and_path_and_writes_nothing(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "ok.mp4", n_frames=10)
    missing = str(tmp_path / "missing.mp4")
    clips = [
        {"clip_id": "good", "video": mp4, "start_sec": None, "end_sec": None},
        {"clip_id": "lost", "video": missing, "start_sec": None, "end_sec": None},
    ]
    clips_path, ann_path = write_inputs(tmp_path, clips, {})
    out_dir = tmp_path / "frames"
    out_dir.mkdir()
    with pytest.raises(frames.ClipFramesError, match="lost") as error:
        run(clips_path, ann_path, out_dir / "s00000.parquet")
    assert missing in str(error.value) and "not found" in str(error.value)
    assert list(out_dir.iterdir()) == []  # first clip succeeded, but no (partial) output


def test_unreadable_video_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    clips_path, ann_path = write_inputs(
        tmp_path, [{"clip_id": "bad", "video": str(broken), "start_sec": 0.0, "end_sec": 1.0}], {}
    )
    with pytest.raises(frames.ClipFramesError, match="bad") as error:
        run(clips_path, ann_path, tmp_path / "f.parquet")
    assert str(broken) in str(error.value)
    assert not (tmp_path / "f.parquet").exists()


def test_frame_beyond_video_is_an_error(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "short.mp4", n_frames=10)
    clips_path, ann_path = write_inputs(
        tmp_path,
        [{"clip_id": "c1", "video": mp4, "start_sec": None, "end_sec": None}],
        {"c1": [40]},
    )
    with pytest.raises(frames.ClipFramesError, match="c1") as error:
        run(clips_path, ann_path, tmp_path / "f.parquet")
    assert mp4 in str(error.value) and "40" in str(error.value)
    assert not (tmp_path / "f.parquet").exists()


def test_empty_window_is_an_error(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "short.mp4", n_frames=10)  # 1.0 s
    clips_path, ann_path = write_inputs(
        tmp_path, [{"clip_id": "late", "video": mp4, "start_sec": 5.0, "end_sec": 6.0}], {}
    )
    with pytest.raises(frames.ClipFramesError, match="late.*holds no frame"):
        run(clips_path, ann_path, tmp_path / "f.parquet")


def test_unknown_shard_is_an_error(two_clips, tmp_path: Path) -> None:
    clips_path, ann_path, _, _ = two_clips
    out = tmp_path / "frames" / "s00009.parquet"
    with pytest.raises(ValueError, match="s00009.*no clips"):
        run(clips_path, ann_path, out, shard="s00009")
    assert not out.exists()


def test_per_clip_zero_without_annotations_is_counted(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "v.mp4", n_frames=10)
    clips = [
        {"clip_id": "plain", "video": mp4, "start_sec": None, "end_sec": None},
        {"clip_id": "ann", "video": mp4, "start_sec": None, "end_sec": None},
    ]
    clips_path, ann_path = write_inputs(tmp_path, clips, {"ann": [3]})
    out = tmp_path / "f.parquet"
    summary = run(clips_path, ann_path, out, per_clip=0)
    assert summary.clips_without_frames == 1
    rows = storage.read_table(out, "frames").to_pylist()
    assert [(r["clip_id"], r["frame_index"], r["role"]) for r in rows] == [("ann", 3, "annotated")]


def test_meta_overrides_provenance(two_clips, tmp_path: Path) -> None:
    clips_path, ann_path, _, _ = two_clips
    out = tmp_path / "f.parquet"
    meta = storage.provenance("frames", {"per_clip": 1, "extra": True}, shard="s00000")
    run(clips_path, ann_path, out, per_clip=1, meta=meta)
    record = storage.read_provenance(out)
    assert record["config"] == {"per_clip": 1, "extra": True}
    assert record["clips"] == str(clips_path)


def test_iter_frames_across_row_groups_and_contiguity(two_clips, tmp_path: Path) -> None:
    clips_path, ann_path, _, _ = two_clips
    out = tmp_path / "f.parquet"
    run(clips_path, ann_path, out)
    table = storage.read_table(out, "frames")
    regrouped = tmp_path / "regrouped.parquet"
    storage.write_table(table, regrouped, "frames", row_group_size=3)  # groups straddle clips
    expected = [(c.clip_id, list(c.frame_index)) for c in frames.iter_frames(out)]
    assert [(c.clip_id, list(c.frame_index)) for c in frames.iter_frames(regrouped)] == expected
    shuffled = tmp_path / "shuffled.parquet"
    storage.write_table(table.take([0, 7, 1]), shuffled, "frames")  # c_video, c_folder, c_video
    with pytest.raises(ValueError, match="not contiguous"):
        list(frames.iter_frames(shuffled))
