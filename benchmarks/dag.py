"""DAG build time of `snakemake -n` for large manifests (20k, 200k, 1M clips).

Shard ids depend only on the number of manifest lines, so a dry run never parses the clips; the
number of jobs grows with shards (`shards.clips_per_shard`), not with clips or frames. Prints one
line per size: clips, clips per shard, jobs, seconds.

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
    """``n_clips`` lines pointing at one (never opened) video: a dry run reads no video."""
    line = {"video": "video.mp4", "split": "train", "narration": "#C C picks a cup"}
    with open(path, "w") as handle:
        for i in range(n_clips):
            handle.write(json.dumps({"clip_id": f"c{i:07d}", **line}) + "\n")


def dry_run(workdir: Path, manifest: Path, clips_per_shard: int) -> tuple[int, float]:
    """(jobs, seconds) of ``snakemake -n`` on ``manifest``."""
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
    match = re.search(r"^total\s+(\d+)", result.stdout, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no job total in the dry run's output:\n{result.stdout[-2000:]}")
    return int(match.group(1)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--clips-per-shard", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n_clips in args.sizes:
            manifest = Path(tmp) / f"manifest_{n_clips}.jsonl"
            write_manifest(manifest, n_clips)
            jobs, seconds = dry_run(Path(tmp) / f"wd_{n_clips}", manifest, args.clips_per_shard)
            print(
                f"clips {n_clips:>9,d}  clips/shard {args.clips_per_shard:>5d}  "
                f"jobs {jobs:>6,d}  dag build {seconds:6.1f} s"
            )


if __name__ == "__main__":
    main()
