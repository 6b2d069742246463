"""EPIC-KITCHENS-100 importer on real rows of EPIC_100_validation.csv (tests/data/epic100).

The fixture holds 54 real rows: 52 of videos P18_10 and P18_11 (every row ending before 60 s) and
2 of P02_12 (three nouns each). Tests give P18_10/P18_11 tiny stand-in videos or frame folders and
no P02_12, so the expected counts below follow from the rows' real timestamps and frame numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from tables import make_video

from nvos.importers import epic
from nvos.importers.cli import cmd_import
from nvos.importers.common import ImportFormatError, open_manifest, skipped_path, summary_path
from nvos.manifest import validate_manifest

DATA = Path(__file__).resolve().parent / "data" / "epic100"
ROWS = DATA / "EPIC_100_validation_rows.csv"
SPLITS = ("train", "val", "test")
N_ROWS = 54
P18_11_AFTER_50S = 3  # P18_11_23/24/25 stop at 52.98, 55.13, 57.63 s
P18_11_AFTER_FRAME_3300 = 2  # P18_11_24/25 stop at frames 3307, 3457


def make_frames(folder: Path, count: int, first: int = 1) -> Path:
    """An EPIC frame folder frame_<first>.jpg .. (hard links to one tiny JPEG)."""
    folder.mkdir(parents=True)
    image = folder / "frame.tmp"
    assert cv2.imwrite(str(image) + ".jpg", np.full((24, 32, 3), 128, np.uint8))
    source = Path(str(image) + ".jpg")
    for n in range(first, first + count):
        os.link(source, folder / f"frame_{n:010d}.jpg")
    source.unlink()
    return folder


def read_rows(path: Path = ROWS) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_import(out: Path, csv_path: Path, **options) -> tuple[dict, list[list[str]], list[dict]]:
    """Import; return (summary.json, skipped rows [item, reason], manifest lines)."""
    with open_manifest(out, "epic") as writer:
        epic.import_epic(csv_path, writer, **options)
    summary = json.loads(summary_path(out).read_text())
    with open(skipped_path(out), newline="") as handle:
        skipped = list(csv.reader(handle))[1:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return summary, skipped, lines


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """P18_10 (60 s) in the folder itself, P18_11 (50 s) under P18/videos/, no P02_12."""
    root = tmp_path / "videos"
    make_video(root / "P18_10.MP4", 60)
    make_video(root / "P18" / "videos" / "P18_11.MP4", 50)
    return root


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """P18_10 with 3600 frames, P18_11 (under P18/rgb_frames/) with 3300, no P02_12."""
    root = tmp_path / "frames"
    make_frames(root / "P18_10", 3600)
    make_frames(root / "P18" / "rgb_frames" / "P18_11", 3300)
    return root


def test_fixture_is_real_rows_with_multi_noun_rows() -> None:
    header, rows = read_rows()
    assert len(header) == 15 and len(rows) == N_ROWS
    nouns = [epic.parse_all_nouns(r["all_nouns"]) for r in rows]
    assert sum(len(n) == 2 for n in nouns) == 20 and sum(len(n) == 3 for n in nouns) == 2
    assert (DATA / "LICENSE-NOTE.txt").read_text().count("CC BY-NC 4.0") == 1


def test_videos_import_validates_and_counts_every_skip(tmp_path: Path, videos: Path) -> None:
    out = tmp_path / "out" / "manifest.jsonl"
    out.parent.mkdir()
    summary, skipped, lines = run_import(out, ROWS, videos=videos)
    expected_clips = N_ROWS - 2 - P18_11_AFTER_50S
    assert summary["clips"] == expected_clips == len(lines)
    assert summary["per_split"] == {"val": expected_clips}  # from the file name "validation"
    assert summary["skipped_by_reason"] == {
        epic.SKIP_BEYOND: P18_11_AFTER_50S,
        epic.SKIP_VIDEO_MISSING: 2,
    }
    reasons = {item.split(": ")[1].split(" ")[0]: reason for item, reason in skipped}
    assert reasons == {
        "P02_12_273": epic.SKIP_VIDEO_MISSING,
        "P02_12_306": epic.SKIP_VIDEO_MISSING,
        "P18_11_23": epic.SKIP_BEYOND,
        "P18_11_24": epic.SKIP_BEYOND,
        "P18_11_25": epic.SKIP_BEYOND,
    }
    assert skipped[0][0].startswith("EPIC_100_validation_rows.csv:2: P02_12_273")

    first = next(line for line in lines if line["clip_id"] == "P18_10_12")
    assert first == {
        "clip_id": "P18_10_12",
        "video": "../videos/P18_10.MP4",
        "narration": "put plate in cupboard",
        "split": "val",
        "start_sec": 25.08,
        "end_sec": 26.64,
    }
    records = {r.clip_id: r for r in validate_manifest(out, SPLITS)}
    assert len(records) == expected_clips
    assert records["P18_11_6"].narration == "take cup and knife"
    assert records["P18_11_6"].window == range(77, 84)  # frames at 15.4 .. 16.6 s (5 fps)


def test_frame_folders_use_frame_numbers_and_video_info_fps(
    tmp_path: Path, frames: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvos.importers.epic")
    info = tmp_path / "EPIC_100_video_info.csv"
    info.write_text(
        "video_id,duration,fps,resolution\nP18_10,1096.64,59.94005994005994,1920x1080\n"
    )
    out = tmp_path / "manifest.jsonl"
    summary, skipped, lines = run_import(out, ROWS, frames=frames, video_info=info, split="train")
    expected = N_ROWS - 2 - P18_11_AFTER_FRAME_3300
    assert summary["per_split"] == {"train": expected}
    assert summary["skipped_by_reason"] == {
        epic.SKIP_VIDEO_MISSING: 2,
        epic.SKIP_BEYOND: P18_11_AFTER_FRAME_3300,
    }
    assert sorted(item for item, reason in skipped if reason == epic.SKIP_BEYOND) == [
        "EPIC_100_validation_rows.csv:47: P18_11_24 (stop_frame 3307 > 3300 frames)",
        "EPIC_100_validation_rows.csv:48: P18_11_25 (stop_frame 3457 > 3300 frames)",
    ]
    by_id = {line["clip_id"]: line for line in lines}
    # P18_10 from the video-info CSV (59.94), P18_11 by the video_id rule (60 for PXX_YY)
    assert by_id["P18_10_0"]["fps"] == pytest.approx(59.94005994005994)
    assert by_id["P18_10_0"]["start_sec"] == pytest.approx(115 / 59.94005994005994)
    assert by_id["P18_11_0"]["fps"] == 60.0
    assert by_id["P18_11_0"]["video"] == "frames/P18/rgb_frames/P18_11"
    assert summary["notes"] == [
        "frame rate of frame folders: 1 videos from EPIC_100_video_info.csv; 1 videos from the "
        "video_id rule (60 for PXX_YY, 50 for PXX_1YY)"
    ]
    records = {r.clip_id: r for r in validate_manifest(out, SPLITS)}
    # the window is exactly frames start_frame..stop_frame (1-based) of the folder
    assert records["P18_10_0"].window == range(115, 270)
    assert records["P18_11_0"].window == range(176, 252)
    assert records["P18_11_23"].window == range(3098, 3178)


def test_fps_option_and_extension_rule(tmp_path: Path, frames: Path) -> None:
    assert epic.default_fps("P01_101") == 50.0 and epic.default_fps("P01_11") == 60.0
    out = tmp_path / "manifest.jsonl"
    _, _, lines = run_import(out, ROWS, frames=frames, fps=30.0)
    assert {line["fps"] for line in lines} == {30.0}
    validate_manifest(out, SPLITS)


def test_folder_not_numbered_from_one_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    make_frames(root / "P18_10", 3600, first=0)  # frame_0000000000.jpg: not EPIC's numbering
    make_frames(root / "P18_11", 3600)
    summary, _, _ = run_import(tmp_path / "m.jsonl", ROWS, frames=root)
    assert summary["skipped_by_reason"] == {
        epic.SKIP_FOLDER_NUMBERING: 26,
        epic.SKIP_VIDEO_MISSING: 2,
    }


def test_malformed_rows_are_skipped_with_file_line_and_reason(tmp_path: Path, videos: Path):
    header, rows = read_rows()
    rows = rows[2:9]  # P18_10_0 .. P18_10_14, all importable as they are
    rows[0]["start_timestamp"] = "00:0x:01.94"
    rows[1]["all_nouns"] = "['plate'"
    rows[2]["all_nouns"] = "plate"
    rows[3]["all_nouns"] = "[1, 2]"
    rows[4]["narration"] = "put [plate in cupboard"
    rows[5]["stop_timestamp"] = rows[5]["start_timestamp"]
    rows[6]["narration_id"] = rows[5]["narration_id"]  # imported: its first row was skipped
    rows.append(dict(rows[6]))  # a repeated narration_id
    path = write_rows(tmp_path / "EPIC_100_train.csv", header, rows)
    with open(path, "a") as handle:
        handle.write("P18_10_99,P18,P18_10,00:00:01.000\n")  # a row cut short
    summary, skipped, lines = run_import(tmp_path / "m.jsonl", path, videos=videos)
    assert summary["per_split"] == {"train": 1}
    assert skipped == [
        [
            "EPIC_100_train.csv:2: P18_10_0 (start_timestamp '00:0x:01.94', stop_timestamp "
            "'00:00:04.50')",
            epic.SKIP_TIMESTAMP,
        ],
        ["EPIC_100_train.csv:3: P18_10_1", epic.SKIP_NOUNS],
        ["EPIC_100_train.csv:4: P18_10_10", epic.SKIP_NOUNS],
        ["EPIC_100_train.csv:5: P18_10_11", epic.SKIP_NOUNS],
        ["EPIC_100_train.csv:6: P18_10_12", epic.SKIP_RESERVED],
        [
            "EPIC_100_train.csv:7: P18_10_13 (start_timestamp 00:00:26.55, stop_timestamp "
            "00:00:26.55)",
            epic.SKIP_INTERVAL,
        ],
        ["P18_10_13", "duplicate clip_id"],
        ["EPIC_100_train.csv:10: P18_10_99", epic.SKIP_FIELDS],
    ]
    assert lines[0]["clip_id"] == "P18_10_13" and lines[0]["narration"] == "open drawer"


def test_parse_all_nouns_and_timestamps() -> None:
    assert epic.parse_all_nouns("['pan:frying', 'lid']") == ("pan:frying", "lid")
    assert epic.parse_all_nouns("[]") == ()
    for bad in ("['plate'", "plate", "[1]", "{'a': 1}", "__import__('os')"):
        with pytest.raises(ValueError, match="all_nouns"):
            epic.parse_all_nouns(bad)
    assert epic.parse_timestamp("01:02:03.45") == pytest.approx(3723.45)
    for bad in ("1:2", "00:61:00.00", "00:00:0x", ""):
        with pytest.raises(ValueError, match="HH:mm:ss"):
            epic.parse_timestamp(bad)


def test_missing_columns_name_the_file_and_the_columns(tmp_path: Path, videos: Path) -> None:
    header, rows = read_rows()
    path = write_rows(
        tmp_path / "EPIC_100_validation.csv", [h for h in header if h != "all_nouns"], rows
    )
    with pytest.raises(
        ImportFormatError, match=r"EPIC_100_validation\.csv:1: missing column\(s\) all_nouns"
    ):
        run_import(tmp_path / "m.jsonl", path, videos=videos)
    assert not (tmp_path / "m.jsonl").exists()
    test_csv = write_rows(tmp_path / "EPIC_100_test_timestamps.csv", header[:8], rows)
    with pytest.raises(ImportFormatError, match="narration, all_nouns .*has no narrations"):
        run_import(tmp_path / "t.jsonl", test_csv, frames=tmp_path)
    with pytest.raises(ImportFormatError, match="give --split"):
        run_import(
            tmp_path / "n.jsonl", write_rows(tmp_path / "rows.csv", header, rows), videos=videos
        )


def test_bad_video_info_names_the_line(tmp_path: Path, frames: Path) -> None:
    info = tmp_path / "info.csv"
    info.write_text("video_id,duration,fps,resolution\nP18_10,1.0,59.94,1x1\nP18_11,1.0,fast,1x1\n")
    with pytest.raises(ImportFormatError, match=r"info\.csv:3: fps 'fast' of 'P18_11'"):
        run_import(tmp_path / "m.jsonl", ROWS, frames=frames, video_info=info)


def test_command_prints_summary_and_fails_cleanly(tmp_path: Path, videos: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    epic.add_arguments(parser)
    parser.add_argument("--out", required=True)
    out = tmp_path / "manifest.jsonl"
    args = parser.parse_args([str(ROWS), "--videos", str(videos), "--out", str(out)])
    args.format = "epic"
    assert cmd_import(args, {}) == 0
    printed = capsys.readouterr().out
    assert "epic: imported 49 clips" in printed and f"2 × {epic.SKIP_VIDEO_MISSING}" in printed
    args = parser.parse_args([str(ROWS), "--videos", str(videos), "--fps", "50", "--out", "x"])
    args.format = "epic"
    assert cmd_import(args, {}) == 1
    assert "--fps and --video-info are for --frames only" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --videos and --frames are exclusive
        parser.parse_args([str(ROWS), "--videos", "a", "--frames", "b", "--out", "x"])
