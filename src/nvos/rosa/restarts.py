"""Several initialisations of one ROSA variant, the lowest validation VNA kept (``restarts``).

Weak supervision can settle on a poor alignment from some initialisations; their validation VNA
(narrations only, no spatial labels) tends to show it. :func:`train_restarts` trains each restart
with :func:`nvos.rosa.train.train_rosa` in its own folder ``restart_<r>/`` and, when all have
finished, writes the chosen one's weights to ``checkpoint.pt`` and its log to ``train_log.csv``;
``restarts.csv`` lists them (:data:`RESTART_COLUMNS`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nvos import storage
from nvos.rosa.checkpoint import load_checkpoint, save_checkpoint
from nvos.rosa.config import RosaConfig
from nvos.rosa.distributed import DistEnv, init_from_env
from nvos.rosa.train import TrainSummary, train_rosa
from nvos.types import PathLike

__all__ = ["RESTART_COLUMNS", "train_restarts"]

logger = logging.getLogger(__name__)

RESTART_COLUMNS = ("restart", "seed", "best_step", "best_val_vna", "chosen", "log")


def train_restarts(
    train_data: Any,
    val_data: Any | None,
    out_dir: PathLike,
    config: RosaConfig,
    device: torch.device | None = None,
    env: DistEnv | None = None,
    record: Mapping[str, Any] | None = None,
) -> TrainSummary:
    """Train ``config.train.restarts`` initialisations and keep the lowest validation VNA.

    One restart (the default) is exactly :func:`~nvos.rosa.train.train_rosa` in ``out_dir``.
    With R > 1, restart r trains with seed ``seed + r`` in ``out_dir/restart_<r>/`` (its own
    ``last.pt``, ``best.pt``, ``checkpoint.pt`` and ``train_log.csv``), so a killed run resumes in
    the restart it was in and finished restarts are not redone. When all have finished, the restart
    whose best validation VNA is lowest (ties: the first) is chosen (no spatial labels), and only
    then are ``out_dir``'s own files written: ``checkpoint.pt`` (its best weights, gaining
    ``restart`` and ``restarts``: seed, best step and best validation VNA of each),
    ``train_log.csv`` (its log) and ``restarts.csv`` (:data:`RESTART_COLUMNS`). Until then
    ``out_dir`` holds nothing that looks finished. Without validation data the first restart is
    kept (warned).

    ``record`` is added to every ``checkpoint.pt`` (:func:`~nvos.rosa.train.train_rosa`).

    Returns the chosen restart's :class:`TrainSummary` with ``checkpoint`` and ``log`` in
    ``out_dir``.
    """
    restarts = config.train.restarts
    if restarts == 1:
        return train_rosa(train_data, val_data, out_dir, config, device, env, record=record)
    out = Path(out_dir)
    env = env or init_from_env()
    summaries = []
    for r in range(restarts):
        train = dataclasses.replace(config.train, seed=config.train.seed + r, restarts=1)
        one = dataclasses.replace(config, train=train)
        where = out / f"restart_{r}"
        logger.info("restart %d of %d (seed %d) in %s", r + 1, restarts, train.seed, where)
        summaries.append(train_rosa(train_data, val_data, where, one, device, env, record=record))
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
        storage.write_csv(out / "restarts.csv", RESTART_COLUMNS, rows)
        storage.write_text(out / "train_log.csv", summaries[chosen].log.read_text())
        state = load_checkpoint(summaries[chosen].checkpoint)
        state.update(restart=chosen, restarts=rows, config=config.to_dict(), **(record or {}))
        save_checkpoint(state, out / "checkpoint.pt")  # last: the variant's "finished" file
        logger.info(
            "kept restart %d (seed %d): best validation VNA %s of %s",
            chosen,
            config.train.seed + chosen,
            summaries[chosen].best_val_vna,
            [None if math.isinf(v) else round(v, 4) for v in scores],
        )
    if env.is_distributed:
        torch.distributed.barrier()
    return dataclasses.replace(
        summaries[chosen], checkpoint=out / "checkpoint.pt", log=out / "train_log.csv"
    )
