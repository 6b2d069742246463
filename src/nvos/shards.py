"""Clips are grouped into shards of consecutive manifest lines.

Shard ids must be known when Snakemake builds the DAG, before any clip is read in detail, so they
depend only on the number of clips and ``shards.clips_per_shard``: the clip on the i-th non-empty
manifest line (0-based) belongs to shard ``i // clips_per_shard``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter

from nvos.types import PathLike


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


SPLIT_KEY = re.compile(rb'"split"\s*:\s*"((?:[^"\\]|\\.)*)"')
"""The ``"split": "<value>"`` member of a manifest line (a quote inside a JSON string is escaped,
so this matches the key itself, never text inside another value)."""


@functools.lru_cache(maxsize=8)
def _scan(path: str, size: int, mtime_ns: int) -> tuple[int, tuple[tuple[str, int], ...]]:
    lines, splits = 0, Counter()
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            lines += 1
            match = SPLIT_KEY.search(line)
            if match is not None:
                try:
                    splits[json.loads(b'"' + match.group(1) + b'"')] += 1
                except ValueError:
                    pass  # not a valid JSON string: validation reports the line
    return lines, tuple(sorted(splits.items()))


def scan_manifest(path: PathLike) -> tuple[int, dict[str, int]]:
    """(non-empty lines, clips per ``split`` value) of a manifest, in one streamed pass.

    A scan, not a validation (that is :func:`nvos.manifest.validate_manifest`): lines without a
    readable split are counted as lines only. Cached per file version (path, size, mtime).
    """
    stat = os.stat(path)
    lines, splits = _scan(os.fspath(path), stat.st_size, stat.st_mtime_ns)
    return lines, dict(splits)


def count_manifest_lines(path: PathLike) -> int:
    """Number of non-empty lines of a manifest (streamed: fast on millions of lines)."""
    return scan_manifest(path)[0]
