"""Storage layer: declared schemas, atomic writes, provenance, RLE helpers."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nvos import rle
from nvos.storage import (
    SchemaError,
    atomic_path,
    read_provenance,
    read_table,
    regions_schema,
    write_table,
)


def _clips_table() -> pa.Table:
    return pa.table(
        {
            "clip_id": ["a", "b"],
            "video": ["v.mp4", "v.mp4"],
            "start_sec": [0.0, 1.0],
            "end_sec": [1.0, 2.0],
            "fps": [30.0, 30.0],
            "split": ["train", "val"],
            "narration": ["x", "y"],
            "shard": ["s00000", "s00000"],
            "extra": [1, 2],
        }
    )


def test_write_read_round_trip_with_provenance(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    write_table(_clips_table(), path, "clips", meta={"stage": "dataset", "config": {"k": 1}})
    table = read_table(path, "clips")
    assert table.column_names == [
        "clip_id",
        "video",
        "start_sec",
        "end_sec",
        "fps",
        "split",
        "narration",
        "shard",
    ]
    assert table["clip_id"].to_pylist() == ["a", "b"]
    assert read_provenance(path) == {"stage": "dataset", "config": {"k": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["clips.parquet"]


def test_missing_column_is_a_schema_error(tmp_path: Path) -> None:
    table = _clips_table().drop(["shard"])
    with pytest.raises(SchemaError, match="shard"):
        write_table(table, tmp_path / "clips.parquet", "clips")
    assert not (tmp_path / "clips.parquet").exists()


def test_embedding_columns_are_fixed_size_float16(tmp_path: Path) -> None:
    schema = regions_schema(4)
    emb = pa.array([[0.5, 0.25, 0.0, 1.0]], type=pa.list_(pa.float32(), 4))
    table = pa.table({"clip_id": ["a"], "frame_index": [3], "proposal_id": [0], "embedding": emb})
    write_table(table, tmp_path / "r.parquet", schema)
    back = read_table(tmp_path / "r.parquet", schema)
    assert back.schema.field("embedding").type == pa.list_(pa.float16(), 4)
    values = np.asarray(back["embedding"].combine_chunks().flatten())
    np.testing.assert_array_equal(values, np.array([0.5, 0.25, 0.0, 1.0], dtype=np.float16))


def test_atomic_path_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def _slow_writer(target: str) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "w") as handle:
            handle.write("partial")
            handle.flush()
            time.sleep(60)


def test_sigkill_during_write_leaves_no_final_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    process = mp.get_context("fork").Process(target=_slow_writer, args=(str(target),))
    process.start()
    deadline = time.time() + 10
    while time.time() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.05)
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert not target.exists()
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_rle_round_trip_and_geometry() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((5, 37, 53)) > 0.6
    masks[0] = False
    counts = rle.encode_many(masks)
    for mask, c in zip(masks, counts, strict=True):
        assert c == rle.encode(mask)
        np.testing.assert_array_equal(rle.decode(c, 37, 53), mask)
        assert rle.area(c, 37, 53) == int(mask.sum())
    box = np.zeros((20, 30), bool)
    box[5:9, 10:17] = True
    assert rle.bbox(rle.encode(box), 20, 30) == (10.0, 5.0, 7.0, 4.0)


def test_check_json_rle_rejects_malformed() -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    good = {"size": [4, 6], "counts": rle.encode(mask).decode()}
    assert rle.check_json_rle(good)[:2] == (4, 6)
    for bad, reason in [
        ({"size": [4, 6]}, "'size' and 'counts'"),
        ({"size": [4], "counts": "0"}, "size"),
        ({"size": [4, 6], "counts": good["counts"] + "5"}, "malformed"),
        ({"size": [5, 6], "counts": good["counts"]}, "malformed"),
        ({"size": [4, 6], "counts": "\x7f\x7f"}, "malformed"),
    ]:
        with pytest.raises(rle.RLEError, match=reason):
            rle.check_json_rle(bad)
