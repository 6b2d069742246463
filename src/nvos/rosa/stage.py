"""The ``train`` stage (DESIGN §3): one ROSA variant from the run's feature cache.

:func:`train_variant` is the stage: it claims ``rosa.train.gpus`` devices through the machine's
locks and trains there, in this process (:func:`train_on_device`) on one device (or the CPU), or
with several under ``torchrun``, whose processes enter through :func:`main`
(``python -m nvos.rosa.stage ARGS.json``). :func:`train_on_device` trains
(:func:`nvos.rosa.restarts.train_restarts`) on the train split, the val split selecting the
checkpoint. The variant comes resolved (:func:`nvos.rosa.config.resolve_variant`, once, by the
caller).
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
from nvos.layout import RunLayout
from nvos.rosa.config import TRAIN_SPLIT, VAL_SPLIT, RosaConfig
from nvos.rosa.distributed import env_from_environ, init_from_env, shutdown
from nvos.rosa.restarts import train_restarts
from nvos.rosa.train import TrainSummary
from nvos.types import PathLike

__all__ = ["main", "run_torchrun", "torchrun_command", "train_on_device", "train_variant"]

logger = logging.getLogger(__name__)


def train_on_device(
    layout: RunLayout,
    shards: Sequence[str],
    variant: str,
    config: RosaConfig,
    device: torch.device | None = None,
) -> TrainSummary:
    """Train ``variant`` (its resolved ``config``) in this process: ``models/<variant>/``.

    Reads the features, proposals and frames of ``shards`` and ``clips.parquet`` of the run
    (``layout``) through :class:`nvos.rosa.data.FeatureDataset` (training items:
    ``config.frames_per_clip`` sampled frames, ``config.max_regions`` proposals); the ``val`` split
    (same sampling, fixed to epoch 0) selects the checkpoint by VNA loss.
    """
    from nvos.rosa.data import FeatureDataset

    paths = [layout.shard_paths(s) for s in shards]

    def dataset(split: str) -> FeatureDataset:
        return FeatureDataset(
            paths,
            layout.clips,
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
    out_dir = layout.model_dir(variant)
    record = {"features": features_record(paths[0].regions)} if paths else {}
    return train_restarts(
        train_set, val_set if len(val_set) else None, out_dir, config, device, record=record
    )


def features_record(regions_path: PathLike) -> dict[str, Any]:
    """What a checkpoint records of the features it was trained on, from a region table's
    provenance: ``config`` (the ``features`` group as the rule passed it), ``clip`` (the model's
    description) and ``crop`` (``nvos segment`` refuses a run whose features differ)."""
    found = storage.read_provenance(regions_path)
    return {key: found.get(key) for key in ("config", "clip", "crop", "input_size")}


def train_variant(
    layout: RunLayout,
    shards: Sequence[str],
    variant: str,
    config: RosaConfig,
    lock_dir: PathLike | None,
    n_devices: int | None = None,
) -> TrainSummary | None:
    """Train ``variant`` on ``config.train.gpus`` devices claimed through the machine's locks
    (:func:`nvos.devices.claim_devices`, ``lock_dir``; ``n_devices`` fakes the device count in
    tests). One device (or the CPU): :func:`train_on_device`, and its summary is returned.
    Several: ``torchrun`` with ``CUDA_VISIBLE_DEVICES`` listing exactly the claimed devices, the
    locks held until it ends, its output (rank 0's log, every rank's warnings and errors) copied
    into this process's log; returns None.
    """
    from nvos.devices import claim_devices

    with claim_devices(lock_dir, config.train.gpus, n_devices=n_devices) as claim:
        if len(claim.devices) < 2:
            return train_on_device(layout, shards, variant, config, claim.device)
        spec = Path(layout.model_dir(variant)) / "train_args.json"
        args = {
            "run_dir": layout.root,
            "shards": list(shards),
            "variant": variant,
            "rosa": config.to_dict(),
            "device": "cuda",
        }
        storage.write_text(spec, json.dumps(args, indent=1))
        environ = {**os.environ, "CUDA_VISIBLE_DEVICES": claim.child_visible_devices()}
        run_torchrun(torchrun_command(spec, len(claim.devices)), environ)
        return None


def run_torchrun(cmd: Sequence[str], environ: Mapping[str, str]) -> None:
    """Run ``cmd`` (a torchrun command) with ``environ``; each line of its output (stdout and
    stderr) is logged at INFO as it comes. Raises RuntimeError naming the exit status."""
    logger.info(
        "launching %s with CUDA_VISIBLE_DEVICES=%s",
        " ".join(cmd),
        environ.get("CUDA_VISIBLE_DEVICES"),
    )
    with subprocess.Popen(
        list(cmd),
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logger.info("torchrun | %s", line.rstrip("\n"))
    if proc.returncode != 0:
        raise RuntimeError(
            f"torchrun exited with status {proc.returncode} (the failing rank's traceback is in "
            "the log above, lines 'torchrun | [rank N]')"
        )


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
    """torchrun entry: ``python -m nvos.rosa.stage ARGS.json`` (written by train_variant).

    ARGS.json's ``device`` is ``cuda`` (NCCL, ``cuda:<local rank>``) or ``cpu`` (gloo). Rank 0
    logs at INFO, the other ranks WARNING and above (the launcher copies it all into the rule's
    log), each line prefixed with ``[rank N]``.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("args", help="JSON file with run_dir, shards, variant, rosa, device")
    ns = parser.parse_args(argv)
    spec = json.loads(Path(ns.args).read_text())
    env = env_from_environ()
    logging.basicConfig(
        level=logging.INFO if env.is_main else logging.WARNING,
        format=f"[rank {env.rank}] %(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    device_type = spec.get("device", "cuda")
    if device_type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{ns.args} asks for CUDA but no CUDA device is visible")
    init_from_env(device_type)
    device = torch.device("cuda", env.local_rank) if device_type == "cuda" else torch.device("cpu")
    try:
        train_on_device(
            RunLayout.at(spec["run_dir"]),
            spec["shards"],
            spec["variant"],
            RosaConfig.from_mapping(spec["rosa"]),
            device,
        )
    finally:
        shutdown()


if __name__ == "__main__":
    main()
