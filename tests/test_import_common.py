"""The shared importer contract: streaming manifest writer, skip list, summary, atomicity."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nvos.importers.common import (
    ImportFormatError,
    open_manifest,
    relative_path,
    skipped_path,
    summary_path,
)


def _line(clip_id: str, split: str = "train", objects: dict | None = None) -> dict:
    line = {"clip_id": clip_id, "video": "v.mp4", "narration": "take cup", "split": split}
    if objects is not None:
        line["annotations"] = [{"frame_index": 0, "objects": objects}]
    return line


def test_writer_counts_clips_masks_and_skips(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    rle = {"size": [2, 2], "counts": "04"}
    with open_manifest(out, "test") as writer:
        assert writer.write(_line("a"))
        assert writer.write(_line("b", "val", {"1": rle, "2": [rle, rle]}))
        assert not writer.write(_line("a"))  # duplicate: skipped, not written
        writer.skip("row 7", "missing video")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["clip_id"] for x in lines] == ["a", "b"]
    summary = json.loads(summary_path(out).read_text())
    assert summary["clips"] == 2
    assert summary["per_split"] == {"train": 1, "val": 1}
    assert summary["masks"] == 3
    assert summary["skipped_by_reason"] == {"duplicate clip_id": 1, "missing video": 1}
    with open(skipped_path(out), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["item", "reason"], ["a", "duplicate clip_id"], ["row 7", "missing video"]]
    assert "skipped 2 items" in writer.summary.text()


def test_failed_import_leaves_no_files(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    with pytest.raises(RuntimeError), open_manifest(out, "test") as writer:
        writer.write(_line("a"))
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_with_no_clip_is_an_error_that_lists_the_skips(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    with pytest.raises(ImportFormatError, match="no clip could be imported") as error:
        with open_manifest(out, "test") as writer:
            writer.skip("row 2", "unsure narration")
    assert "1 × unsure narration" in str(error.value)
    assert not out.exists()


def test_relative_path_is_relative_to_the_manifest_folder(tmp_path: Path) -> None:
    manifest = tmp_path / "out" / "m.jsonl"
    assert relative_path(tmp_path / "videos" / "v.mp4", manifest) == "../videos/v.mp4"
