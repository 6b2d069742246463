"""What the Snakefile needs at DAG-build time: the config checked, the run folder, the manifest
and the shard ids.

These run on every ``snakemake`` invocation, so they only scan the manifest's lines for their
split (:func:`nvos.shards.scan_manifest`): nothing is parsed or probed here (validation is the
``dataset`` rule's job).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvos.checks import check_config
from nvos.config import ConfigError, validate_config
from nvos.errors import NvosError
from nvos.layout import DEMO_MANIFEST_NAME, RunLayout
from nvos.shards import scan_manifest, shard_ids


def is_demo(config: Mapping[str, Any]) -> bool:
    """True when no manifest is configured and the embedded demo is generated instead."""
    return config["dataset"].get("manifest") is None


def manifest_path(config: Mapping[str, Any]) -> str:
    """The dataset rule's input: the user's manifest, or the demo generator's output folder."""
    if is_demo(config):
        return RunLayout.of(config).demo_data
    return str(config["dataset"]["manifest"])


def resolve_manifest(path: str | Path) -> Path:
    """The manifest file behind :func:`manifest_path` (inside the folder for the demo)."""
    path = Path(path)
    return path / DEMO_MANIFEST_NAME if path.is_dir() else path


def _manifest_file(config: Mapping[str, Any]) -> Path:
    manifest = Path(config["dataset"]["manifest"])
    if not manifest.is_file():
        raise ConfigError(f"dataset.manifest: {manifest}: file not found")
    return manifest


def split_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Clips per split of the run: the manifest's (a scan), or the demo generator's."""
    if is_demo(config):
        from nvos.demo.generate import split_counts as demo_split_counts

        return demo_split_counts(int(config["dataset"]["demo"]["clips"]))
    return scan_manifest(_manifest_file(config))[1]


def shard_list(config: Mapping[str, Any]) -> list[str]:
    """Shard ids of the run, from the number of clips (manifest lines, or demo clips)."""
    per_shard = int(config["shards"]["clips_per_shard"])
    if is_demo(config):
        return shard_ids(int(config["dataset"]["demo"]["clips"]), per_shard)
    return shard_ids(scan_manifest(_manifest_file(config))[0], per_shard)


def start_workflow(config: dict[str, Any], schema: str | Path) -> None:
    """The Snakefile's first step: validate ``config`` against ``schema`` (filling defaults in
    place) and cross-check it (:func:`nvos.checks.check_config`) with the clips per split.

    An expected error ends Snakemake with its message alone (exit status 1) before any job runs.
    """
    try:
        validate_config(config, schema)
        check_config(config, split_counts(config))
    except NvosError as error:
        sys.exit(f"nvos: {error}")


SCORING_KEYS = ("bound_th", "protocol", "train_split", "seen_unseen", "spacy_model")
"""The keys of the ``evaluate`` group a method's scores depend on; the others (which methods and
splits are scored, the imported methods' rows, processes) change no summary."""


def scoring_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``evaluate_method`` rule's params: the :data:`SCORING_KEYS` of ``evaluate``, so that
    adding a method (or importing one) reruns only that method's evaluation."""
    return {key: config["evaluate"][key] for key in SCORING_KEYS}
