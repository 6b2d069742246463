"""Training ROSA from narrations only (DESIGN §7): config, loop, checkpoints, resume, DDP, variants.

:func:`train_rosa` trains :class:`~nvos.rosa.model.RosaModel` with λ_vna·L_VNA + λ_rpa·L_RPA on
batches of cached features, with AdamW, a linear warm-up then cosine learning-rate schedule,
gradient-norm clipping and bf16 autocast on CUDA. Files written to ``out_dir`` (all atomically):

- ``last.pt``: the running state every ``checkpoint_every`` steps (model, optimiser, scheduler,
  step, RNG states, best validation VNA, log rows). A new call with the same config resumes from
  it and produces the same loss curve as an uninterrupted run.
- ``best.pt``: the weights with the lowest validation VNA loss so far (no spatial labels used).
- ``checkpoint.pt``: written once at the end = ``best.pt`` (or the final weights without
  validation data); what prediction loads (:func:`nvos.rosa.model.load_model`).
- ``train_log.csv``: step, epoch, loss, vna, rpa, lr, clips_per_s, val_vna.

Several processes (``torchrun``, world size > 1): the model is wrapped in DistributedDataParallel,
each process gets ``batch_size / world_size`` clips of every global batch, L_VNA's negatives are
gathered from all processes (with gradient) and both losses are means over the global batch, so
the result equals one process with the same global batch.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nvos import storage
from nvos.rosa.batch import ClipBatch, ClipItem
from nvos.rosa.distributed import SINGLE, Collective, DistEnv, init_from_env, shutdown
from nvos.rosa.losses import RPA_REDUCTIONS, LossOutput, rosa_loss
from nvos.rosa.model import ModelConfig, RosaModel, model_state

__all__ = [
    "LOG_COLUMNS",
    "BatchSource",
    "RosaConfig",
    "TrainConfig",
    "TrainSummary",
    "evaluate_vna",
    "input_statistics",
    "launch_training",
    "lr_factor",
    "main",
    "resolve_variant",
    "run_train",
    "variant_params",
    "train_restarts",
    "train_rosa",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
LOG_COLUMNS = ("step", "epoch", "loss", "vna", "rpa", "lr", "clips_per_s", "val_vna")
RESTART_COLUMNS = ("restart", "seed", "best_step", "best_val_vna", "chosen", "log")


# ------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TrainConfig:
    """``rosa.train``: optimisation and bookkeeping.

    ``batch_size`` is the *global* batch (clips per step over all processes; divisible by
    ``gpus``). ``steps`` (if set) overrides ``epochs``. ``checkpoint_every``/``val_every``/
    ``log_every`` count steps (0 = only at the end). ``restarts`` > 1 trains that many
    initialisations (seeds ``seed``, ``seed + 1``, ...) and keeps the one with the lowest
    validation VNA (:func:`train_restarts`).
    """

    batch_size: int = 32
    epochs: int = 30
    steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    val_every: int = 50
    log_every: int = 10
    seed: int = 0
    gpus: int = 1
    bf16: bool = True
    num_workers: int = 0
    restarts: int = 1


@dataclass(frozen=True)
class RosaConfig:
    """The ``rosa`` config group (one variant resolved; see :func:`resolve_variant`).

    ``frames_per_clip`` and ``max_regions`` shape the training items (data side); the others
    shape the model (:class:`~nvos.rosa.model.ModelConfig`) and the loss.
    """

    frames_per_clip: int = 8
    max_regions: int = 20
    dim: int = 256
    context_layers: int = 2
    context_heads: int = 4
    dropout: float = 0.0
    use_context: bool = True
    tau: float = 0.07
    learn_tau: bool = False
    lambda_vna: float = 1.0
    lambda_rpa: float = 1.0
    rpa_reduction: str = "mean"
    input_norm: str = "none"
    context_dropout: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.rpa_reduction not in RPA_REDUCTIONS:
            raise ValueError(f"rosa.rpa_reduction must be one of {RPA_REDUCTIONS}")
        if self.lambda_vna == 0 and self.lambda_rpa == 0:
            raise ValueError("rosa.lambda_vna and rosa.lambda_rpa are both 0: nothing to train")
        if self.train.restarts < 1:
            raise ValueError(f"rosa.train.restarts must be >= 1, got {self.train.restarts}")
        if self.train.batch_size % max(self.train.gpus, 1) != 0:
            raise ValueError(
                f"rosa.train.batch_size={self.train.batch_size} is not divisible by "
                f"rosa.train.gpus={self.train.gpus}"
            )

    @classmethod
    def from_mapping(cls, rosa: Mapping[str, Any]) -> RosaConfig:
        """Build from a config mapping (``variants`` is ignored); unknown keys are an error."""
        values = {k: v for k, v in rosa.items() if k != "variants"}
        train = dict(values.pop("train", {}) or {})
        _check_keys("rosa", values, cls)
        _check_keys("rosa.train", train, TrainConfig)
        return cls(**values, train=TrainConfig(**train))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_config(self, feature_dim: int) -> ModelConfig:
        """The model's architecture for embeddings of size ``feature_dim``."""
        return ModelConfig(
            feature_dim=feature_dim,
            dim=self.dim,
            context_layers=self.context_layers,
            context_heads=self.context_heads,
            dropout=self.dropout,
            use_context=self.use_context,
            tau=self.tau,
            learn_tau=self.learn_tau,
            input_norm=self.input_norm,
            context_dropout=self.context_dropout,
        )


def _check_keys(where: str, values: Mapping[str, Any], kind: type) -> None:
    known = {f.name for f in fields(kind)} - {"train"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_variant(rosa: Mapping[str, Any], variant: str) -> RosaConfig:
    """The config of ablation ``variant``: ``rosa`` with ``rosa.variants[variant]`` merged in.

    E.g. ``variants: {rosa: {}, rosa_noctx: {use_context: false},
    rosa_vna_only: {lambda_rpa: 0.0}, rosa_rpa_only: {lambda_vna: 0.0}}``; overrides may also set
    ``train`` keys (merged key by key).
    """
    variants = rosa.get("variants") or {}
    if variant not in variants:
        raise ValueError(f"rosa.variants has no variant {variant!r} (has {sorted(variants)})")
    base = {k: v for k, v in rosa.items() if k != "variants"}
    return RosaConfig.from_mapping(_merge(base, variants[variant] or {}))


def variant_params(rosa: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The ``rosa`` group reduced to one variant (its overrides merged, ``variants`` holding only
    ``{variant: {}}``): a rule's ``params`` that change only when that variant's config changes."""
    resolved = resolve_variant(rosa, variant).to_dict()
    return {**resolved, "variants": {variant: {}}}


# ------------------------------------------------------------------------------------- data


class BatchSource(Protocol):
    """Batches of one process for an epoch (e.g. :class:`nvos.rosa.data.ClipLoader`)."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[ClipBatch]: ...


def _is_dataset(data: Any) -> bool:
    return (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and len(data) > 0
        and (isinstance(data[0], ClipItem))
    )


def _as_source(
    data: Any, batch_size: int, shuffle: bool, seed: int, workers: int, env: DistEnv, train: bool
) -> BatchSource:
    """A dataset of ClipItem → a ClipLoader of this process's share; a BatchSource as is."""
    if _is_dataset(data):
        from nvos.rosa.data import make_loader

        return make_loader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=workers,
            drop_last=train,
            rank=env.rank,
            world_size=env.world_size,
            pin_memory=torch.cuda.is_available(),
        )
    if hasattr(data, "set_epoch") and hasattr(data, "__iter__") and hasattr(data, "__len__"):
        return data
    raise TypeError(
        "training data must be a dataset of ClipItem (FeatureDataset, SyntheticClips) or a "
        f"batch source with set_epoch/__len__/__iter__, got {type(data).__name__}"
    )


def _feature_dim(data: Any, source: BatchSource) -> int:
    if hasattr(data, "dim"):
        return int(data.dim)
    if _is_dataset(data):
        return int(data[0].regions.shape[-1])
    source.set_epoch(0)
    return int(next(iter(source)).regions.shape[-1])


def _iter_from(source: BatchSource, epoch: int, start: int) -> Iterator[ClipBatch]:
    """The epoch's batches from position ``start`` (sources with ``iter_from`` skip reading)."""
    source.set_epoch(epoch)
    if start and hasattr(source, "iter_from"):
        return iter(source.iter_from(start))  # type: ignore[attr-defined]
    return itertools.islice(iter(source), start, None)


def input_statistics(
    batches: Iterable[ClipBatch],
    collective: Collective = SINGLE,
    device: torch.device | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean (D,) and covariance (D, D), float64, of the real region, context-phrase and
    plain-phrase embeddings of ``batches`` (padding left out), for
    :meth:`nvos.rosa.model.RosaModel.set_input_norm`. Sums are added over ``collective``'s
    processes (on ``device``, e.g. the process's GPU for NCCL), so every process gets the
    statistics of all their batches.

    Raises ValueError when the batches hold no region or no phrase.
    """
    sums: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        region_mask = batch.region_mask & batch.frame_mask[:, :, None]
        rows = {
            "regions": batch.regions[region_mask],
            "context": batch.phrase_context[batch.phrase_mask],
            "plain": batch.phrase_plain[batch.phrase_mask],
        }
        for kind, x in rows.items():
            x = x.double().cpu()
            acc = sums.setdefault(kind, [torch.zeros(()), torch.zeros(()), torch.zeros(())])
            acc[0] = acc[0] + x.shape[0]
            acc[1] = acc[1] + x.sum(0)
            acc[2] = acc[2] + x.T @ x
    out = {}
    for kind in ("regions", "context", "plain"):
        if kind not in sums:
            raise ValueError("no batch to compute input statistics from")
        count, total, outer = (
            collective.all_reduce_sum(t.to(device or "cpu")).cpu() for t in sums[kind]
        )
        if float(count) == 0:
            raise ValueError(f"no {kind} embedding to compute input statistics from")
        mean = total / count
        out[kind] = (mean, outer / count - torch.outer(mean, mean))
    return out


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
    """What :func:`train_rosa` did."""

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


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save(obj: Any, path: Path) -> None:
    with storage.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _fingerprint(config: RosaConfig, feature_dim: int, world_size: int) -> str:
    """What must match for ``last.pt`` to be resumed (logging/checkpoint cadence may change)."""
    cfg = config.to_dict()
    for key in ("checkpoint_every", "val_every", "log_every", "num_workers"):
        cfg["train"].pop(key)
    text = json.dumps([cfg, feature_dim, world_size], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_log(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS})
    storage.write_text(path, buffer.getvalue())


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
    model: RosaModel, batches: Iterable[ClipBatch], config: RosaConfig, device: torch.device
) -> float:
    """Mean L_VNA over ``batches`` (weighted by valid clips; batch negatives only, one process).

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
    if count == 0:
        raise ValueError("validation data has no valid clip (each needs a phrase and a proposal)")
    return total / count


def train_rosa(
    train_data: Any,
    val_data: Any | None,
    out_dir: PathLike,
    config: RosaConfig,
    device: torch.device | None = None,
    env: DistEnv | None = None,
    stop_after: int | None = None,
) -> TrainSummary:
    """Train ROSA; resume from ``out_dir/last.pt`` when it exists for the same config.

    Args:
        train_data: a dataset of :class:`~nvos.rosa.batch.ClipItem` (``FeatureDataset``,
            ``SyntheticClips``; batched here with :func:`nvos.rosa.data.make_loader`, this
            process's share) or a :class:`BatchSource` of this process's batches.
        val_data: the same for validation (VNA loss only, evaluated by process 0), or None
            (then ``checkpoint.pt`` holds the final weights).
        out_dir: ``models/<variant>/``: ``checkpoint.pt``, ``last.pt``, ``best.pt``,
            ``train_log.csv``.
        config: the resolved variant config (:func:`resolve_variant`).
        device: default ``cuda:<local rank>`` when CUDA is available, else the CPU.
        env: the process's place (default: from torchrun's variables, initialising the group).
        stop_after: stop (as if killed) after this many steps in this call, without writing
            ``checkpoint.pt`` (tests of resume).

    Returns:
        A :class:`TrainSummary` (on every process; files are written by process 0 only).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    env = env or init_from_env()
    collective = Collective(env) if env.is_distributed else SINGLE
    tc = config.train
    if env.world_size != max(tc.gpus, 1):
        logger.warning(
            "rosa.train.gpus=%d but %d process(es) run; the global batch stays %d clips",
            tc.gpus,
            env.world_size,
            tc.batch_size,
        )
    if tc.batch_size % env.world_size:
        raise ValueError(f"batch_size {tc.batch_size} not divisible by {env.world_size} processes")
    if device is None:
        device = (
            torch.device("cuda", env.local_rank)
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    local_batch = tc.batch_size // env.world_size
    source = _as_source(train_data, local_batch, True, tc.seed, tc.num_workers, env, train=True)
    steps_per_epoch = len(source)
    if steps_per_epoch == 0:
        raise ValueError(
            f"training data gives no full batch of {local_batch} clips per process "
            "(fewer clips than rosa.train.batch_size?)"
        )
    total_steps = tc.steps if tc.steps is not None else tc.epochs * steps_per_epoch
    feature_dim = _feature_dim(train_data, source)

    seed_everything(tc.seed)
    model = RosaModel(config.model_config(feature_dim))
    if config.input_norm != "none":  # replaced by the saved buffers when resuming
        stats_source = (
            _as_source(train_data, tc.batch_size, False, tc.seed, 0, DistEnv(), train=False)
            if _is_dataset(train_data)
            else source
        )
        stats_source.set_epoch(0)
        stats_collective = SINGLE if _is_dataset(train_data) else collective
        model.set_input_norm(input_statistics(stats_source, stats_collective, device))
    model = model.to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.warmup_steps, total_steps, tc.min_lr_ratio)
    )
    fingerprint = _fingerprint(config, feature_dim, env.world_size)
    step, best_val, best_step, rows, skipped = 0, math.inf, -1, [], 0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, best_val, best_step = state["step"], state["best_val_vna"], state["best_step"]
            rows, skipped = list(state["log"]), int(state["skipped_clips"])
            _set_rng_state(state["rng"])
            logger.info("resumed from %s at step %d of %d", last_path, step, total_steps)
        else:
            logger.warning("%s was made with another config: starting from scratch", last_path)
    resumed_from = step
    ddp_model: nn.Module = model
    if env.is_distributed:
        ids = [device.index] if device.type == "cuda" else None
        ddp_model = DistributedDataParallel(model, device_ids=ids)
    val_source = None
    if val_data is not None and env.is_main:
        val_source = _as_source(
            val_data, tc.batch_size, False, tc.seed, tc.num_workers, DistEnv(), train=False
        )

    def validate() -> float | None:
        if val_source is None:
            return None
        val_source.set_epoch(0)
        return evaluate_vna(model, val_source, config, device)

    def checkpoint() -> None:
        if not env.is_main:
            return
        state = {
            "model": model.state_dict(),
            "model_config": asdict(model.config),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "best_val_vna": best_val,
            "best_step": best_step,
            "rng": _rng_state(),
            "log": rows,
            "skipped_clips": skipped,
            "fingerprint": fingerprint,
            "config": config.to_dict(),
        }
        _save(state, last_path)
        _write_log(out / "train_log.csv", rows)

    model.train()
    logger.info(
        "training %d steps (%d per epoch, global batch %d on %d process(es), device %s)",
        total_steps,
        steps_per_epoch,
        tc.batch_size,
        env.world_size,
        device,
    )
    window_start, window_clips = time.perf_counter(), 0
    skipped_acc = torch.zeros((), device=device)  # summed on the device: no per-step sync
    last_loss = math.nan
    calls = 0
    while step < total_steps and (stop_after is None or calls < stop_after):
        epoch = step // steps_per_epoch
        for batch in _iter_from(source, epoch, step % steps_per_epoch):
            batch = batch.to(device, non_blocking=True)
            loss = _compute_loss(ddp_model, batch, config, model, device, collective)
            optimizer.zero_grad(set_to_none=True)
            loss.loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step += 1
            calls += 1
            window_clips += len(batch) * env.world_size
            skipped_acc = skipped_acc + loss.skipped_clips
            is_last = step >= total_steps
            do_val = is_last or (tc.val_every > 0 and step % tc.val_every == 0)
            do_log = do_val or is_last or (tc.log_every > 0 and step % tc.log_every == 0)
            if do_log:
                now = time.perf_counter()
                last_loss = float(loss.total)
                row: dict[str, Any] = {
                    "step": step,
                    "epoch": epoch,
                    "loss": last_loss,
                    "vna": float(loss.vna),
                    "rpa": float(loss.rpa),
                    "lr": lr,
                    "clips_per_s": round(window_clips / max(now - window_start, 1e-9), 2),
                    "val_vna": None,
                }
                if do_val and env.is_main:
                    row["val_vna"] = validate()
                    if row["val_vna"] is not None and row["val_vna"] < best_val:
                        best_val, best_step = row["val_vna"], step
                        _save(model_state(model, step=step, val_vna=best_val), best_path)
                rows.append(row)
                logger.info(
                    "step %d/%d epoch %d loss %.4f (vna %.4f rpa %.4f) lr %.2e %.1f clips/s%s",
                    step,
                    total_steps,
                    epoch,
                    row["loss"],
                    row["vna"],
                    row["rpa"],
                    lr,
                    row["clips_per_s"],
                    "" if row["val_vna"] is None else f" val_vna {row['val_vna']:.4f}",
                )
                window_start, window_clips = time.perf_counter(), 0
            if is_last or (tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0):
                skipped += int(skipped_acc)
                skipped_acc.zero_()
                checkpoint()
            if is_last or (stop_after is not None and calls >= stop_after):
                break
    skipped += int(skipped_acc)
    if skipped:
        logger.warning(
            "%d clip-steps without phrase or proposal were left out of the losses", skipped
        )
    finished = step >= total_steps
    if finished and env.is_main:
        if best_step >= 0:
            final = torch.load(best_path, map_location="cpu", weights_only=False)
        else:
            final = model_state(model, step=step, val_vna=None)
            logger.warning("no validation data: checkpoint.pt holds the final weights")
        final.update(config=config.to_dict(), best_step=best_step, steps=step)
        _write_log(out / "train_log.csv", rows)
        _save(final, out / "checkpoint.pt")
    if env.is_distributed:
        torch.distributed.barrier()
    return TrainSummary(
        steps=step,
        epochs=math.ceil(step / steps_per_epoch),
        final_loss=last_loss,
        best_step=best_step,
        best_val_vna=None if best_step < 0 else best_val,
        resumed_from=resumed_from,
        skipped_clips=skipped,
        seconds=time.perf_counter() - started,
        checkpoint=out / "checkpoint.pt",
        log=out / "train_log.csv",
    )


def train_restarts(
    train_data: Any,
    val_data: Any | None,
    out_dir: PathLike,
    config: RosaConfig,
    device: torch.device | None = None,
    env: DistEnv | None = None,
) -> TrainSummary:
    """Train ``config.train.restarts`` initialisations and keep the lowest validation VNA.

    Restart 0 is :func:`train_rosa` in ``out_dir`` itself (so one restart, the default, is
    exactly that, and ``out_dir``'s ``last.pt``, ``best.pt`` and ``train_log.csv`` are always
    restart 0's); restart r ≥ 1 trains with seed ``seed + r`` in ``out_dir/restart_<r>/``. Each
    has its own ``last.pt``, so a killed run resumes in the restart it was in, finished restarts
    are not redone, and raising R reuses them. Then ``out_dir/checkpoint.pt`` is rewritten with
    the best weights of the restart whose best validation VNA is lowest (ties: the first), gaining
    ``restart`` and ``restarts`` (seed, best step and best validation VNA of each), and
    ``out_dir/restarts.csv`` lists them (:data:`RESTART_COLUMNS`) with the log of each.
    Weak supervision can settle on a poor alignment from some initialisations; their validation
    VNA tends to show it, and it uses no spatial labels. Without validation data the first
    restart is kept (warned).

    Returns the chosen restart's :class:`TrainSummary` (its own ``log``) with ``checkpoint``
    ``out_dir/checkpoint.pt``.
    """
    restarts = config.train.restarts
    if restarts == 1:
        return train_rosa(train_data, val_data, out_dir, config, device, env)
    out = Path(out_dir)
    env = env or init_from_env()
    summaries = []
    for r in range(restarts):
        train = dataclasses.replace(config.train, seed=config.train.seed + r, restarts=1)
        one = dataclasses.replace(config, train=train)
        where = out if r == 0 else out / f"restart_{r}"
        logger.info("restart %d of %d (seed %d) in %s", r + 1, restarts, train.seed, where)
        summaries.append(train_rosa(train_data, val_data, where, one, device, env))
    scores = [math.inf if s.best_val_vna is None else s.best_val_vna for s in summaries]
    chosen = min(range(restarts), key=lambda r: (scores[r], r))
    if val_data is None:
        logger.warning("no validation data: restarts cannot be compared, keeping restart 0")
    if env.is_main:
        rows = [
            {
                "restart": r,
                "seed": config.train.seed + r,
                "best_step": s.best_step,
                "best_val_vna": s.best_val_vna,
                "chosen": r == chosen,
                "log": s.log.relative_to(out).as_posix(),
            }
            for r, s in enumerate(summaries)
        ]
        state = torch.load(summaries[chosen].checkpoint, map_location="cpu", weights_only=False)
        state.update(restart=chosen, restarts=rows, config=config.to_dict())
        _save(state, out / "checkpoint.pt")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RESTART_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        storage.write_text(out / "restarts.csv", buffer.getvalue())
        logger.info(
            "kept restart %d (seed %d): best validation VNA %s of %s",
            chosen,
            config.train.seed + chosen,
            summaries[chosen].best_val_vna,
            [None if math.isinf(v) else round(v, 4) for v in scores],
        )
    if env.is_distributed:
        torch.distributed.barrier()
    return dataclasses.replace(summaries[chosen], checkpoint=out / "checkpoint.pt")


# ------------------------------------------------------------------------------------- stage


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

    train_set = dataset("train")
    val_set = dataset("val")
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
        n = min(gpus, torch.cuda.device_count())
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n}",
            "-m",
            "nvos.rosa.train",
            str(spec),
        ]
        logger.info("launching %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        return None
    from nvos.devices import claim_device

    with claim_device(Path(lock_dir)) as device:
        return run_train(run_dir, shards, clips_path, out_dir, rosa, variant, device)


def main(argv: Sequence[str] | None = None) -> None:
    """torchrun entry: ``python -m nvos.rosa.train ARGS.json`` (written by launch_training)."""
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
