"""The ``train`` stage (DESIGN §3): one ROSA variant from the run's feature cache.

:func:`run_train` trains in this process (:func:`nvos.rosa.restarts.train_restarts` on the
train split, the val split selecting the checkpoint); :func:`launch_training` does that on a
claimed GPU (or the CPU), or with ``rosa.train.gpus > 1`` starts it under ``torchrun``, whose
processes enter through :func:`main` (``python -m nvos.rosa.stage ARGS.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from nvos import storage
from nvos.rosa.config import TRAIN_SPLIT, VAL_SPLIT, resolve_variant
from nvos.rosa.distributed import init_from_env, shutdown
from nvos.rosa.restarts import train_restarts
from nvos.rosa.train import TrainSummary

__all__ = ["launch_training", "main", "run_train", "torchrun_command"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def run_train(
    run_dir: PathLike,
    shards: Sequence[str],
    clips_path: PathLike,
    out_dir: PathLike,
    rosa: Mapping[str, Any],
    variant: str,
    device: torch.device | None = None,
) -> TrainSummary:
    """The ``train`` stage of one variant: train split → ``out_dir`` (``models/<variant>/``).

    Reads ``features/<shard>.{regions,text}.parquet``, ``proposals/<shard>.parquet`` and
    ``frames/<shard>.parquet`` of ``run_dir`` through :class:`nvos.rosa.data.FeatureDataset`
    (training items: ``rosa.frames_per_clip`` sampled frames, ``rosa.max_regions`` proposals);
    the ``val`` split (same sampling, fixed to epoch 0) selects the checkpoint by VNA loss.
    """
    from nvos.rosa.data import FeatureDataset, ShardPaths

    config = resolve_variant(rosa, variant)
    paths = [ShardPaths.in_run(run_dir, s) for s in shards]

    def dataset(split: str) -> FeatureDataset:
        return FeatureDataset(
            paths,
            clips_path,
            splits=split,
            mode="train",
            frames_per_clip=config.frames_per_clip,
            max_regions=config.max_regions,
            seed=config.train.seed,
        )

    train_set = dataset(TRAIN_SPLIT)
    val_set = dataset(VAL_SPLIT)
    if len(val_set) == 0:
        logger.warning("no val clip with phrases and proposals: keeping the final weights")
    return train_restarts(train_set, val_set if len(val_set) else None, out_dir, config, device)


def launch_training(
    run_dir: PathLike,
    shards: Sequence[str],
    clips_path: PathLike,
    out_dir: PathLike,
    rosa: Mapping[str, Any],
    variant: str,
    lock_dir: PathLike,
) -> TrainSummary | None:
    """Run :func:`run_train` here (one GPU, claimed through ``lock_dir``, or the CPU), or with
    ``rosa.train.gpus > 1`` under ``torchrun --standalone --nproc_per_node <gpus>`` (the
    processes use ``cuda:0..gpus-1`` of the visible devices). Returns the summary when run here.
    """
    config = resolve_variant(rosa, variant)
    gpus = config.train.gpus
    if gpus > 1 and torch.cuda.device_count() >= 2:
        spec = Path(out_dir) / "train_args.json"
        storage.write_text(
            spec,
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "shards": list(shards),
                    "clips_path": str(clips_path),
                    "out_dir": str(out_dir),
                    "rosa": dict(rosa),
                    "variant": variant,
                },
                indent=1,
            ),
        )
        cmd = torchrun_command(spec, min(gpus, torch.cuda.device_count()))
        logger.info("launching %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        return None
    from nvos.devices import claim_device

    with claim_device(Path(lock_dir)) as device:
        return run_train(run_dir, shards, clips_path, out_dir, rosa, variant, device)


def torchrun_command(spec: PathLike, processes: int) -> list[str]:
    """The command running :func:`main` on the JSON ``spec`` in ``processes`` processes
    (``torchrun --standalone --nproc_per_node <processes> -m nvos.rosa.stage <spec>``)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "nvos.rosa.stage",
        str(spec),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """torchrun entry: ``python -m nvos.rosa.stage ARGS.json`` (written by launch_training)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("args", help="JSON file with run_dir, shards, clips_path, out_dir, ...")
    ns = parser.parse_args(argv)
    spec = json.loads(Path(ns.args).read_text())
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    init_from_env()
    try:
        run_train(
            spec["run_dir"],
            spec["shards"],
            spec["clips_path"],
            spec["out_dir"],
            spec["rosa"],
            spec["variant"],
        )
    finally:
        shutdown()


if __name__ == "__main__":
    main()
