"""Imported datasets run through the workflow; the dataset config examples validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from importer_fixtures import write_visor
from test_workflow import snakemake

from nvos import storage
from nvos.config import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["visor_nvos.yaml", "vost.yaml"])
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
            "train": {"batch_size": 2, "epochs": 1, "warmup_steps": 1},
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
