"""Two-process (gloo, CPU) training: per-rank seeds and RNG states, resume mid-epoch, world size.

One spawn runs, in the same two processes, an uninterrupted training and a training killed
mid-epoch (``stop_after``) then resumed; the resumed curve and weights must equal the
uninterrupted ones exactly, with dropout on (so every rank's generator state matters).
"""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_rosa_train import SPEC

from nvos.rosa.config import RosaConfig
from nvos.rosa.distributed import DistEnv
from nvos.rosa.train import rank_seed, train_rosa
from nvos.testing.synthetic import SyntheticSpec, make_synthetic_clips

CPU = torch.device("cpu")
ROSA = {
    "dim": 32,
    "context_layers": 1,
    "context_heads": 4,
    "dropout": 0.2,
    "train": {
        "batch_size": 8,  # 4 clips per process, 4 steps per epoch
        "steps": 6,
        "lr": 3e-3,
        "warmup_steps": 2,
        "log_every": 1,
        "val_every": 2,
        "checkpoint_every": 2,
        "seed": 5,
        "gpus": 2,
    },
}


def _data() -> tuple[object, object]:
    train = make_synthetic_clips(SPEC)
    val = make_synthetic_clips(SyntheticSpec(**{**SPEC.__dict__, "n_clips": 12, "seed": 1}))
    return train, val


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        train, val = _data()
        env = DistEnv(rank=rank, world_size=world, local_rank=rank, local_world_size=world)
        config = RosaConfig.from_mapping(ROSA)
        out = Path(root)
        train_rosa(train, val, out / "full", config, CPU, env)
        # Killed at step 3 (mid-epoch, one step after the checkpoint of step 2), then resumed.
        train_rosa(train, val, out / "part", config, CPU, env, stop_after=3)
        resumed = train_rosa(train, val, out / "part", config, CPU, env)
        assert resumed.resumed_from == 2
    finally:
        dist.destroy_process_group()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in r.items() if k != "clips_per_s"} for r in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(root)), nprocs=2, join=True)
    return root


def test_two_process_resume_mid_epoch_gives_the_uninterrupted_curve(runs: Path) -> None:
    full, part = _rows(runs / "full/train_log.csv"), _rows(runs / "part/train_log.csv")
    assert [int(r["step"]) for r in full] == list(range(1, 7))
    assert part == full  # losses and validation VNA, exactly
    ours = torch.load(runs / "part/checkpoint.pt", weights_only=False)["model"]
    theirs = torch.load(runs / "full/checkpoint.pt", weights_only=False)["model"]
    for name, value in theirs.items():
        assert torch.equal(value, ours[name]), name


def test_each_rank_saves_its_own_generator_state(runs: Path) -> None:
    state = torch.load(runs / "full/last.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    ranks = state["rng"]
    assert not torch.equal(ranks[0]["torch"], ranks[1]["torch"])  # per-rank seeds: own draws
    assert "cuda" not in ranks[0]  # CPU run: no device generator
    assert rank_seed(5, 0) == 5 and rank_seed(5, 1) != rank_seed(5, 0) + 1  # not a restart's


def test_resuming_with_another_process_count_is_a_clear_error(runs: Path) -> None:
    train, val = _data()
    config = RosaConfig.from_mapping(ROSA)
    with pytest.raises(ValueError, match="written by a run of 2 process.*this run has 1"):
        train_rosa(train, val, runs / "full", config, CPU, DistEnv())
