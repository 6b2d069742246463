"""The train stage: one variant from a run's feature cache, here and under torchrun (gloo, CPU)."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from nvos.devices import claim_device
from nvos.layout import RunLayout
from nvos.rosa import stage
from nvos.rosa.config import resolve_variant
from nvos.rosa.model import load_model
from nvos.rosa.stage import run_torchrun, torchrun_command, train_on_device
from nvos.testing.cache_fixture import synthetic_clips, write_synthetic_cache

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


def test_train_on_device_trains_one_variant_of_the_cache(tmp_path: Path) -> None:
    shards = feature_cache(tmp_path)
    out = tmp_path / "models/rosa_noctx"
    config = resolve_variant(ROSA, "rosa_noctx")
    summary = train_on_device(
        RunLayout.at(tmp_path), shards, "rosa_noctx", config, torch.device("cpu")
    )
    assert summary.steps == 3 and summary.best_step == 3  # validated on the val split
    assert steps(out / "train_log.csv") == [1, 2, 3]
    model = load_model(summary.checkpoint)
    assert model.config.feature_dim == 8 and model.config.use_context is False


def test_torchrun_command_trains_in_two_processes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What train_variant starts for rosa.train.gpus > 1, here with gloo on the CPU (the spec's
    ``device``), its output in this process's log."""
    shards = feature_cache(tmp_path)
    rosa = {**ROSA, "train": {**ROSA["train"], "gpus": 2}}
    out = tmp_path / "models/rosa"
    spec = tmp_path / "train_args.json"
    spec.write_text(
        json.dumps(
            {
                "run_dir": str(tmp_path),
                "shards": shards,
                "rosa": rosa,
                "variant": "rosa",
                "device": "cpu",
            }
        )
    )
    with caplog.at_level(logging.INFO, logger="nvos.rosa.stage"):
        run_torchrun(torchrun_command(spec, 2), {**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [r.getMessage() for r in caplog.records]
    assert any("[rank 0]" in m and "process group gloo: rank 0 of 2" in m for m in lines)
    assert not any("[rank 1]" in m and " INFO " in m for m in lines)  # rank 1: warnings only
    assert steps(out / "train_log.csv") == [1, 2, 3]
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["steps"] == 3 and saved["config"]["train"]["gpus"] == 2


def test_failing_rank_is_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import os\n"
        "rank = int(os.environ['RANK'])\n"
        "print(f'rank {rank} started', flush=True)\n"
        "if rank == 1:\n"
        "    raise ValueError('rank one broke')\n"
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    with caplog.at_level(logging.INFO, logger="nvos.rosa.stage"):
        with pytest.raises(RuntimeError, match="torchrun exited with status 1"):
            run_torchrun([*cmd, str(script)], dict(os.environ))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "rank 0 started" in text and "ValueError: rank one broke" in text


def test_multi_gpu_training_claims_its_devices_through_the_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpus=2 among 4 visible (faked) devices, one held by another job: torchrun gets the first
    two free ones in CUDA_VISIBLE_DEVICES (their entries of the variable), holding their locks
    while it runs; they are free again afterwards."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    locks = tmp_path / "locks"
    seen: dict[str, object] = {}

    def fake_torchrun(cmd: list[str], environ: dict[str, str]) -> None:
        seen["cmd"], seen["visible"] = cmd, environ["CUDA_VISIBLE_DEVICES"]
        # The claimed devices are held: another job gets neither.
        with claim_device(locks, n_devices=4, timeout_s=0.1, poll_s=0.02) as other:
            seen["other"] = str(other)
        seen["spec"] = json.loads(Path(cmd[-1]).read_text())

    monkeypatch.setattr(stage, "run_torchrun", fake_torchrun)
    rosa = {**ROSA, "train": {**ROSA["train"], "gpus": 2}}
    with claim_device(locks, n_devices=4) as first:  # another job holds cuda:0 (GPU 4)
        assert str(first) == "cuda:0"
        config = resolve_variant(rosa, "rosa")
        result = stage.train_variant(RunLayout.at(tmp_path), ["s0"], "rosa", config, locks, 4)
    assert result is None
    assert seen["visible"] == "5,6" and "--nproc_per_node=2" in seen["cmd"]
    assert seen["other"] == "cuda:3"  # GPU 7: the one left
    assert seen["spec"]["device"] == "cuda" and seen["spec"]["run_dir"] == str(tmp_path)
    assert seen["spec"]["variant"] == "rosa" and seen["spec"]["rosa"]["train"]["gpus"] == 2
    with claim_device(locks, n_devices=4, timeout_s=0.1) as again:  # all released
        assert str(again) == "cuda:0"
