"""End-to-end: ``snakemake report`` with the GroundedSAM and SAM 3 rows, random tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_workflow import snakemake

from nvos import skips, storage

pytestmark = pytest.mark.slow

# 4 clips (train 2, val 1, test 1), one shard, the val clip scored; nothing trained (no ROSA row).
TINY_PROMPTED = {
    "dataset": {"demo": {"clips": 4, "seed": 3}},
    "shards": {"clips_per_shard": 4},
    "frames": {"per_clip": 1, "max_side": 96},
    "proposals": {"max_per_frame": 4, "sam": {"model_type": "tiny", "random_weights": True}},
    "grounded_sam": {"random_weights": True, "box_threshold": 0.0},
    "sam3": {"random_weights": True, "score_threshold": 0.0},
    "evaluate": {"methods": ["grounded_sam", "sam3"], "splits": ["val"], "seen_unseen": False},
    "report": {"overlay_clips": 1, "overlay_frames": 1},
}


def test_report_has_grounded_sam_and_sam3_rows(tmp_path: Path) -> None:
    done = snakemake(tmp_path, "report", config=TINY_PROMPTED)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "results" / "demo"
    table = (run / "report/table.md").read_text()
    for label in ("GroundedSAM", "SAM 3"):
        assert f"| {label} |" in table, table
    note = table.split("**Random weights: ")[1].split("\n")[0]
    assert "grounded_sam is randomly initialised" in note and "sam3 is randomly" in note
    for method, segmenter in (("grounded_sam", "grounded_sam"), ("sam3", "sam3")):
        path = run / f"predictions/{method}/s00000.parquet"
        predictions = storage.read_table(path, "predictions")
        assert predictions.num_rows > 0
        assert set(predictions["proposal_id"].to_pylist()) == {-1}
        meta = storage.read_provenance(path)
        assert meta["segmenter"]["segmenter"] == segmenter
        assert meta["config"][method]["random_weights"] is True
        summary = json.loads((run / f"metrics/{method}/val/summary.json").read_text())
        assert summary["objects"] > 0 and summary["missing_frames"] == 0
        assert (run / f"logs/predict/{method}/s00000.log").stat().st_size > 0
    assert storage.read_provenance(run / "predictions/grounded_sam/s00000.parquet")["config"][
        "sam"
    ] == {"model_type": "tiny", "checkpoint": None, "random_weights": True, "image_size": None}
    stages = [row["stage"] for row in skips.read_reconciliation(run / "reconciliation.csv")]
    assert "predictions/grounded_sam" in stages and "predictions/sam3" in stages
    assert not (run / "models").exists()  # no ROSA row: nothing trained
