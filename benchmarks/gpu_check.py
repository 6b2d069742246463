"""The prepared GPU check: every CUDA test and GPU benchmark in one run, every figure in one JSON.

On a machine with a CUDA GPU (about 6 minutes on one H100/H200-class device):

    python benchmarks/gpu_check.py --out gpu_check.json

runs, each as its own process with a time limit, and records its command, exit status, wall time,
the figures it printed and the tail of its output:

1. ``pytest -m gpu``: the CUDA-marked tests (bf16 training step, SAM batched vs stock on CUDA,
   roi_align crops, device claims, deterministic resume, NCCL with two GPUs when present);
2. ``benchmarks/proposals.py``: SAM ViT-H at 1024 px (random weights), stock generator vs ours;
3. ``benchmarks/features.py``: CLIP ViT-B-16 at 224 px, batched crops vs open_clip's transform;
4. ``benchmarks/train.py``: ROSA loader, train step and full loop;
5. ``benchmarks/propagate.py --backend sam2``: dense propagation with SAM 2's video predictor
   (sam2.1 hiera-L layout, random weights, 10 s of 854x480 video), frames/s; one ``skipped``
   line when the sam2 package is not installed;
6. the demo workflow with ``--resources gpu=1`` (every GPU rule on the one device), with the
   per-stage times of ``benchmarks/demo.py``.

Without a GPU, ``--cpu-smoke`` runs the same steps with tiny settings on the CPU (CI runs it, so
the script cannot rot); its figures mean nothing. The JSON also holds the machine (GPU name,
CUDA and torch versions, CPU count) and the project's commit. Exit status: 0 when every step
succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: Figures read from each step's output: name -> regular expression with one group (a number).
FIGURES: dict[str, dict[str, str]] = {
    "pytest": {
        "passed": r"(\d+) passed",
        "failed": r"(\d+) failed",
        "skipped": r"(\d+) skipped",
    },
    "proposals": {
        "ours_frames_per_s": r"ours ([\d.]+) frames/s",
        "stock_frames_per_s": r"loop ([\d.]+) frames/s",
        "speedup": r"frames/s = ([\d.]+)x",
    },
    "features": {
        "ours_regions_per_s": r"ours \(batched crops on device\):\s+([\d.]+) regions/s",
        "reference_regions_per_s": r"one at a time\):\s+([\d.]+) regions/s",
        "mean_cosine": r"mean cosine between them: ([\d.]+)",
    },
    "train": {
        "loader_clips_per_s": r"\(a\) loader alone: ([\d.]+)",
        "step_clips_per_s": r"\(b\) train step alone \(batch \d+\): ([\d.]+)",
        "loop_clips_per_s": r"\(c\) full loop: ([\d.]+)",
    },
    "sam2": {
        "frames_per_s": r"\(\d+ frames\):\s+([\d.]+) frames/s",
        "peak_rss_mib": r"peak RSS\s+([\d.]+) MiB",
    },
    "demo": {
        "wall_s": r"demo wall time: ([\d.]+) s",
        "cpu_s": r"CPU-seconds of all jobs: ([\d.]+)",
    },
}


def steps(smoke: bool, results_dir: Path) -> list[tuple[str, list[str], int]]:
    """(name, command, time limit in seconds) of each step, for a GPU run or the CPU smoke run."""
    py = sys.executable
    if smoke:
        proposals = ["--device", "cpu", "--model-type", "tiny", "--image-size", "256",
                     "--frames", "2", "--points-per-side", "4"]  # fmt: skip
        features = ["--device", "cpu", "--model", "nvos-tiny-vit", "--frames", "2",
                    "--proposals", "4", "--batch", "8"]  # fmt: skip
        train = ["--device", "cpu", "--clips", "16", "--clips-per-shard", "8", "--dim", "32",
                 "--regions", "8", "--batch", "4", "--steps", "2"]  # fmt: skip
        demo = ["--configfile", "config/config.yaml", "config/demo_small.yaml"]
        sam2 = ["--device", "cpu", "--sam2-config", "configs/sam2.1/sam2.1_hiera_t.yaml",
                "--seconds", "0.2", "--key-every", "3"]  # fmt: skip
    else:
        proposals = ["--device", "cuda", "--model-type", "vit_h", "--image-size", "1024"]
        features = ["--device", "cuda", "--model", "ViT-B-16"]
        train = ["--device", "cuda"]
        demo = []
        sam2 = ["--device", "cuda", "--seconds", "10"]
    cores = str(min(os.cpu_count() or 2, 16))
    snakemake = [py, "benchmarks/demo.py", "--cores", cores, "--gpus", "1",
                 "--results-dir", str(results_dir), *demo]  # fmt: skip
    return [
        ("pytest", [py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], 240),
        ("proposals", [py, "benchmarks/proposals.py", *proposals], 300),
        ("features", [py, "benchmarks/features.py", *features], 180),
        ("train", [py, "benchmarks/train.py", *train], 240),
        ("sam2", [py, "benchmarks/propagate.py", "--backend", "sam2", *sam2], 300),
        ("demo", snakemake, 600),
    ]


def run_step(name: str, command: list[str], limit: int) -> dict[str, Any]:
    """Run one step; its exit status, wall time, figures and the tail of its output."""
    print(f"gpu_check: {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=limit, check=False
        )
        rc, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, output = 124, f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {limit} s"
    seconds = time.perf_counter() - start
    if name == "pytest" and rc == 5:  # pytest: no test collected
        rc = 0
    figures = {}
    for key, pattern in FIGURES.get(name, {}).items():
        match = re.findall(pattern, output if isinstance(output, str) else "")
        figures[key] = float(match[-1]) if match else None
    print(f"gpu_check: {name}: rc {rc} in {seconds:.0f} s; {figures}", flush=True)
    return {
        "command": command,
        "rc": rc,
        "seconds": round(seconds, 1),
        "figures": figures,
        "output_tail": str(output)[-3000:],
    }


def machine() -> dict[str, Any]:
    """GPU, CUDA, torch, CPU count and the project's git commit."""
    import torch

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    cuda = torch.cuda.is_available()
    return {
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpus": torch.cuda.device_count() if cuda else 0,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit or None,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON to write")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny settings on the CPU (no GPU needed)"
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="run only these steps (pytest proposals ...)"
    )
    args = parser.parse_args(argv)
    info = machine()
    if not args.cpu_smoke and not info["gpus"]:
        parser.error("no CUDA device: run with --cpu-smoke, or on a machine with a GPU")
    report: dict[str, Any] = {"mode": "cpu-smoke" if args.cpu_smoke else "gpu", **info}
    with tempfile.TemporaryDirectory(prefix="nvos-gpu-check-") as tmp:
        for name, command, limit in steps(args.cpu_smoke, Path(tmp) / "results"):
            if args.only is None or name in args.only:
                report[name] = run_step(name, command, limit)
                args.out.write_text(json.dumps(report, indent=2) + "\n")  # partial results too
    failed = [n for n in FIGURES if n in report and report[n]["rc"] != 0]
    print(f"gpu_check: wrote {args.out}; failed steps: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
