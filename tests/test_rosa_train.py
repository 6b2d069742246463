"""ROSA training: determinism, checkpoint/resume, best-by-validation, restarts, two-process DDP."""

from __future__ import annotations

import csv
import dataclasses
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from nvos.rosa.config import ModelConfig, RosaConfig
from nvos.rosa.distributed import Collective, DistEnv
from nvos.rosa.losses import rosa_loss
from nvos.rosa.model import RosaModel, load_model
from nvos.rosa.restarts import train_restarts
from nvos.rosa.sources import input_statistics
from nvos.rosa.train import LOG_COLUMNS, fit_batch_to_data, lr_factor, train_rosa
from nvos.testing.synthetic import SyntheticSpec, alignment_accuracy, make_synthetic_clips

#: Exactness tests pin the CPU: on a machine with CUDA, train_rosa's default is the GPU (with
#: bf16), whose numbers differ (tests/test_cuda.py has the CUDA tests).
CPU = torch.device("cpu")
SPEC = SyntheticSpec(n_clips=32, frames=(2, 3), regions=(4, 6), phrases=(1, 3), dim=16)
BASE = {
    "dim": 32,
    "context_layers": 1,
    "context_heads": 4,
    "dropout": 0.1,
    "train": {
        "batch_size": 8,
        "steps": 8,
        "lr": 3e-3,
        "warmup_steps": 2,
        "log_every": 1,
        "val_every": 2,
        "checkpoint_every": 2,
        "seed": 3,
    },
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(**overrides: object) -> RosaConfig:
    rosa = {**BASE, **overrides, "train": {**BASE["train"], **overrides.get("train", {})}}
    return RosaConfig.from_mapping(rosa)


def data() -> tuple[object, object]:
    train = make_synthetic_clips(SPEC)
    val = make_synthetic_clips(SyntheticSpec(**{**SPEC.__dict__, "n_clips": 8, "seed": 1}))
    return train, val


def log_rows(path: Path) -> list[dict[str, str]]:
    """train_log.csv rows without the wall-clock column."""
    with open(path) as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == LOG_COLUMNS
        return [{k: v for k, v in row.items() if k != "clips_per_s"} for row in reader]


def params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_same_config_same_loss_curve(tmp_path: Path) -> None:
    train, val = data()
    a = train_rosa(train, val, tmp_path / "a", config(), device=CPU)
    b = train_rosa(train, val, tmp_path / "b", config(), device=CPU)
    rows = log_rows(a.log)
    assert len(rows) == 8 and rows == log_rows(b.log)
    assert rows[0]["loss"] != rows[-1]["loss"]
    other = train_rosa(train, val, tmp_path / "c", config(train={"seed": 4}), device=CPU)
    assert log_rows(other.log) != rows


def test_batch_larger_than_the_training_set_is_fitted_to_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A small run (8 demo clips, 5 for training) must not die for want of a full batch of 16."""
    small = make_synthetic_clips(SyntheticSpec(**{**SPEC.__dict__, "n_clips": 5}))
    _, val = data()
    with caplog.at_level("INFO", logger="nvos.rosa.train"):
        result = train_rosa(small, val, tmp_path, config(train={"batch_size": 16}), device=CPU)
    assert result.steps == 8  # one batch of 5 clips per epoch
    assert any(
        "batch_size 16 > 5 training clips: training with batches of 5" in r.getMessage()
        for r in caplog.records
    )
    assert fit_batch_to_data(config(train={"batch_size": 16}), small, 2).train.batch_size == 4
    assert fit_batch_to_data(config(train={"batch_size": 4}), small, 1).train.batch_size == 4


@pytest.mark.parametrize("stop_after", [2, 3, 4, 5])
def test_resume_after_a_kill_gives_the_same_curve(tmp_path: Path, stop_after: int) -> None:
    """Stopping at a checkpoint (2, 4) or between two (3, 5: that step is redone), at an epoch's
    end (4 steps per epoch) or inside one, changes nothing (dropout draws included)."""
    train, val = data()
    full = train_rosa(train, val, tmp_path / "full", config(), device=CPU)
    part = tmp_path / "part"
    first = train_rosa(train, val, part, config(), stop_after=stop_after, device=CPU)
    assert first.steps == stop_after and not (part / "checkpoint.pt").exists()
    # Nothing that looks finished: no train_log.csv; its rows wait in last.pt.
    assert not (part / "train_log.csv").exists() and (part / "last.pt").exists()
    saved = stop_after - stop_after % 2
    state = torch.load(part / "last.pt", weights_only=False)
    assert state["step"] == saved
    assert [row["step"] for row in state["log"]] == list(range(1, saved + 1))
    resumed = train_rosa(train, val, part, config(), device=CPU)
    assert resumed.resumed_from == saved and resumed.steps == 8
    rows = log_rows(resumed.log)  # every step, those before the kill too
    assert [int(r["step"]) for r in rows] == list(range(1, 9)) and rows == log_rows(full.log)
    for name, value in params(full.checkpoint).items():
        assert torch.equal(value, params(part / "checkpoint.pt")[name]), name
    # A different config does not resume from that state.
    again = train_rosa(train, val, part, config(train={"lr": 1e-3}), device=CPU)
    assert again.resumed_from == 0


def test_identical_trainings_write_identical_checkpoint_files(tmp_path: Path) -> None:
    """Byte for byte (last.pt differs: its log rows hold the wall-clock clips_per_s)."""
    train, val = data()
    for run in ("a", "b"):
        train_rosa(train, val, tmp_path / run, config(train={"steps": 4}), device=CPU)
    for name in ("checkpoint.pt", "best.pt"):
        ours, theirs = (tmp_path / run / name for run in ("a", "b"))
        assert ours.read_bytes() == theirs.read_bytes(), name


def test_input_statistics_use_real_rows_only() -> None:
    train, _ = data()
    batches = [train.batch(range(i, min(i + 5, len(train))))[0] for i in range(0, len(train), 5)]
    stats = input_statistics(batches)
    real = {
        "regions": np.concatenate(
            [item.regions[t, :k] for item in train.items for t, k in enumerate(item.region_count)]
        ),
        "context": np.concatenate([item.phrase_context for item in train.items]),
        "plain": np.concatenate([item.phrase_plain for item in train.items]),
    }
    for kind, rows in real.items():
        rows = rows.astype(np.float64)
        mean, cov = stats[kind]
        np.testing.assert_allclose(mean.numpy(), rows.mean(0), atol=1e-9)
        np.testing.assert_allclose(cov.numpy(), np.cov(rows.T, bias=True), atol=1e-9)
    with pytest.raises(ValueError, match="no batch"):
        input_statistics([])


def test_input_norm_and_context_dropout_train_and_resume(tmp_path: Path) -> None:
    """The statistics are fitted once from the training data and saved with the weights; a
    killed run resumes to the same curve (context dropout draws from the saved RNG state)."""
    train, val = data()
    cfg = config(input_norm="whiten", context_dropout=0.5)
    full = train_rosa(train, val, tmp_path / "full", cfg, device=CPU)
    saved = params(full.checkpoint)
    mean, _ = input_statistics([train.batch(range(len(train)))[0]])["plain"]
    torch.testing.assert_close(saved["input_norm.plain.shift"], mean.float())
    assert not torch.equal(saved["input_norm.regions.transform"], torch.eye(16))
    part = tmp_path / "part"
    train_rosa(train, val, part, cfg, stop_after=5, device=CPU)
    resumed = train_rosa(train, val, part, cfg, device=CPU)
    assert resumed.resumed_from == 4
    assert log_rows(part / "train_log.csv") == log_rows(full.log)
    for name, value in saved.items():
        assert torch.equal(value, params(part / "checkpoint.pt")[name]), name
    plain = train_rosa(train, val, tmp_path / "plain", config(context_dropout=0.5), device=CPU)
    assert log_rows(plain.log) != log_rows(full.log)


def test_checkpoint_keeps_the_lowest_validation_vna(tmp_path: Path) -> None:
    train, val = data()
    summary = train_rosa(train, val, tmp_path, config(train={"steps": 10, "lr": 0.05}), device=CPU)
    rows = log_rows(summary.log)
    vals = {int(r["step"]): float(r["val_vna"]) for r in rows if r["val_vna"]}
    assert sorted(vals) == [2, 4, 6, 8, 10]
    best = min(vals, key=vals.get)
    saved = torch.load(summary.checkpoint, weights_only=False)
    assert saved["step"] == best == summary.best_step
    assert saved["val_vna"] == pytest.approx(vals[best])
    assert saved["config"]["train"]["steps"] == 10
    model = load_model(summary.checkpoint)
    assert model.config.dim == 32
    no_val = train_rosa(train, None, tmp_path / "noval", config(train={"steps": 3}), device=CPU)
    assert no_val.best_val_vna is None
    assert torch.load(no_val.checkpoint, weights_only=False)["step"] == 3


def test_restarts_keep_the_initialisation_with_the_lowest_validation_vna(tmp_path: Path) -> None:
    train, val = data()
    cfg = config(train={"restarts": 3, "lr": 0.02, "seed": 2})
    out = tmp_path / "r"
    # Killed during restart 1: the variant folder holds nothing that looks finished.
    first = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=2, restarts=1))
    train_rosa(train, val, out / "restart_0", first, device=CPU)
    train_rosa(
        train,
        val,
        out / "restart_1",
        config(train={"lr": 0.02, "seed": 3}),
        stop_after=2,
        device=CPU,
    )
    assert sorted(p.name for p in out.iterdir()) == ["restart_0", "restart_1"]
    summary = train_restarts(train, val, out, cfg, device=CPU)
    with open(out / "restarts.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["seed"]) for r in rows] == [2, 3, 4]
    scores = [float(r["best_val_vna"]) for r in rows]
    assert len(set(scores)) == 3  # the initialisations differ
    chosen = scores.index(min(scores))
    assert chosen > 0  # this seed's restart 0 is not the best: the choice is exercised
    assert [r["chosen"] for r in rows] == [str(i == chosen) for i in range(3)]
    where = out / f"restart_{chosen}"
    saved = torch.load(summary.checkpoint, weights_only=False)
    assert summary.checkpoint == out / "checkpoint.pt" and summary.log == out / "train_log.csv"
    assert saved["restart"] == chosen and saved["val_vna"] == pytest.approx(min(scores))
    assert saved["config"]["train"]["restarts"] == 3
    for name, value in params(where / "best.pt").items():
        assert torch.equal(saved["model"][name], value), name
    assert summary.log.read_text() == (where / "train_log.csv").read_text()
    assert [r["log"] for r in rows] == [f"restart_{r}/train_log.csv" for r in range(3)]
    # Each restart is exactly the one-restart run with its seed (restart 1 resumed after its kill).
    single = train_rosa(
        train, val, tmp_path / "one", config(train={"lr": 0.02, "seed": 3}), device=CPU
    )
    assert float(rows[1]["best_val_vna"]) == pytest.approx(single.best_val_vna)
    assert log_rows(out / "restart_1" / "train_log.csv") == log_rows(single.log)
    for name, value in params(tmp_path / "one" / "best.pt").items():
        assert torch.equal(params(out / "restart_1" / "best.pt")[name], value), name
    again = train_restarts(train, val, out, cfg, device=CPU)
    assert again.resumed_from == again.steps  # finished restarts are not retrained
    assert log_rows(again.log) == log_rows(summary.log)
    with pytest.raises(ValueError, match="restarts"):
        config(train={"restarts": 0})


def test_lr_schedule_warms_up_then_decays() -> None:
    factors = [lr_factor(s, 4, 20, 0.1) for s in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert lr_factor(20, 4, 20, 0.1) == pytest.approx(0.1)


def test_training_learns_the_synthetic_alignment(tmp_path: Path) -> None:
    spec = SyntheticSpec(n_clips=96, frames=(3, 3), regions=(6, 6), phrases=(2, 3), dim=16)
    train = make_synthetic_clips(spec)
    test = make_synthetic_clips(SyntheticSpec(**{**spec.__dict__, "n_clips": 32, "seed": 9}))
    cfg = config(context_layers=0, dropout=0.0, train={"steps": 60, "batch_size": 16})
    summary = train_rosa(train, None, tmp_path, cfg, device=CPU)
    batch, truth = test.batch(range(32))
    accuracy = alignment_accuracy(load_model(summary.checkpoint).align(batch).index, truth)
    assert accuracy > 0.6  # chance is 1/6


# ------------------------------------------------------------------------ two processes (gloo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grad_model() -> RosaModel:
    torch.manual_seed(0)
    return RosaModel(ModelConfig(16, dim=32, context_layers=1, context_heads=4, learn_tau=True))


def _ddp_worker(rank: int, world: int, port: int, out: str, rosa: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        train, val = data()
        env = DistEnv(rank=rank, world_size=world, local_rank=rank)
        # One backward pass of the loss on this process's half of a batch, through DDP.
        model = grad_model()
        ddp = DistributedDataParallel(model)
        half = train.batch(range(rank * 4, rank * 4 + 4))[0]
        rosa_loss(ddp(half), model.tau, collective=Collective(env)).loss.backward()
        if rank == 0:
            torch.save({n: p.grad for n, p in model.named_parameters()}, Path(out) / "grads.pt")
        train_rosa(train, val, out, RosaConfig.from_mapping(rosa), torch.device("cpu"), env)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path: Path) -> None:
    rosa = {
        **BASE,
        "dropout": 0.0,
        "learn_tau": True,
        # The attention key bias has a gradient of exactly 0 in theory, float noise in practice,
        # which Adam turns into ±lr steps: the parameter comparison runs without attention (the
        # gradient comparison above covers it).
        "context_layers": 0,
        "train": {**BASE["train"], "steps": 4, "gpus": 2, "lr": 1e-3},
    }
    (tmp_path / "ddp").mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), rosa), nprocs=2, join=True)
    train, val = data()
    # The gradient of the global-batch loss, averaged by DDP, equals one process's.
    model = grad_model()
    rosa_loss(model(train.batch(range(8))[0]), model.tau).loss.backward()
    grads = torch.load(tmp_path / "ddp" / "grads.pt", weights_only=False)
    for name, param in model.named_parameters():
        scale = float(param.grad.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(grads[name], param.grad, rtol=0, atol=1e-6 * max(scale, 1.0))
    single = train_rosa(
        train, val, tmp_path / "one", RosaConfig.from_mapping(rosa), env=DistEnv(), device=CPU
    )
    two = log_rows(tmp_path / "ddp" / "train_log.csv")
    one = log_rows(single.log)
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one, strict=True):
        for key in ("loss", "vna", "rpa", "val_vna"):
            if b[key]:
                assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5), key
    ddp_params = params(tmp_path / "ddp" / "last.pt")
    for name, value in params(tmp_path / "one" / "last.pt").items():
        diff = float((ddp_params[name] - value).abs().max())
        assert diff < 5e-6, (name, diff)  # Adam magnifies float-order noise of tiny gradients
    assert math.isfinite(float(one[-1]["loss"]))


@pytest.mark.gpu
def test_bf16_training_on_cuda(tmp_path: Path) -> None:
    train, val = data()
    summary = train_rosa(
        train, val, tmp_path, config(train={"bf16": True}), device=torch.device("cuda")
    )
    assert summary.steps == 8 and math.isfinite(summary.final_loss)
    assert load_model(summary.checkpoint, "cuda").config.dim == 32
