"""Large DAGs: the number of planned jobs is a fixed number per shard plus a constant, so a
million-clip manifest plans like a small one, only with more shards.

Uses the functions of ``benchmarks/dag.py`` (the same manifest and dry run). How fast the DAG is
built is that benchmark's figure (``python benchmarks/dag.py``: 1,000,000 clips), not a test's: a
time limit in a test passes or fails with the machine's load.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import dag

pytestmark = pytest.mark.slow

CLIPS_PER_SHARD = 1000


BIG_CLIPS = 60_000  # 60 shards: the same structure as 1,000 shards, in seconds


def test_jobs_grow_with_shards_only(tmp_path: Path) -> None:
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    dag.write_manifest(small, 2 * CLIPS_PER_SHARD)
    dag.write_manifest(big, BIG_CLIPS)
    jobs_small, _ = dag.dry_run(tmp_path / "small", small, CLIPS_PER_SHARD)
    jobs_big, _ = dag.dry_run(tmp_path / "big", big, CLIPS_PER_SHARD)
    shards = BIG_CLIPS // CLIPS_PER_SHARD
    per_shard = {rule: n // 2 for rule, n in jobs_small.items() if rule.endswith("_shard")}
    assert {"frames_shard", "proposals_shard", "features_shard"} <= set(per_shard)
    assert all(n >= 1 for n in per_shard.values())
    for rule, n in jobs_small.items():
        if rule == "total":
            continue
        expected = per_shard[rule] * shards if rule in per_shard else n
        assert jobs_big.get(rule) == expected, (rule, jobs_big.get(rule), expected)
    constant = jobs_small["total"] - 2 * sum(per_shard.values())
    assert jobs_big["total"] == sum(per_shard.values()) * shards + constant
    assert set(jobs_big) == set(jobs_small)
