"""What the Snakefile needs at DAG-build time: the run folder, the manifest and the shard ids.

These run on every ``snakemake`` invocation, so they only count manifest lines: nothing is parsed
or probed here (validation is the ``dataset`` rule's job).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvos.shards import count_manifest_lines, shard_ids

DEMO_MANIFEST_NAME = "manifest.jsonl"


def run_dir(config: Mapping[str, Any]) -> str:
    """``<results_dir>/<run>``: the folder holding everything a run writes."""
    return f"{config['results_dir']}/{config['run']}"


def is_demo(config: Mapping[str, Any]) -> bool:
    """True when no manifest is configured and the embedded demo is generated instead."""
    return config["dataset"].get("manifest") is None


def manifest_path(config: Mapping[str, Any]) -> str:
    """The dataset rule's input: the user's manifest, or the demo generator's output folder."""
    if is_demo(config):
        return f"{run_dir(config)}/demo_data"
    return str(config["dataset"]["manifest"])


def resolve_manifest(path: str | Path) -> Path:
    """The manifest file behind :func:`manifest_path` (inside the folder for the demo)."""
    path = Path(path)
    return path / DEMO_MANIFEST_NAME if path.is_dir() else path


def shard_list(config: Mapping[str, Any]) -> list[str]:
    """Shard ids of the run, from the number of clips (manifest lines, or demo clips)."""
    per_shard = int(config["shards"]["clips_per_shard"])
    if is_demo(config):
        return shard_ids(int(config["dataset"]["demo"]["clips"]), per_shard)
    manifest = Path(config["dataset"]["manifest"])
    if not manifest.is_file():
        raise FileNotFoundError(f"dataset.manifest: {manifest} does not exist or is not a file")
    return shard_ids(count_manifest_lines(manifest), per_shard)
