"""The dataset stage: manifest -> clips.parquet (one row group per shard) + annotations.parquet."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_manifest import (
    FPS,
    KNIFE_A,
    KNIFE_B,
    ONION,
    SPLITS,
    H,
    W,
    good_clip,
    make_folder,
    make_video,
    rle_json,
    write_manifest,
)

from nvos import rle, storage
from nvos.dataset import build_dataset, read_shard_clips
from nvos.manifest import ManifestError


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "v.mp4")
    make_folder(tmp_path / "videos" / "frames")
    return tmp_path


def untagged(clip_id: str, split: str = "train") -> dict[str, Any]:
    return {"clip_id": clip_id, "video": "videos/v.mp4", "narration": "C cuts", "split": split}


def test_round_trip_with_shards(folder: Path) -> None:
    frames_clip = {
        "clip_id": "f0",
        "video": "videos/frames",
        "narration": "hold [the onion]<7>",
        "split": "test",
        "fps": 5,
        "annotations": [{"frame_index": 3, "objects": {"7": rle_json(ONION)}}],
    }
    lines: list[dict[str, Any] | str] = [
        untagged("t0"),
        good_clip("c0"),
        "",
        untagged("t1"),
        frames_clip,
        "",
        dict(untagged("t2"), start_sec=1.0),
    ]
    manifest = write_manifest(folder, lines)
    out = folder / "results"
    result = build_dataset(
        manifest, out / "clips.parquet", out / "annotations.parquet", SPLITS, 2, 30.0
    )
    assert result.shards == ["s00000", "s00001", "s00002"]
    assert result.counts["clips"] == 5
    assert result.counts["masks"] == 6

    clips = storage.read_table(out / "clips.parquet", "clips")
    assert clips.column("clip_id").to_pylist() == ["t0", "c0", "t1", "f0", "t2"]
    assert clips.column("shard").to_pylist() == ["s00000", "s00000", "s00001", "s00001", "s00002"]
    assert clips.column("start_sec").to_pylist() == [0.0, 0.5, 0.0, 0.0, 1.0]
    assert clips.column("end_sec").to_pylist() == [2.0, 1.5, 2.0, 1.0, 2.0]
    assert clips.column("split").to_pylist() == ["train", "val", "train", "test", "train"]
    assert clips.column("narration").to_pylist()[1] == good_clip()["narration"]
    assert clips.column("video").to_pylist()[3] == str((folder / "videos" / "frames").resolve())

    assert pq.read_schema(out / "clips.parquet").names == storage.SCHEMAS["clips"].names
    metadata = pq.ParquetFile(out / "clips.parquet").metadata
    assert metadata.num_row_groups == 3
    shard_column = clips.schema.get_field_index("shard")
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(shard_column).statistics
        assert stats.min == stats.max == f"s{group:05d}"

    shard = read_shard_clips(out / "clips.parquet", "s00001")
    assert shard.column("clip_id").to_pylist() == ["t1", "f0"]
    assert shard.schema.names == storage.SCHEMAS["clips"].names
    with pytest.raises(ValueError, match="shard 's00009' has no clips"):
        read_shard_clips(out / "clips.parquet", "s00009")

    annotations = storage.read_table(out / "annotations.parquet", "annotations")
    rows = list(
        zip(
            *(annotations.column(c).to_pylist() for c in ("clip_id", "frame_index", "object_id")),
            annotations.column("instance").to_pylist(),
            strict=True,
        )
    )
    assert rows == [
        ("c0", 6, "1", 0),
        ("c0", 6, "2", 0),
        ("c0", 9, "1", 0),
        ("c0", 9, "2", 0),
        ("c0", 9, "2", 1),
        ("f0", 3, "7", 0),
    ]
    expected = [ONION, KNIFE_B, ONION, KNIFE_A, KNIFE_B, ONION]
    for row, mask in zip(annotations.to_pylist(), expected, strict=True):
        assert (row["height"], row["width"]) == (H, W)
        np.testing.assert_array_equal(rle.decode(row["rle_counts"], H, W), mask)


def test_provenance_records_manifest_hash_and_config(folder: Path) -> None:
    manifest = write_manifest(folder, [good_clip()])
    out = folder / "out"
    build_dataset(manifest, out / "c.parquet", out / "a.parquet", SPLITS, 8, 12.5)
    for name in ("c.parquet", "a.parquet"):
        meta = storage.read_provenance(out / name)
        assert meta["stage"] == "dataset"
        assert meta["manifest"] == str(manifest.resolve())
        assert meta["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
        assert meta["config"] == {
            "splits": list(SPLITS),
            "clips_per_shard": 8,
            "folder_fps": 12.5,
        }


def test_nothing_is_written_when_validation_fails(folder: Path) -> None:
    manifest = write_manifest(folder, [good_clip(), dict(good_clip("x"), split="nope")])
    out = folder / "out"
    with pytest.raises(ManifestError, match="unknown split 'nope'"):
        build_dataset(manifest, out / "clips.parquet", out / "annotations.parquet", SPLITS, 2)
    assert not (out / "clips.parquet").exists()
    assert not (out / "annotations.parquet").exists()
    assert not out.exists() or list(out.iterdir()) == []


def test_manifest_without_annotations_gives_an_empty_annotations_table(folder: Path) -> None:
    manifest = write_manifest(folder, [untagged("a"), untagged("b", "val")])
    out = folder / "out"
    result = build_dataset(manifest, out / "c.parquet", out / "a.parquet", SPLITS, 1, FPS)
    assert result.shards == ["s00000", "s00001"]
    annotations = storage.read_table(out / "a.parquet", "annotations")
    assert annotations.num_rows == 0
    assert annotations.schema.names == storage.SCHEMAS["annotations"].names


def test_clips_per_shard_must_be_positive(folder: Path) -> None:
    manifest = write_manifest(folder, [untagged("a")])
    with pytest.raises(ValueError, match="clips_per_shard"):
        build_dataset(manifest, folder / "c.parquet", folder / "a.parquet", SPLITS, 0)


def test_exhaustive_flags_become_an_annotations_column(folder: Path) -> None:
    flagged = dict(good_clip("c0"), exhaustive={"1": True})  # object 2: no flag (null)
    manifest = write_manifest(folder, [flagged, good_clip("c1"), untagged("t")])
    out = folder / "out"
    build_dataset(manifest, out / "c.parquet", out / "a.parquet", SPLITS, 8, FPS)
    table = pq.read_table(out / "a.parquet")
    rows = {
        (r["clip_id"], r["object_id"], r["frame_index"], r["instance"]): r["exhaustive"]
        for r in table.to_pylist()
    }
    assert rows[("c0", "1", 6, 0)] is True and rows[("c0", "2", 9, 1)] is None
    assert rows[("c1", "1", 6, 0)] is None
    # without any flag the table keeps exactly the declared columns
    plain = write_manifest(folder, [good_clip("c0")], name="plain.jsonl")
    build_dataset(plain, out / "c2.parquet", out / "a2.parquet", SPLITS, 8, FPS)
    assert pq.read_schema(out / "a2.parquet").names == storage.SCHEMAS["annotations"].names
