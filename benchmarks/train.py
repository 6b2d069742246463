"""Throughput of ROSA training: (a) the data loader, (b) the train step, (c) the full loop.

Inputs of realistic size: a synthetic feature cache (``nvos.testing.cache_fixture``) with the real
file layout, ``--clips`` clips of 12 stored frames × ``--regions`` proposals × ``--dim``-d float16
region embeddings and ``--phrases`` phrases; items of ``--frames`` sampled frames, batches of
``--batch`` clips. The step is the real one: :class:`~nvos.rosa.model.RosaModel` (the ``rosa``
defaults of :class:`~nvos.rosa.config.RosaConfig`), :func:`~nvos.rosa.losses.rosa_loss`
(VNA + RPA), backward, gradient clipping, AdamW (bf16 autocast on CUDA).

Prints clips/s of

- the loader's design choice: memory-mapped Arrow IPC cache vs. the Parquet decoded once into
  memory, and the reference it replaces: decoding each clip's rows from Parquet per step;
- (a) the loader alone, (b) the train step alone on one pre-loaded batch, (c) loader + step;
- the ratio (c) / min(a, b) (target >= 0.90).

Run: ``.venv/bin/python benchmarks/train.py`` (add ``--workers N`` for DataLoader workers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from nvos.layout import RunLayout
from nvos.rosa.config import RosaConfig
from nvos.rosa.data import FeatureDataset, make_loader
from nvos.rosa.losses import rosa_loss
from nvos.rosa.model import RosaModel
from nvos.testing.cache_fixture import synthetic_clips, write_synthetic_cache


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=320)
    parser.add_argument("--clips-per-shard", type=int, default=80)
    parser.add_argument("--frames", type=int, default=8, help="frames per training item")
    parser.add_argument("--regions", type=int, default=64, help="proposals per frame")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--phrases", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--steps", type=int, default=4, help="timed steps of (b)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of (a) and (c)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--root", type=Path, default=None, help="cache folder (default: temp)")
    return parser.parse_args()


def dataset(root: Path, shards: list[str], args: argparse.Namespace, memory_map: bool = True):
    return FeatureDataset(
        [RunLayout.at(root).shard_paths(s) for s in shards],
        root / "clips.parquet",
        splits="train",
        frames_per_clip=args.frames,
        max_regions=args.regions,
        memory_map=memory_map,
    )


def loader_rate(data: FeatureDataset, args: argparse.Namespace) -> float:
    """Clips/s of iterating ``args.epochs`` epochs of the loader (first batch not timed)."""
    loader = make_loader(
        data,
        args.batch,
        True,
        0,
        args.workers,
        drop_last=True,
        pin_memory=args.device.startswith("cuda"),
    )
    clips, start = 0, None
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            if start is None:  # warm-up: worker start, first page faults
                start = time.perf_counter()
                continue
            batch.to(args.device, non_blocking=True)
            clips += len(batch)
    sync(args.device)
    return clips / (time.perf_counter() - start)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Step:
    """One optimisation step of ROSA on a batch (forward, both losses, backward, clip, AdamW)."""

    def __init__(self, dim: int, device: str) -> None:
        self.config = RosaConfig()
        self.device = torch.device(device)
        torch.manual_seed(0)
        self.model = RosaModel(self.config.model_config(dim)).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def __call__(self, batch) -> float:  # noqa: ANN001
        batch = batch.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.device.type == "cuda"):
            emb = self.model(batch)
        out = rosa_loss(emb, self.model.tau, self.config.lambda_vna, self.config.lambda_rpa)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        return out.loss.detach()


def step_rate(step: Step, data: FeatureDataset, args: argparse.Namespace) -> float:
    loader = make_loader(data, args.batch, False, 0, drop_last=True)
    batch = next(iter(loader)).to(args.device)
    step(batch)  # warm-up
    sync(args.device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(batch)
    sync(args.device)
    return args.steps * args.batch / (time.perf_counter() - start)


def loop_rate(step: Step, data: FeatureDataset, args: argparse.Namespace) -> float:
    loader = make_loader(
        data,
        args.batch,
        True,
        0,
        args.workers,
        drop_last=True,
        pin_memory=args.device.startswith("cuda"),
    )
    clips, start = 0, None
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            step(batch)
            if start is None:
                sync(args.device)
                start = time.perf_counter()
                continue
            clips += len(batch)
    sync(args.device)
    return clips / (time.perf_counter() - start)


def parquet_reference_rate(root: Path, shards: list[str], data: FeatureDataset, n: int) -> float:
    """Clips/s of the design this replaces: decode a clip's regions from Parquet at each step."""
    shard_of = {}
    for s in shards:
        for clip_id in (
            pq.read_table(root / "features" / f"{s}.regions.parquet", columns=["clip_id"])[
                "clip_id"
            ]
            .unique()
            .to_pylist()
        ):
            shard_of[clip_id] = s
    start = time.perf_counter()
    for clip_id in data.clip_ids[:n]:
        path = root / "features" / f"{shard_of[clip_id]}.regions.parquet"
        table = pq.read_table(path, filters=[("clip_id", "==", clip_id)])
        table["embedding"].combine_chunks().flatten().to_numpy()
    return n / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        clips = synthetic_clips(
            args.clips,
            args.clips_per_shard,
            sampled_frames=10,
            annotated_frames=2,
            proposals=args.regions,
            phrases=args.phrases,
        )
        t0 = time.perf_counter()
        shards = write_synthetic_cache(root, clips, dim=args.dim, seed=0)
        print(
            f"synthetic cache: {args.clips} clips x 12 frames x {args.regions} proposals x "
            f"{args.dim}-d, {args.phrases} phrases, {len(shards)} shards "
            f"({time.perf_counter() - t0:.1f} s to write)"
        )
        t0 = time.perf_counter()
        mapped = dataset(root, shards, args)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        mapped = dataset(root, shards, args)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        in_memory = dataset(root, shards, args, memory_map=False)
        decoded = time.perf_counter() - t0
        print(
            f"dataset setup: IPC cache build {cold:.2f} s (once), re-open {warm:.2f} s; "
            f"Parquet decoded into memory {decoded:.2f} s (every process)"
        )
        rate_mmap = loader_rate(mapped, args)
        rate_memory = loader_rate(in_memory, args)
        rate_parquet = parquet_reference_rate(root, shards, mapped, 10)
        print(
            f"loader items+collate ({args.workers} workers, device {args.device}): "
            f"memory-mapped IPC {rate_mmap:.0f} clips/s, in-memory {rate_memory:.0f} clips/s; "
            f"per-step Parquet decoding (regions only) {rate_parquet:.2f} clips/s; "
            f"ratio mmap/per-step-parquet {rate_mmap / rate_parquet:.1f}x"
        )
        step = Step(args.dim, args.device)
        a = rate_mmap
        b = step_rate(step, mapped, args)
        c = loop_rate(step, mapped, args)
        ratio = c / min(a, b)
        print(f"(a) loader alone: {a:.1f} clips/s")
        print(f"(b) train step alone (batch {args.batch}): {b:.1f} clips/s")
        print(f"(c) full loop: {c:.1f} clips/s")
        print(
            f"ratio (c) / min(a, b) = {ratio:.2f} (target >= 0.90: "
            f"{'met' if ratio >= 0.9 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
