"""The CLIP model names the features stage can build, known without importing open_clip or torch.

open_clip registers one JSON config per model name in its ``model_configs`` folder; nvos ships
more in ``nvos/resources/clip/`` (:data:`SHIPPED_CONFIGS_DIR`). Names with a :data:`REMOTE_PREFIXES`
prefix are resolved by open_clip itself (a Hugging Face hub id or a local folder).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvos.resources import resource_path

SHIPPED_CONFIGS_DIR = resource_path("clip")
"""Folder of the extra open_clip model configs shipped with nvos (one JSON per model name)."""

REMOTE_PREFIXES = ("hf-hub:", "local-dir:")
"""Model-name prefixes that open_clip resolves outside its registry."""


def known_clip_models() -> set[str]:
    """open_clip's model config names (``open_clip.list_models()``) and the shipped ones."""
    folders = [SHIPPED_CONFIGS_DIR]
    spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "model_configs" for p in spec.submodule_search_locations]
    return {path.stem for folder in folders for path in folder.glob("*.json")}


def clip_checkpoint(config: Mapping[str, Any]) -> list[str]:
    """The local CLIP checkpoint file (``features.clip.pretrained``) when it is one, else
    nothing: an input, so that replacing the file reruns the jobs that embed with it."""
    pretrained = config["features"]["clip"]["pretrained"]
    return [pretrained] if pretrained and os.path.isfile(pretrained) else []


def features_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``features`` group as the features stage depends on it: without ``prompt`` (the
    baseline's text template, not the features'), so a new prompt reruns no features job."""
    return {k: v for k, v in config["features"].items() if k != "prompt"}
