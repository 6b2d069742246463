"""Clip accounting (nvos.skips): clips in = clips out + clips skipped, per job and per run."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from test_frames import make_video, run, write_inputs
from test_proposals_stage import HEIGHT, WIDTH, FakeBackend, _frame_image, _write_frames

from nvos import storage
from nvos.proposals.stage import generate_proposals
from nvos.skips import Ledger, ReconciliationError, Skip, gather, read_reconciliation, write_ledger


def test_balanced_ledger_counts_clips_and_frames() -> None:
    ledger = Ledger.of(
        "proposals",
        "s00000",
        ["a", "b", "c"],
        ["a", "c"],
        [Skip("b", "no_proposals"), Skip("a", "no_proposals", frame_index=4)],
    )
    assert ledger.counts() == {
        "clips_in": 3,
        "clips_out": 2,
        "clips_skipped": 1,
        "frames_skipped": 1,
    }
    table = ledger.table().to_pylist()
    assert table[1] == {
        "stage": "proposals",
        "shard": "s00000",
        "clip_id": "a",
        "frame_index": 4,
        "reason": "no_proposals",
        "detail": "",
    }


@pytest.mark.parametrize(
    ("clips_out", "skips", "message"),
    [
        (["a"], [], "1 clips neither written nor skipped: ['b']"),
        (["a", "b"], [Skip("b", "x")], "1 clips both written and skipped: ['b']"),
        (["a"], [Skip("b", "x"), Skip("b", "y")], "1 clips skipped twice: ['b']"),
        (["a", "b", "z"], [], "1 clips written or skipped but not read: ['z']"),
        (["a"], [Skip("b", "x"), Skip("b", "x", 3)], "frame skips of clips that were not written"),
    ],
)
def test_unbalanced_ledger_fails_naming_the_clips(
    clips_out: list[str], skips: list[Skip], message: str
) -> None:
    with pytest.raises(ReconciliationError, match="frames s00001: clips in") as error:
        Ledger.of("frames", "s00001", ["a", "b"], clips_out, skips)
    assert message in str(error.value)


def test_written_ledgers_are_gathered_and_rechecked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames = Ledger.of("frames", "s00000", ["a", "b"], ["a", "b"])
    proposals = Ledger.of(
        "proposals",
        "s00000",
        ["a", "b"],
        ["a"],
        [Skip("b", "no_proposals", detail="on none of its frames"), Skip("a", "no_proposals", 7)],
    )
    paths = [tmp_path / "skipped/frames/s00000.parquet", tmp_path / "proposals.parquet"]
    with caplog.at_level(logging.INFO, logger="nvos.skips"):
        write_ledger(frames, paths[0])
        write_ledger(proposals, paths[1])
    assert "proposals s00000: skipped clip b: no_proposals (on none of its frames)" in caplog.text
    assert "proposals s00000: skipped clip a frame 7: no_proposals" in caplog.text
    assert "clips in 2 = out 1 + skipped 1" in caplog.text
    assert storage.read_table(paths[0], None).num_rows == 0  # nothing skipped: no rows

    rows = gather(paths, tmp_path / "skipped.csv", tmp_path / "reconciliation.csv")
    assert [r["stage"] for r in rows] == ["frames", "proposals"]
    with open(tmp_path / "skipped.csv", newline="") as handle:
        skipped = list(csv.DictReader(handle))
    assert [(r["stage"], r["clip_id"], r["frame_index"], r["reason"]) for r in skipped] == [
        ("proposals", "b", "", "no_proposals"),
        ("proposals", "a", "7", "no_proposals"),
    ]
    summary = read_reconciliation(tmp_path / "reconciliation.csv")
    assert summary[1] == {
        "stage": "proposals",
        "jobs": 1,
        "clips_in": 2,
        "clips_out": 1,
        "clips_skipped": 1,
        "frames_skipped": 1,
        "reasons": "no_proposals=2",
    }
    assert summary[0]["clips_in"] == summary[0]["clips_out"] == 2 and summary[0]["reasons"] == ""


def test_gather_fails_on_counts_that_do_not_add_up(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    table = Ledger.of("frames", "s00000", ["a"], [], [Skip("a", "no_frames")]).table()
    record = {"for_stage": "frames", "clips_in": 2, "clips_out": 0, "clips_skipped": 1}
    storage.write_table(table, path, table.schema, meta=record)
    with pytest.raises(ReconciliationError, match=f"{path}: clips in 2 != out 0 \\+ skipped 1"):
        gather([path], tmp_path / "s.csv", tmp_path / "r.csv")
    assert not (tmp_path / "s.csv").exists()


def test_frames_stage_skips_a_clip_with_no_frame_to_store(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "v.mp4", n_frames=10)
    clips = [
        {"clip_id": "plain", "video": mp4, "start_sec": None, "end_sec": None},
        {"clip_id": "ann", "video": mp4, "start_sec": None, "end_sec": None},
    ]
    clips_path, ann_path = write_inputs(tmp_path, clips, {"ann": [3]})
    ledger = run(clips_path, ann_path, tmp_path / "f.parquet", per_clip=0).ledger
    assert ledger.clips_in == ("plain", "ann") and ledger.clips_out == {"ann"}
    assert [(s.clip_id, s.reason) for s in ledger.skips] == [("plain", "no_frames")]


def test_proposals_stage_skips_clips_and_frames_without_proposal(tmp_path: Path) -> None:
    black = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)  # the fake backend finds nothing
    frames = tmp_path / "frames.parquet"
    _write_frames(
        frames,
        {("a", 0): _frame_image(0), ("a", 3): black, ("b", 1): black, ("c", 2): _frame_image(2)},
    )
    summary = generate_proposals(
        frames, tmp_path / "p.parquet", FakeBackend(), 3, 2, meta={"shard": "s00003"}
    )
    ledger = summary.ledger
    assert (ledger.stage, ledger.shard) == ("proposals", "s00003")
    assert ledger.clips_in == ("a", "b", "c") and ledger.clips_out == {"a", "c"}
    assert [(s.clip_id, s.frame_index, s.reason) for s in ledger.skips] == [
        ("b", None, "no_proposals"),
        ("a", 3, "no_proposals"),
    ]
    written = storage.read_table(tmp_path / "p.parquet", "proposals")["clip_id"]
    assert set(written.to_pylist()) == set(ledger.clips_out)
