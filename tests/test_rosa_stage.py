"""The train stage: one variant from a run's feature cache, here and under torchrun (gloo, CPU)."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import torch

from nvos.rosa.cache_fixture import synthetic_clips, write_synthetic_cache
from nvos.rosa.model import load_model
from nvos.rosa.stage import run_train, torchrun_command

ROSA = {
    "dim": 16,
    "context_layers": 0,
    "frames_per_clip": 2,
    "max_regions": 4,
    "train": {
        "batch_size": 4,
        "steps": 3,
        "warmup_steps": 1,
        "log_every": 1,
        "val_every": 3,
        "checkpoint_every": 3,
        "bf16": False,
    },
    "variants": {"rosa": {}, "rosa_noctx": {"use_context": False}},
}


def feature_cache(root: Path) -> list[str]:
    """12 clips in 2 shards (8 train, 4 val) with the pipeline's file layout; the shard ids."""
    clips = synthetic_clips(
        12, 6, splits=("train", "train", "val"), sampled_frames=3, annotated_frames=1, proposals=4
    )
    return write_synthetic_cache(root, clips, dim=8)


def steps(log: Path) -> list[int]:
    with open(log, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_run_train_trains_one_variant_of_the_cache(tmp_path: Path) -> None:
    shards = feature_cache(tmp_path)
    out = tmp_path / "models/rosa_noctx"
    summary = run_train(
        tmp_path, shards, tmp_path / "clips.parquet", out, ROSA, "rosa_noctx", torch.device("cpu")
    )
    assert summary.steps == 3 and summary.best_step == 3  # validated on the val split
    assert steps(out / "train_log.csv") == [1, 2, 3]
    model = load_model(summary.checkpoint)
    assert model.config.feature_dim == 8 and model.config.use_context is False


def test_torchrun_command_trains_in_two_processes(tmp_path: Path) -> None:
    """What launch_training starts for rosa.train.gpus > 1, here with gloo on the CPU."""
    shards = feature_cache(tmp_path)
    rosa = {**ROSA, "train": {**ROSA["train"], "gpus": 2}}
    out = tmp_path / "models/rosa"
    spec = tmp_path / "train_args.json"
    spec.write_text(
        json.dumps(
            {
                "run_dir": str(tmp_path),
                "shards": shards,
                "clips_path": str(tmp_path / "clips.parquet"),
                "out_dir": str(out),
                "rosa": rosa,
                "variant": "rosa",
            }
        )
    )
    result = subprocess.run(torchrun_command(spec, 2), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        assert f"process group gloo: rank {rank} of 2" in result.stderr
    assert steps(out / "train_log.csv") == [1, 2, 3]
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["steps"] == 3 and saved["config"]["train"]["gpus"] == 2
