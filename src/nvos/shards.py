"""Clips are grouped into shards of consecutive manifest lines.

Shard ids must be known when Snakemake builds the DAG, before any clip is read in detail, so they
depend only on the number of clips and ``shards.clips_per_shard``: the clip on the i-th non-empty
manifest line (0-based) belongs to shard ``i // clips_per_shard``.
"""

from __future__ import annotations

import os


def shard_name(index: int) -> str:
    """The id of shard number ``index`` (``s00000``, ``s00001``, ...)."""
    return f"s{index:05d}"


def shard_of(clip_index: int, clips_per_shard: int) -> str:
    """The shard of the clip on the ``clip_index``-th non-empty manifest line."""
    return shard_name(clip_index // clips_per_shard)


def shard_ids(n_clips: int, clips_per_shard: int) -> list[str]:
    """All shard ids for ``n_clips`` clips."""
    if clips_per_shard < 1:
        raise ValueError("clips_per_shard must be >= 1")
    n_shards = (n_clips + clips_per_shard - 1) // clips_per_shard
    return [shard_name(i) for i in range(n_shards)]


def count_manifest_lines(path: str | os.PathLike[str]) -> int:
    """Number of non-empty lines of a manifest (streamed: fast on millions of lines)."""
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                count += 1
    return count
