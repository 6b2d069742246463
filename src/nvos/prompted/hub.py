"""Local ``transformers`` checkpoints: loaded offline, hashed for the provenance.

A checkpoint is a folder as ``save_pretrained`` writes it (``config.json``, the weights as
``*.safetensors`` or ``*.bin``, the processor's files), e.g. a downloaded copy of
``IDEA-Research/grounding-dino-base`` or ``facebook/sam3``. Nothing is ever downloaded: loading
passes ``local_files_only=True`` with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from nvos.config import ConfigError
from nvos.storage import file_sha256
from nvos.types import PathLike

__all__ = ["load_local", "seeded", "weights_sha256"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved


def load_local(cls: Any, folder: PathLike, key: str) -> Any:
    """``cls.from_pretrained(folder)`` offline (a model or a processor class); a folder that
    cannot be loaded is a ConfigError naming ``key``."""
    path = Path(folder)
    if not (path / "config.json").is_file() and not (path / "preprocessor_config.json").is_file():
        raise ConfigError(f"{key}: {path}: not a checkpoint folder (no config.json)")
    try:
        with _offline():
            return cls.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{key}: cannot load {cls.__name__} from {path}: {exc}") from exc


def weights_sha256(folder: PathLike) -> dict[str, str]:
    """File name -> sha256 of every weights file of a checkpoint folder (sorted by name)."""
    path = Path(folder)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return {p.name: file_sha256(p) for p in files}


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Random initialisation under ``seed`` without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
