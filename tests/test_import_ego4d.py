"""Ego4D importer on a narration.json crafted in the real format (REFERENCE §5).

The file is a JSON object keyed by video_uid; each entry has narration_pass_1/2 with
``narrations`` (timestamp_sec, timestamp_frame, narration_text, annotation_uid) and ``summaries``.
Videos: A (10 s at 10 fps) and B (6 s) exist, C and E do not, D's entry is not an object.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from tables import make_video

from nvos.importers import ego4d
from nvos.importers.cli import cmd_import
from nvos.importers.common import ImportFormatError, open_manifest, skipped_path, summary_path
from nvos.importers.jsonstream import JsonStream
from nvos.manifest import validate_manifest

A = "0a1b2c3d-0000-4000-8000-00000000000a"
B = "0a1b2c3d-0000-4000-8000-00000000000b"
C = "0a1b2c3d-0000-4000-8000-00000000000c"
D = "0a1b2c3d-0000-4000-8000-00000000000d"
E = "0a1b2c3d-0000-4000-8000-00000000000e"
SPLITS = ("train", "val")


def n(t: Any, text: str, uid: str = "") -> dict[str, Any]:
    """One narration as Ego4D writes it (timestamp_frame at 30 fps, like the canonical videos)."""
    frame = round(t * 30) if isinstance(t, (int, float)) else None
    return {
        "timestamp_sec": t,
        "timestamp_frame": frame,
        "narration_text": text,
        "annotation_uid": uid or f"uid-{text[-6:]}",
    }


def document() -> dict[str, Any]:
    return {
        A: {
            "status": "complete",
            "narration_pass_1": {
                "narrations": [
                    n(1.0, "#C C picks a cup from the table"),  # clip [0, 3] (clamped)
                    n(5.0, "#C C opens the drawer"),  # clip [3, 7]
                    n(6.0, "#C C #unsure touches the wall"),
                    n(7.0, "#Summary C cooks food"),
                    n(8.0, "   "),
                    {"timestamp_sec": 2.0, "annotation_uid": "no-text"},
                    n("abc", "#C C walks"),
                    {"timestamp_sec": None, "timestamp_frame": 30, "narration_text": "#O man X"},
                    n(50.0, "#C C leaves the room"),
                    n(9.95, "#C C closes the <door"),
                    n(10.05, "#C C sits"),  # within one frame of the end: clip [8.05, 10]
                    7,
                ],
                "summaries": [{"summary_text": "#Summary C cooks", "start_sec": 0, "end_sec": 10}],
            },
            "narration_pass_2": {
                "narrations": [n(4.0, "#C C stirs the pot"), n(-1.0, "#C C waits")],
                "summaries": [],
            },
        },
        B: {"narration_pass_1": {"narrations": [n(0.5, "#C C takes a knife"), n(5.9, "C cuts")]}},
        C: {"narration_pass_1": {"narrations": [n(1.0, "#C C reads"), n(2.0, "#C C writes")]}},
        D: ["not", "an", "object"],
        E: {"narration_pass_1": "oops", "narration_pass_2": {"narrations": [n(1.0, "#C C eats")]}},
    }


EXPECTED_SKIPS = {
    ego4d.SKIP_VIDEO_MISSING: 3,
    ego4d.SKIP_SUMMARY: 2,
    ego4d.SKIP_TIMESTAMP: 2,
    ego4d.SKIP_UNSURE: 1,
    ego4d.SKIP_EMPTY: 1,
    ego4d.SKIP_NO_TEXT: 1,
    ego4d.SKIP_BEYOND: 1,
    ego4d.SKIP_RESERVED: 1,
    ego4d.SKIP_NOT_OBJECT: 1,
    ego4d.SKIP_ENTRY: 1,
    ego4d.SKIP_PASS: 1,
}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """(narration.json, videos folder): A 10 s and B 6 s at 10 fps."""
    videos = tmp_path / "v2" / "full_scale"
    make_video(videos / f"{A}.mp4", 10, fps=10)
    make_video(videos / f"{B}.mp4", 6, fps=10)
    path = tmp_path / "narration.json"
    path.write_text(json.dumps(document(), indent=2))
    return path, videos


def run_import(out: Path, narrations: Path, videos: Path, **options: Any):
    """Import; return (summary.json, skipped [item, reason] rows, manifest lines by clip_id)."""
    with open_manifest(out, "ego4d") as writer:
        ego4d.import_ego4d(narrations, videos, writer, **options)
    with open(skipped_path(out), newline="") as handle:
        skipped = list(csv.reader(handle))[1:]
    lines = {(d := json.loads(x))["clip_id"]: d for x in out.read_text().splitlines()}
    return json.loads(summary_path(out).read_text()), skipped, lines


def test_import_windows_clip_ids_and_exact_skips(tmp_path: Path, dataset) -> None:
    narrations, videos = dataset
    out = tmp_path / "manifest.jsonl"
    summary, skipped, lines = run_import(out, narrations, videos)
    assert summary["per_split"] == {"train": 7}
    assert summary["skipped_by_reason"] == EXPECTED_SKIPS
    windows = {clip_id: (d["start_sec"], d["end_sec"]) for clip_id, d in lines.items()}
    assert windows == {
        f"{A}_p1_00000": (0.0, 3.0),
        f"{A}_p1_00001": (3.0, 7.0),
        f"{A}_p1_00007": (1.0, 5.0),  # timestamp_frame 30 / 10 fps (no timestamp_sec)
        f"{A}_p1_00010": (8.05, 10.0),
        f"{A}_p2_00000": (2.0, 6.0),
        f"{B}_p1_00000": (0.0, 2.5),
        f"{B}_p1_00001": (3.9, 6.0),
    }
    assert lines[f"{A}_p1_00000"]["narration"] == "#C C picks a cup from the table"  # as written
    assert lines[f"{B}_p1_00000"]["video"] == f"v2/full_scale/{B}.mp4"
    records = validate_manifest(out, SPLITS)
    assert [r.window for r in records if r.clip_id == f"{A}_p1_00010"] == [range(81, 100)]
    reasons = {item: reason for item, reason in skipped}
    line_a = 2  # A's entry starts on line 2 of the indented file
    assert reasons[f"narration.json:{line_a}: {A} narration_pass_1[2]"] == ego4d.SKIP_UNSURE
    assert reasons[f"narration.json:{line_a}: {A} narration_pass_1.summaries[0]"] == (
        ego4d.SKIP_SUMMARY
    )
    assert [r for r in reasons.values() if r == ego4d.SKIP_ENTRY] == [ego4d.SKIP_ENTRY]
    assert any(item.endswith(f"{D}") for item, r in skipped if r == ego4d.SKIP_ENTRY)


def test_metadata_gives_fps_and_duration(tmp_path: Path, dataset) -> None:
    narrations, videos = dataset
    metadata = tmp_path / "ego4d.json"
    metadata.write_text(
        json.dumps(
            {
                "date": "2022-02-01",
                "version": "v2",
                "clips": [{"clip_uid": "c1", "video_uid": A, "extra": [1, {"x": [2]}]}],
                "videos": [
                    {
                        "video_uid": A,
                        "duration_sec": 8.0,
                        "video_metadata": {"fps": 10.0, "num_frames": 80},
                    },
                    {"video_uid": B, "video_metadata": {"fps": 10.0}},  # no duration: probed
                ],
                "concurrent_video_sets": {},
            }
        )
    )
    assert {k: (v.fps, v.frame_count) for k, v in ego4d.read_metadata(metadata).items()} == {
        A: (10.0, 80)
    }
    summary, _, lines = run_import(tmp_path / "m.jsonl", narrations, videos, metadata=metadata)
    assert summary["skipped_by_reason"][ego4d.SKIP_BEYOND] == 2  # 10.05 s is now beyond 8 s
    assert (lines[f"{A}_p1_00001"]["start_sec"], lines[f"{A}_p1_00001"]["end_sec"]) == (3.0, 7.0)
    assert f"{A}_p1_00010" not in lines and f"{B}_p1_00001" in lines
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"clips": []}))
    with pytest.raises(ImportFormatError, match="bad.json: no 'videos' array"):
        ego4d.read_metadata(bad)


def test_passes_window_and_held_out_split(tmp_path: Path, dataset) -> None:
    narrations, videos = dataset
    summary, _, lines = run_import(
        tmp_path / "m.jsonl",
        narrations,
        videos,
        passes=[1],
        window=ego4d.ClipWindow(before=0.0, after=1.0),
        held_out_fraction=1.0,
    )
    assert summary["skipped_by_reason"][ego4d.SKIP_UNSELECTED] == 3  # A pass 2 (2), E pass 2 (1)
    assert summary["skipped_by_reason"][ego4d.SKIP_NO_FRAME] == 1  # 10.05 s: [10.05, 10] is empty
    assert summary["per_split"] == {"val": 5}
    assert (lines[f"{A}_p1_00000"]["start_sec"], lines[f"{A}_p1_00000"]["end_sec"]) == (1.0, 2.0)
    with pytest.raises(ValueError, match="before \\+ after must be positive"):
        ego4d.ClipWindow(0.0, 0.0)


def test_held_out_is_a_stable_fraction_of_videos() -> None:
    uids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(20_000)]
    chosen = [u for u in uids if ego4d.held_out(u, 0.1)]
    assert 1_800 <= len(chosen) <= 2_200
    assert chosen == [u for u in uids if ego4d.held_out(u, 0.1)]  # deterministic
    assert set(chosen) <= {u for u in uids if ego4d.held_out(u, 0.2)}  # nested fractions
    assert not any(ego4d.held_out(u, 0.0) for u in uids[:100])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", r"narration\.json:1:1: the top level .* must be a JSON object, got an array"),
        ("", r"narration\.json:1:1: .* must be a JSON object, got nothing \(empty file\)"),
        ('{"a": {"narration_pass_1": {}}}\n  x', r"narration\.json:2:3: .*unexpected data"),
        ('{"a": {}, 7: {}}', r"narration\.json:1:11: invalid JSON: expected '\"'"),
        ('{\n "a": {"x": 1,\n  "y": [1, 2}}', r"narration\.json:3:13: invalid JSON: Expecting"),
    ],
)
def test_malformed_files_name_file_line_and_column(tmp_path: Path, text: str, message: str):
    path = tmp_path / "narration.json"
    path.write_text(text)
    with pytest.raises(ImportFormatError, match=message):
        run_import(tmp_path / "m.jsonl", path, tmp_path)
    assert not (tmp_path / "m.jsonl").exists()


def test_truncated_and_non_utf8_files(tmp_path: Path, dataset) -> None:
    narrations, videos = dataset
    text = narrations.read_text()
    cut = text.index('"#C C opens the drawer"') + 10  # inside A's second narration
    narrations.write_text(text[:cut])
    line = text.count("\n", 0, cut) + 1
    with pytest.raises(ImportFormatError, match=rf"narration\.json:{line}:\d+: truncated JSON"):
        run_import(tmp_path / "m.jsonl", narrations, videos)
    narrations.write_text(text[: text.index(B) + len(B) + 1])  # ends after a key
    with pytest.raises(ImportFormatError, match="truncated JSON: the file ends after the key"):
        run_import(tmp_path / "m.jsonl", narrations, videos)
    narrations.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        run_import(tmp_path / "m.jsonl", narrations, videos)
    assert not (tmp_path / "m.jsonl").exists()


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**12), 10**12)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    if kind in (3, 4):
        return "".join(rng.choice('ab "\\\n\té😀{}[],:') for _ in range(rng.randrange(12)))
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(5))}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_json_stream_matches_json_loads_at_any_chunk_size(chunk: int) -> None:
    rng = random.Random(chunk)
    for _ in range(20):
        doc = {f"v{i}": _random_value(rng, 0) for i in range(rng.randrange(6))}
        text = json.dumps(doc, indent=rng.choice([None, 1, 2]), ensure_ascii=rng.random() < 0.5)
        stream = JsonStream(io.StringIO(text), "doc.json", chunk_chars=chunk)
        got = {}
        for key in stream.members("doc"):
            if rng.random() < 0.3:
                stream.skip(key)
                got[key] = doc[key]
            else:
                got[key] = stream.value()
        stream.end()
        assert got == doc
        items = JsonStream(io.StringIO(json.dumps(list(doc.values()))), "a.json", chunk)
        assert list(items.items("a")) == list(doc.values())


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_json_stream_error_position_at_any_chunk_size(chunk: int) -> None:
    text = '{\n  "a": [1, 2],\n  "b": {"c": tru}\n}'
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    where = f"doc.json:{expected.value.lineno}:{expected.value.colno}"  # 3:14, as json says
    stream = JsonStream(io.StringIO(text), "doc.json", chunk_chars=chunk)
    with pytest.raises(ImportFormatError, match=rf"^{where}: invalid JSON: Expecting value"):
        keys = []
        for key in stream.members("doc"):
            keys.append(key)
            stream.value()
    assert keys == ["a", "b"]


def test_command_prints_summary_and_fails_cleanly(tmp_path: Path, dataset, capsys) -> None:
    narrations, videos = dataset
    parser = argparse.ArgumentParser()
    ego4d.add_arguments(parser)
    parser.add_argument("--out", required=True)
    out = tmp_path / "manifest.jsonl"
    args = parser.parse_args([str(narrations), "--videos", str(videos), "--out", str(out)])
    args.format = "ego4d"
    assert cmd_import(args, {}) == 0
    printed = capsys.readouterr().out
    assert "ego4d: imported 7 clips" in printed and f"1 × {ego4d.SKIP_UNSURE}" in printed
    narrations.write_text("[]")
    assert cmd_import(args, {}) == 1
    assert "must be a JSON object, got an array" in capsys.readouterr().err
    for bad in (["--before", "-1"], ["--passes", "3"], ["--held-out-fraction", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args([str(narrations), "--videos", "v", "--out", "x", *bad])
    args = parser.parse_args(
        [str(narrations), "--videos", "v", "--out", "x", "--before", "0", "--after", "0"]
    )
    args.format = "ego4d"
    assert cmd_import(args, {}) == 1
    assert "before + after must be positive" in capsys.readouterr().err
