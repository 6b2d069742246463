"""Imported datasets run through the workflow; the dataset config examples validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from importer_fixtures import write_visor
from tables import make_video
from test_workflow import planned_jobs, snakemake

from nvos import storage
from nvos.config import load_config
from nvos.importers import ego4d
from nvos.importers.common import open_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["visor_nvos.yaml", "vost.yaml", "ego4d_train.yaml", "epic.yaml"])
def test_dataset_config_examples_validate(name: str) -> None:
    config = load_config([REPO / "config" / "examples" / name])
    assert config["dataset"]["manifest"].endswith("manifest.jsonl")
    assert set(config["evaluate"]["splits"]) <= set(config["dataset"]["splits"])
    assert set(config["predict"]["splits"]) <= set(config["dataset"]["splits"])


@pytest.mark.slow
def test_imported_visor_fixture_runs_through_snakemake_report(tmp_path: Path) -> None:
    fixture = write_visor(tmp_path / "visor")
    manifest = tmp_path / "import" / "manifest.jsonl"
    command = [sys.executable, "-m", "nvos.cli", "import", "visor", *fixture.argv(manifest)]
    imported = subprocess.run(
        [*command, "--size", "192x108"], capture_output=True, text=True, timeout=300
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert "visor: imported 5 clips" in imported.stdout
    config = {
        "run": "visor",
        "dataset": {"manifest": str(manifest)},
        "shards": {"clips_per_shard": 8},  # one shard: fewer jobs
        "frames": {"per_clip": 2, "max_side": 160},
        "proposals": {"max_per_frame": 8, "classical": {"scales": [100, 400]}},
        "rosa": {
            "dim": 32,
            "train": {"batch_size": 2, "epochs": 1, "warmup_steps": 1, "restarts": 1},
            "variants": {"rosa": {}},
        },
        "predict": {"splits": ["val"]},
        "evaluate": {"methods": ["sam_clip", "rosa", "oracle"], "splits": ["val"]},
    }
    work = tmp_path / "work"
    result = snakemake(work, "report", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    run = work / "results" / "visor"
    clips = storage.read_table(run / "clips.parquet", "clips")
    assert sorted(clips["split"].to_pylist()) == ["train", "train", "train", "val", "val"]
    table = (run / "report" / "table.md").read_text()
    for row in ("SAM + CLIP (zero-shot)", "ROSA", "SAM upper bound (oracle)"):
        assert f"| {row} |" in table, table
    assert (run / "report" / "index.html").exists()
    oracle = json.loads((run / "metrics/oracle/val/summary.json").read_text())
    assert oracle["objects"] == 4 and oracle["J"] > 0.0
    # VISOR's exhaustive flags reach the evaluation: all 'y' but the board (unflagged on 1000)
    groups = oracle["breakdowns"]["exhaustive"]
    assert groups["exhaustive"]["objects"] == 3 and groups["non_exhaustive"]["objects"] == 1


def test_training_only_manifest_plans_up_to_the_checkpoints(tmp_path: Path) -> None:
    """An imported Ego4D manifest (no masks) with no evaluation split: the default target trains
    every variant and accounts for skips, and plans no prediction, evaluation or report."""
    make_video(tmp_path / "videos" / "vid-a.mp4", 8, fps=10)
    narrations = {
        "vid-a": {
            "narration_pass_1": {
                "narrations": [
                    {"timestamp_sec": t, "narration_text": f"#C C picks a cup {i}"}
                    for i, t in enumerate([1.0, 3.0, 5.0, 7.0])
                ],
                "summaries": [],
            }
        }
    }
    (tmp_path / "narration.json").write_text(json.dumps(narrations))
    manifest = tmp_path / "manifest.jsonl"
    with open_manifest(manifest, "ego4d") as writer:
        ego4d.import_ego4d(tmp_path / "narration.json", tmp_path / "videos", writer)
    config = {
        "dataset": {"manifest": str(manifest)},
        "predict": {"splits": []},
        "evaluate": {"splits": []},
    }
    result = snakemake(tmp_path / "run", "-n", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    assert jobs["train"] == 4  # the four ROSA variants of the defaults
    assert jobs["skips"] == 1
    for rule in ("report", "evaluate_method", "predict_shard", "sam_clip_shard", "oracle_shard"):
        assert rule not in jobs
