"""Small pipeline tables for tests (shared by the evaluation, oracle, report and export tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nvos import storage


def write_clips(
    path: Path, rows: list[tuple[str, str, str]], shard: str = "s00000", **extra: list
) -> None:
    """``clips.parquet`` from rows (clip_id, split, narration); ``extra`` columns (e.g. an optional
    ``exhaustive`` flag) are kept, so the file is written without conforming to the schema."""
    n = len(rows)
    table = pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "video": ["v.mp4"] * n,
            "start_sec": [0.0] * n,
            "end_sec": [1.0] * n,
            "fps": [10.0] * n,
            "split": [r[1] for r in rows],
            "narration": [r[2] for r in rows],
            "shard": [shard] * n,
            **extra,
        }
    )
    pq.write_table(table, path)


def write_frames(
    path: Path, rows: list[tuple[str, int, str, int]], height: int, width: int
) -> None:
    """``frames/<shard>.parquet`` from rows (clip_id, frame_index, role, grey level): each frame
    is a uniform (height, width) JPEG of that grey level; time_sec = frame_index / 10."""
    jpegs = []
    for _, _, _, grey in rows:
        ok, jpeg = cv2.imencode(".jpg", np.full((height, width, 3), grey, np.uint8))
        assert ok
        jpegs.append(jpeg.tobytes())
    table = pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "frame_index": [r[1] for r in rows],
            "time_sec": [r[1] / 10 for r in rows],
            "height": [height] * len(rows),
            "width": [width] * len(rows),
            "role": [r[2] for r in rows],
            "jpeg": jpegs,
        }
    )
    storage.write_table(table, path, "frames")


def make_video(
    path: Path, seconds: float, fps: float = 5.0, size: tuple[int, int] = (32, 24)
) -> Path:
    """A tiny mp4v video of ``seconds`` at ``fps`` (grey level = frame index mod 256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(round(seconds * fps)):
        writer.write(np.full((size[1], size[0], 3), i % 256, np.uint8))
    writer.release()
    return path


def summaries_in(metrics: Path) -> dict[tuple[str, str], Path]:
    """Every ``<metrics>/<method>/<split>/summary.json`` as (method, split) -> path."""
    return {(p.parent.parent.name, p.parent.name): p for p in metrics.glob("*/*/summary.json")}
