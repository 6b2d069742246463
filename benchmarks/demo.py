"""Run the demo workflow and print where its time goes, stage by stage.

    python benchmarks/demo.py                       # = make demo, timed (CORES=2, GPUS=2)
    python benchmarks/demo.py --cores 16 --gpus 1   # the GPU check's run: GPU rules one at a time
    python benchmarks/demo.py --configfile config/config.yaml config/demo_small.yaml
    python benchmarks/demo.py --only-table results/demo   # the table of a finished run

Each rule writes a Snakemake benchmark file per job (``<run>/benchmarks/<stage>/....tsv``: wall
seconds ``s`` and ``cpu_time``); the table sums them per stage. Wall time of a stage is the sum
of its jobs' wall times, so stages that ran side by side add up to more than the run's wall time.
Prints the run's wall time, the CPU-seconds of all jobs and the load average before and after.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stage_times(run_dir: Path) -> dict[str, tuple[int, float, float]]:
    """stage -> (jobs, summed wall seconds, summed CPU seconds) from a run's benchmark files."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    root = run_dir / "benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        stage = path.relative_to(root).parts[0].removesuffix(".tsv")
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                totals[stage][0] += 1
                totals[stage][1] += float(row["s"])
                totals[stage][2] += float(row["cpu_time"])
    return {k: (int(v[0]), v[1], v[2]) for k, v in totals.items()}


def print_table(run_dir: Path) -> float:
    """Print the per-stage table of ``run_dir``; return the CPU-seconds of all jobs."""
    times = stage_times(run_dir)
    if not times:
        raise SystemExit(f"no benchmark files under {run_dir}/benchmarks")
    cpu_total = sum(t[2] for t in times.values())
    print(f"{'stage':<12} {'jobs':>5} {'wall s':>8} {'CPU s':>8} {'CPU %':>6}")
    for stage, (jobs, wall, cpu) in sorted(times.items(), key=lambda kv: -kv[1][2]):
        print(f"{stage:<12} {jobs:>5} {wall:>8.1f} {cpu:>8.1f} {100 * cpu / cpu_total:>5.1f}%")
    print(f"CPU-seconds of all jobs: {cpu_total:.1f}")
    return cpu_total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=2, help="Snakemake's gpu resource")
    parser.add_argument("--configfile", nargs="*", default=[], help="config layers, in order")
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="results_dir (default: a temp folder)"
    )
    parser.add_argument("--only-table", type=Path, default=None, help="a finished run's folder")
    args = parser.parse_args(argv)
    if args.only_table is not None:
        print_table(args.only_table)
        return
    with tempfile.TemporaryDirectory(prefix="nvos-demo-") as tmp:
        results = (args.results_dir or Path(tmp)).resolve()
        command = [
            sys.executable, "-m", "snakemake", "--profile", "profiles/local",
            "--cores", str(args.cores), "--resources", f"gpu={args.gpus}",
            *(["--configfile", *args.configfile] if args.configfile else []),
            "--config", f"results_dir={results}", "--quiet", "rules",
        ]  # fmt: skip
        load_before = os.getloadavg()
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-5000:] + done.stderr[-5000:])
            raise SystemExit(f"demo workflow failed (exit {done.returncode})")
        runs = [p for p in results.iterdir() if (p / "benchmarks").is_dir()]
        print_table(runs[0])
        print(
            f"demo wall time: {wall:.1f} s ({args.cores} cores, gpu={args.gpus}); load average "
            f"before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
