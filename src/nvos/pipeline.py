"""One entry function per stage: paths and the stage's config group in, files out.

The Snakemake scripts in ``workflow/scripts/`` and the ``nvos`` command line both call these, so
a stage behaves the same inside and outside the workflow. Each function only maps the config group
onto the stage module's typed parameters and records provenance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvos.workflow import resolve_manifest

logger = logging.getLogger(__name__)

PathLike = str | Path


def run_demo_data(out_dir: PathLike, demo: Mapping[str, Any]) -> Path:
    """Generate the embedded demo dataset (videos + manifest) into ``out_dir``."""
    from nvos.demo import generate_demo

    return generate_demo(Path(out_dir), n_clips=int(demo["clips"]), seed=int(demo["seed"]))


def run_dataset(
    manifest: PathLike,
    clips_out: PathLike,
    annotations_out: PathLike,
    dataset: Mapping[str, Any],
    shards: Mapping[str, Any],
) -> Any:
    """Validate the manifest and write ``clips.parquet`` and ``annotations.parquet``."""
    from nvos.dataset import build_dataset

    return build_dataset(
        resolve_manifest(manifest),
        clips_out,
        annotations_out,
        splits=list(dataset["splits"]),
        clips_per_shard=int(shards["clips_per_shard"]),
        folder_fps=float(dataset["folder_fps"]),
    )


def run_frames(
    clips: PathLike,
    annotations: PathLike,
    shard: str,
    out: PathLike,
    frames: Mapping[str, Any],
    folder_fps: float,
) -> Any:
    """Decode, sample and store the frames of one shard."""
    from nvos.frames import extract_frames

    return extract_frames(
        clips,
        annotations,
        shard,
        out,
        per_clip=int(frames["per_clip"]),
        max_side=int(frames["max_side"]),
        jpeg_quality=int(frames["jpeg_quality"]),
        folder_fps=float(folder_fps),
    )


def run_proposals(
    frames: PathLike, out: PathLike, proposals: Mapping[str, Any], lock_dir: PathLike, shard: str
) -> Any:
    """Generate mask proposals for one shard's frames on a claimed device."""
    from nvos.devices import claim_device
    from nvos.proposals.stage import build_backend, generate_proposals

    with claim_device(Path(lock_dir)) as device:
        backend = build_backend(dict(proposals), device=device)
        return generate_proposals(
            frames,
            out,
            backend,
            max_per_frame=int(proposals["max_per_frame"]),
            batch_frames=int(proposals["batch_frames"]),
            meta={"config": dict(proposals), "shard": shard},
        )
