"""Training state on disk: atomic checkpoint files, RNG states and the resume fingerprint.

A checkpoint is a dict saved with :func:`torch.save` (``last.pt``, ``best.pt``,
``checkpoint.pt`` of :func:`nvos.rosa.train.train_rosa`); tensors in it keep their shapes, and
equal dicts give equal bytes (:func:`save_checkpoint`).
:func:`rng_state` / :func:`set_rng_state` capture and restore every random generator a training
process draws from (its own CUDA device only; under DDP each rank's state is saved, see
:func:`nvos.rosa.train.train_rosa`), so a resumed run continues with the same numbers as an
uninterrupted one, and
:func:`fingerprint` says whether a ``last.pt`` was made with the same config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from nvos import storage
from nvos.rosa.config import RosaConfig
from nvos.types import PathLike

__all__ = ["fingerprint", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]

logger = logging.getLogger(__name__)


def save_checkpoint(obj: Any, path: PathLike) -> None:
    """Save ``obj`` to ``path`` atomically (a temporary file renamed when complete).

    Saved through an open file: given a path, :func:`torch.save` names the archive's records
    after the (random) temporary file name, so equal objects gave different bytes; through a
    file object the name is fixed and equal checkpoints are byte-identical.
    """
    with storage.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def load_checkpoint(path: PathLike, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The dict saved at ``path`` by :func:`save_checkpoint`, tensors on ``map_location``."""
    return torch.load(path, map_location=map_location, weights_only=False)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's CPU generators, and of ``device``'s CUDA
    generator when it is a CUDA device (only the device this process draws from: the others
    are another process's, and may not be visible when resuming)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device | None = None) -> None:
    """Restore the generators from :func:`rng_state`'s dict; its CUDA state goes to ``device``
    (whichever device this process claimed now, not necessarily the one it was saved from)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, torch.Tensor) and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)
    elif cuda is not None:
        logger.warning(
            "the checkpoint's CUDA generator state is not restored (resuming on %s%s): random "
            "draws on the device differ from an uninterrupted run",
            device,
            "" if isinstance(cuda, torch.Tensor) else ", state of an older format",
        )


def fingerprint(config: RosaConfig, feature_dim: int, world_size: int) -> str:
    """What must match for ``last.pt`` to be resumed (logging/checkpoint cadence may change)."""
    cfg = config.to_dict()
    for key in ("checkpoint_every", "val_every", "log_every", "num_workers"):
        cfg["train"].pop(key)
    text = json.dumps([cfg, feature_dim, world_size], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
