"""Training ROSA from narrations only (DESIGN §7): the loop, checkpoints, resume, DDP.

:func:`train_rosa` trains :class:`~nvos.rosa.model.RosaModel` with λ_vna·L_VNA + λ_rpa·L_RPA on
batches of cached features, with AdamW, a linear warm-up then cosine learning-rate schedule,
gradient-norm clipping and bf16 autocast on CUDA. Files written to ``out_dir`` (all atomically):

- ``last.pt``: the running state every ``checkpoint_every`` steps (model, optimiser, scheduler,
  step, RNG states, best validation VNA, log rows). A new call with the same config resumes from
  it and produces the same loss curve as an uninterrupted run.
- ``best.pt``: the weights with the lowest validation VNA loss so far (no spatial labels used).
- ``checkpoint.pt``: written once at the end = ``best.pt`` (or the final weights without
  validation data); what prediction loads (:func:`nvos.rosa.model.load_model`).
- ``train_log.csv``: step, epoch, loss, vna, rpa, lr, clips_per_s, val_vna; written once, when
  training finishes (until then the rows live in ``last.pt`` and progress is in the log), so an
  interrupted run leaves no finished-looking log, like no ``checkpoint.pt``.

Several processes (``torchrun``, world size > 1): the model is wrapped in DistributedDataParallel,
each process gets ``batch_size / world_size`` clips of every global batch, L_VNA's negatives are
gathered from all processes (with gradient) and both losses are means over the global batch, so
the result equals one process with the same global batch. The model is initialised from ``seed``
on every process; the draws of training (dropout) come from :func:`rank_seed` (``seed`` on rank
0, others differ), and ``last.pt`` holds every rank's generator states, each restored by its
rank onto the device it runs on now. A ``last.pt`` of another number of processes is not resumed
(ValueError: start again with as many, or delete it). Validation is sharded: each process
evaluates whole batches ``rank, rank + world, ...`` and the sums are added, so no process waits
for a whole validation split in a collective.

The config is :class:`nvos.rosa.config.RosaConfig`; several initialisations are
:func:`nvos.rosa.restarts.train_restarts`; the workflow stage is :mod:`nvos.rosa.stage`.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nvos import storage
from nvos.rosa.batch import ClipBatch
from nvos.rosa.checkpoint import (
    fingerprint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from nvos.rosa.config import RosaConfig, TrainConfig
from nvos.rosa.distributed import SINGLE, Collective, DistEnv, default_device, init_from_env
from nvos.rosa.losses import LossOutput, rosa_loss
from nvos.rosa.model import RosaModel, model_state
from nvos.rosa.sources import (
    BatchSource,
    as_source,
    feature_dim,
    input_statistics,
    is_dataset,
    iter_from,
    validation_share,
)
from nvos.types import PathLike

__all__ = [
    "LOG_COLUMNS",
    "TrainSummary",
    "evaluate_vna",
    "lr_factor",
    "rank_seed",
    "seed_everything",
    "train_rosa",
]

logger = logging.getLogger(__name__)

LOG_COLUMNS = ("step", "epoch", "loss", "vna", "rpa", "lr", "clips_per_s", "val_vna")


# ------------------------------------------------------------------------------------- schedule


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup_steps``, then cosine to
    ``min_ratio`` at ``total_steps``. ``step`` counts optimiser steps already taken."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on matrices, none on biases, norms and τ."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 and "log_tau" not in name else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# ------------------------------------------------------------------------------------- state


@dataclass
class TrainSummary:
    """What :func:`train_rosa` did. ``checkpoint`` and ``log`` are the paths of
    ``checkpoint.pt`` and ``train_log.csv``, which exist only once training has finished."""

    steps: int
    epochs: int
    final_loss: float
    best_step: int
    best_val_vna: float | None
    resumed_from: int
    skipped_clips: int
    seconds: float
    checkpoint: Path
    log: Path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: Distance between the seeds of two ranks (a prime larger than any number of restarts, whose
#: seeds are ``seed + r``, so rank and restart streams do not coincide).
RANK_SEED_STRIDE = 1_000_003


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s training draws: ``seed + RANK_SEED_STRIDE * rank``."""
    return seed + RANK_SEED_STRIDE * rank


# ------------------------------------------------------------------------------------- loop


def _compute_loss(
    model: nn.Module,
    batch: ClipBatch,
    config: RosaConfig,
    tau_of: RosaModel,
    device: torch.device,
    collective: Collective,
) -> LossOutput:
    use_bf16 = config.train.bf16 and device.type == "cuda"
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
        emb = model(batch)
    return rosa_loss(
        emb,
        tau_of.tau,
        lambda_vna=config.lambda_vna,
        lambda_rpa=config.lambda_rpa,
        rpa_reduction=config.rpa_reduction,
        collective=collective,
    )


@torch.no_grad()
def evaluate_vna(
    model: RosaModel,
    batches: Iterable[ClipBatch],
    config: RosaConfig,
    device: torch.device,
    collective: Collective = SINGLE,
) -> float:
    """Mean L_VNA over ``batches`` (weighted by valid clips; batch negatives only), the sums
    added over ``collective``'s processes (each passes its share of the batches, possibly none).

    The value depends on the batch size (number of negatives): compare it between steps of one
    run, not between runs with different batch sizes.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        use_bf16 = config.train.bf16 and device.type == "cuda"
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            emb = model(batch)
        out = rosa_loss(emb, model.tau, lambda_vna=1.0, lambda_rpa=0.0)
        n = float(out.valid_clips)
        total += float(out.vna) * n
        count += n
    model.train(was_training)
    sums = torch.tensor([total, count], dtype=torch.float64, device=device)
    total, count = collective.all_reduce_sum(sums).tolist()
    if count == 0:
        raise ValueError("validation data has no valid clip (each needs a phrase and a proposal)")
    return total / count


def _check_world_size(
    state: dict[str, Any], config: RosaConfig, dim: int, env: DistEnv, path: Path
) -> None:
    """Raise ValueError when ``state`` is this config's run made by another number of processes
    (its ranks' generator states and data shares do not map onto this run's)."""
    saved = int(state.get("world_size", 1))
    if saved != env.world_size and state.get("fingerprint") == fingerprint(config, dim, saved):
        raise ValueError(
            f"{path} was written by a run of {saved} process(es) (GPUs) and this run has "
            f"{env.world_size}: resume it with {saved} (free GPUs, rosa.train.gpus), or delete "
            f"{path} to train again from the start"
        )


def fit_batch_to_data(config: RosaConfig, train_data: Any, world_size: int) -> RosaConfig:
    """``config`` with ``rosa.train.batch_size`` at most the number of training clips.

    A batch larger than the training set gives no full batch (training would stop with an
    error): it becomes the largest multiple of the process count that fits, with a log line. A
    :class:`~nvos.rosa.sources.BatchSource` (size unknown here) keeps the configured batch.
    """
    if not is_dataset(train_data):
        return config
    n_clips, wanted = len(train_data), config.train.batch_size
    fitted = max(world_size, n_clips - n_clips % world_size)
    if wanted <= n_clips or fitted >= wanted:
        return config
    logger.info(
        "rosa.train.batch_size %d > %d training clips: training with batches of %d",
        wanted,
        n_clips,
        fitted,
    )
    return replace(config, train=replace(config.train, batch_size=fitted))


@dataclass
class _Run:
    """One training run: its parts and the running state that ``last.pt`` saves."""

    config: RosaConfig
    env: DistEnv
    device: torch.device
    collective: Collective
    out: Path
    model: RosaModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    resume_key: str
    step: int = 0
    best_val: float = math.inf
    best_step: int = -1
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"


def train_rosa(
    train_data: Any,
    val_data: Any | None,
    out_dir: PathLike,
    config: RosaConfig,
    device: torch.device | None = None,
    env: DistEnv | None = None,
    stop_after: int | None = None,
    record: Mapping[str, Any] | None = None,
) -> TrainSummary:
    """Train ROSA; resume from ``out_dir/last.pt`` when it exists for the same config.

    Args:
        train_data: a dataset of :class:`~nvos.rosa.batch.ClipItem` (``FeatureDataset``,
            ``SyntheticClips``; batched here with :func:`nvos.rosa.data.make_loader`, this
            process's share) or a :class:`~nvos.rosa.sources.BatchSource` of this process's batches.
        val_data: the same for validation (VNA loss only, whole batches shared among the
            processes), or None (then ``checkpoint.pt`` holds the final weights).
        out_dir: ``models/<variant>/``: ``checkpoint.pt``, ``last.pt``, ``best.pt``,
            ``train_log.csv``.
        config: the resolved variant config (:func:`nvos.rosa.config.resolve_variant`).
        device: default :func:`nvos.rosa.distributed.default_device` (``cuda:<local rank>``
            when each local process has a CUDA device, else the CPU). Tests that compare
            numbers exactly pass the CPU.
        env: the process's place (default: from torchrun's variables, initialising the group).
        stop_after: stop (as if killed) after this many steps in this call, without writing
            ``checkpoint.pt`` or ``train_log.csv`` (tests of resume).
        record: entries added to ``checkpoint.pt`` (``features``: the features it was trained
            on, which ``nvos segment`` checks against its run).

    Returns:
        A :class:`TrainSummary` (on every process; files are written by process 0 only).
    """
    started = time.perf_counter()
    env = env or init_from_env()
    config = fit_batch_to_data(config, train_data, env.world_size)
    tc = config.train
    device = _place(tc, env, device)
    source = _training_source(train_data, tc, env)
    steps_per_epoch = len(source)
    total_steps = tc.steps if tc.steps is not None else tc.epochs * steps_per_epoch
    run = _start(train_data, source, config, total_steps, Path(out_dir), env, device)
    _resume(run, total_steps)
    resumed_from = run.step
    if run.step == 0:  # the model is the same everywhere; dropout draws differ between ranks
        seed_everything(rank_seed(tc.seed, env.rank))
    logger.info(
        "training %d steps (%d per epoch, global batch %d on %d process(es), device %s)",
        total_steps,
        steps_per_epoch,
        tc.batch_size,
        env.world_size,
        device,
    )
    last_loss = _train_steps(run, source, val_data, total_steps, stop_after)
    if run.skipped:
        logger.warning(
            "%d clip-steps without phrase or proposal were left out of the losses", run.skipped
        )
    if run.step >= total_steps and env.is_main:
        _write_final(run, record)
    if env.is_distributed:
        torch.distributed.barrier()
    return TrainSummary(
        steps=run.step,
        epochs=math.ceil(run.step / steps_per_epoch),
        final_loss=last_loss,
        best_step=run.best_step,
        best_val_vna=None if run.best_step < 0 else run.best_val,
        resumed_from=resumed_from,
        skipped_clips=run.skipped,
        seconds=time.perf_counter() - started,
        checkpoint=run.out / "checkpoint.pt",
        log=run.out / "train_log.csv",
    )


def _place(tc: TrainConfig, env: DistEnv, device: torch.device | None) -> torch.device:
    """The device this process trains on, after checking the global batch splits over the
    processes (a ``rosa.train.gpus`` unlike the number of processes is only a warning)."""
    if env.world_size != tc.gpus:
        logger.warning(
            "rosa.train.gpus=%d but %d process(es) run; the global batch stays %d clips",
            tc.gpus,
            env.world_size,
            tc.batch_size,
        )
    if tc.batch_size % env.world_size:
        raise ValueError(f"batch_size {tc.batch_size} not divisible by {env.world_size} processes")
    if device is None:
        device = default_device(env)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _training_source(train_data: Any, tc: TrainConfig, env: DistEnv) -> BatchSource:
    """This process's training batches; ValueError when they make no full batch."""
    local_batch = tc.batch_size // env.world_size
    source = as_source(train_data, local_batch, True, tc.seed, tc.num_workers, env, train=True)
    if len(source) == 0:
        raise ValueError(
            f"training data gives no full batch of {local_batch} clips per process "
            "(fewer clips than rosa.train.batch_size?)"
        )
    return source


def _start(
    train_data: Any,
    source: BatchSource,
    config: RosaConfig,
    total_steps: int,
    out: Path,
    env: DistEnv,
    device: torch.device,
) -> _Run:
    """A new run: the model initialised from ``seed`` (with its input normalisation fitted on
    the training data), AdamW and the learning-rate schedule."""
    tc = config.train
    collective = Collective(env) if env.is_distributed else SINGLE
    dim = feature_dim(train_data, source)
    seed_everything(tc.seed)
    model = RosaModel(config.model_config(dim))
    if config.input_norm != "none":  # replaced by the saved buffers when resuming
        stats_source = (
            as_source(train_data, tc.batch_size, False, tc.seed, 0, DistEnv(), train=False)
            if is_dataset(train_data)
            else source
        )
        stats_source.set_epoch(0)
        stats_collective = SINGLE if is_dataset(train_data) else collective
        model.set_input_norm(input_statistics(stats_source, stats_collective, device))
    model = model.to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.warmup_steps, total_steps, tc.min_lr_ratio)
    )
    resume_key = fingerprint(config, dim, env.world_size)
    return _Run(config, env, device, collective, out, model, optimizer, scheduler, resume_key)


def _resume(run: _Run, total_steps: int) -> None:
    """Load ``last.pt`` into ``run`` when it was made with the same config (and processes)."""
    if not run.last_path.exists():
        return
    state = load_checkpoint(run.last_path)
    _check_world_size(state, run.config, run.model.config.feature_dim, run.env, run.last_path)
    if state.get("fingerprint") != run.resume_key:
        logger.warning("%s was made with another config: starting from scratch", run.last_path)
        return
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.step, run.best_val, run.best_step = state["step"], state["best_val_vna"], state["best_step"]
    run.rows, run.skipped = list(state["log"]), int(state["skipped_clips"])
    rngs = state["rng"]  # one dict per rank (older files: rank 0's dict only)
    set_rng_state(rngs[run.env.rank] if isinstance(rngs, list) else rngs, run.device)
    logger.info("resumed from %s at step %d of %d", run.last_path, run.step, total_steps)


def _train_steps(
    run: _Run,
    source: BatchSource,
    val_data: Any | None,
    total_steps: int,
    stop_after: int | None,
) -> float:
    """Optimiser steps until ``total_steps`` (or ``stop_after`` in this call), logging,
    validating and saving ``last.pt`` on their schedules; the last logged loss."""
    tc, env = run.config.train, run.env
    ddp_model: nn.Module = run.model
    if env.is_distributed:
        ids = [run.device.index] if run.device.type == "cuda" else None
        ddp_model = DistributedDataParallel(run.model, device_ids=ids)
    run.model.train()
    steps_per_epoch = len(source)
    window_start, window_clips = time.perf_counter(), 0
    skipped_acc = torch.zeros((), device=run.device)  # summed on the device: no per-step sync
    last_loss = math.nan
    calls = 0
    while run.step < total_steps and (stop_after is None or calls < stop_after):
        epoch = run.step // steps_per_epoch
        for batch in iter_from(source, epoch, run.step % steps_per_epoch):
            loss, lr = _optimiser_step(run, ddp_model, batch.to(run.device, non_blocking=True))
            calls += 1
            window_clips += len(batch) * env.world_size
            skipped_acc = skipped_acc + loss.skipped_clips
            is_last = run.step >= total_steps
            do_val = is_last or (tc.val_every > 0 and run.step % tc.val_every == 0)
            if do_val or is_last or (tc.log_every > 0 and run.step % tc.log_every == 0):
                last_loss = float(loss.total)
                clips_per_s = window_clips / max(time.perf_counter() - window_start, 1e-9)
                _log_step(run, loss, lr, epoch, clips_per_s, total_steps, val_data, do_val)
                window_start, window_clips = time.perf_counter(), 0
            if is_last or (tc.checkpoint_every > 0 and run.step % tc.checkpoint_every == 0):
                run.skipped += int(skipped_acc)
                skipped_acc.zero_()
                _save_last(run)
            if is_last or (stop_after is not None and calls >= stop_after):
                break
    run.skipped += int(skipped_acc)
    return last_loss


def _optimiser_step(run: _Run, ddp_model: nn.Module, batch: ClipBatch) -> tuple[LossOutput, float]:
    """One step on ``batch`` (on the device): the losses and the learning rate it used."""
    tc = run.config.train
    loss = _compute_loss(ddp_model, batch, run.config, run.model, run.device, run.collective)
    run.optimizer.zero_grad(set_to_none=True)
    loss.loss.backward()
    if tc.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.grad_clip)
    lr = run.optimizer.param_groups[0]["lr"]
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    return loss, lr


def _log_step(
    run: _Run,
    loss: LossOutput,
    lr: float,
    epoch: int,
    clips_per_s: float,
    total_steps: int,
    val_data: Any | None,
    validate: bool,
) -> None:
    """A ``train_log.csv`` row and log line for this step; with ``validate``, the validation
    VNA too (every process: sharded, the same value everywhere), kept in ``best.pt`` when it is
    the lowest so far."""
    row: dict[str, Any] = {
        "step": run.step,
        "epoch": epoch,
        "loss": float(loss.total),
        "vna": float(loss.vna),
        "rpa": float(loss.rpa),
        "lr": lr,
        "clips_per_s": round(clips_per_s, 2),
        "val_vna": None,
    }
    if validate and val_data is not None:
        tc = run.config.train
        share = validation_share(val_data, tc.batch_size, tc.seed, tc.num_workers, run.env)
        row["val_vna"] = evaluate_vna(run.model, share, run.config, run.device, run.collective)
        if row["val_vna"] < run.best_val:
            run.best_val, run.best_step = row["val_vna"], run.step
            if run.env.is_main:
                state = model_state(run.model, step=run.step, val_vna=run.best_val)
                save_checkpoint(state, run.best_path)
    run.rows.append(row)
    logger.info(
        "step %d/%d epoch %d loss %.4f (vna %.4f rpa %.4f) lr %.2e %.1f clips/s%s",
        run.step,
        total_steps,
        epoch,
        row["loss"],
        row["vna"],
        row["rpa"],
        lr,
        row["clips_per_s"],
        "" if row["val_vna"] is None else f" val_vna {row['val_vna']:.4f}",
    )


def _save_last(run: _Run) -> None:
    """``last.pt``: everything a resumed run needs, with every rank's generator states."""
    states = run.collective.all_gather_object(rng_state(run.device))
    if not run.env.is_main:
        return
    state = {
        "model": run.model.state_dict(),
        "model_config": asdict(run.model.config),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "step": run.step,
        "best_val_vna": run.best_val,
        "best_step": run.best_step,
        "rng": states,
        "world_size": run.env.world_size,
        "log": run.rows,
        "skipped_clips": run.skipped,
        "fingerprint": run.resume_key,
        "config": run.config.to_dict(),
    }
    save_checkpoint(state, run.last_path)


def _write_final(run: _Run, record: Mapping[str, Any] | None = None) -> None:
    """``train_log.csv`` and ``checkpoint.pt`` (the best weights, else the final ones, with
    ``record``: what the weights need, e.g. the features they were trained on)."""
    if run.best_step >= 0:
        final = load_checkpoint(run.best_path)
    else:
        final = model_state(run.model, step=run.step, val_vna=None)
        logger.warning("no validation data: checkpoint.pt holds the final weights")
    final.update(config=run.config.to_dict(), best_step=run.best_step, steps=run.step)
    final.update(record or {})
    storage.write_csv(run.out / "train_log.csv", LOG_COLUMNS, run.rows)
    save_checkpoint(final, run.out / "checkpoint.pt")
