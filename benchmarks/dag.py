"""DAG build time of `snakemake -n` for large manifests (20k, 200k, 1M clips).

Shard ids depend only on the number of manifest lines, so a dry run never parses the clips; the
number of jobs grows with shards (`shards.clips_per_shard`), not with clips or frames. Prints a
table: clips, clips per shard, shards, planned jobs, jobs per shard, seconds of `snakemake -n`
(process start, config validation, line count, DAG). The manifest's lines all name one video,
which a dry run never opens.

    python benchmarks/dag.py                       # 20k, 200k, 1M clips, 1000 clips per shard
    python benchmarks/dag.py --sizes 20000 --clips-per-shard 100
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_manifest(path: Path, n_clips: int) -> None:
    """``n_clips`` lines pointing at one (never opened) video: a dry run reads no video. Every
    tenth clip is val and every tenth test (the default config evaluates both)."""
    line = {"video": "video.mp4", "narration": "#C C picks a cup"}
    with open(path, "w") as handle:
        for i in range(n_clips):
            split = {8: "val", 9: "test"}.get(i % 10, "train")
            handle.write(json.dumps({"clip_id": f"c{i:07d}", "split": split, **line}) + "\n")


def job_counts(stdout: str) -> dict[str, int]:
    """Rule -> planned jobs from a dry run's job table (``total`` included)."""
    counts = {}
    for name, count in re.findall(r"^(\w+)\s+(\d+)\s*$", stdout, flags=re.MULTILINE):
        counts[name] = int(count)
    if "total" not in counts:
        raise RuntimeError(f"no job total in the dry run's output:\n{stdout[-2000:]}")
    return counts


def dry_run(workdir: Path, manifest: Path, clips_per_shard: int) -> tuple[dict[str, int], float]:
    """(rule -> planned jobs, seconds) of ``snakemake -n`` on ``manifest`` (a fresh run folder)."""
    workdir.mkdir(parents=True, exist_ok=True)
    layer = workdir / "layer.yaml"
    config = {
        "run": "dag",
        "dataset": {"manifest": str(manifest)},
        "shards": {"clips_per_shard": clips_per_shard},
    }
    layer.write_text(yaml.safe_dump(config))
    command = [
        sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"),
        "-d", str(workdir), "--cores", "16", "--quiet", "rules",
        "--configfile", str(REPO / "config/config.yaml"), str(layer),
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return job_counts(result.stdout), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--clips-per-shard", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'clips':>10}  {'clips/shard':>11}  {'shards':>6}  {'jobs':>6}  {'jobs/shard':>10}  "
          f"{'dag build':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for n_clips in args.sizes:
            manifest = Path(tmp) / f"manifest_{n_clips}.jsonl"
            write_manifest(manifest, n_clips)
            counts, seconds = dry_run(Path(tmp) / f"wd_{n_clips}", manifest, args.clips_per_shard)
            shards = -(-n_clips // args.clips_per_shard)
            jobs = counts["total"]
            print(
                f"{n_clips:>10,d}  {args.clips_per_shard:>11d}  {shards:>6,d}  {jobs:>6,d}  "
                f"{jobs / shards:>10.2f}  {seconds:>7.1f} s"
            )


if __name__ == "__main__":
    main()
