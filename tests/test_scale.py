"""Million-clip DAGs (issue 8.4): `snakemake -n` on a 1,000,000-clip manifest finishes in under
60 s, and the number of jobs is a fixed number per shard plus a constant.

Uses the functions of ``benchmarks/dag.py`` (the same manifest and dry run it times).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import dag

pytestmark = pytest.mark.slow

CLIPS_PER_SHARD = 1000


def test_million_clip_dry_run_is_fast_and_jobs_grow_with_shards(tmp_path: Path) -> None:
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    dag.write_manifest(small, 2 * CLIPS_PER_SHARD)
    dag.write_manifest(big, 1_000_000)
    jobs_small, _ = dag.dry_run(tmp_path / "small", small, CLIPS_PER_SHARD)
    jobs_big, seconds = dag.dry_run(tmp_path / "big", big, CLIPS_PER_SHARD)
    assert seconds < 60, f"snakemake -n on 1,000,000 clips took {seconds:.1f} s"
    shards = 1_000_000 // CLIPS_PER_SHARD
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
