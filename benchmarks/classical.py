"""Benchmark: the classical proposal backend with today's settings vs the settings it replaced.

Both run in this process, on the same frames, interleaved (reference, ours, reference, ours, …) so
that other load on the machine affects both alike; each is timed in CPU seconds per frame
(``time.process_time``) and the best of ``--repeats`` is kept. Frames are the annotated frames of
the **val** clips of a freshly generated demo, and quality is the oracle of the proposals the
proposals stage keeps (``proposals.max_per_frame``): the mean over visible objects of the best IoU
of a kept proposal (the "SAM upper bound" of the evaluation, for the classical backend).

    python benchmarks/classical.py                 # 60-clip demo (9 val clips), 3 repeats
    python benchmarks/classical.py --clips 120 --repeats 5

Prints CPU-s/frame of both, the ratio (target: >= 4x), and both oracle IoUs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from nvos import rle, video
from nvos.config import load_config
from nvos.demo import generate_demo
from nvos.proposals.base import FrameProposals, top_k
from nvos.proposals.classical import ClassicalBackend, ClassicalConfig
from nvos.proposals.stage import build_backend

# The backend as it ran before issue 14: three Felzenszwalb scales, and every candidate that
# survived deduplication made into a full mask (the old code then truncated to 100, after making
# them all; an unbounded max_proposals does the same work on today's code).
REFERENCE = ClassicalConfig(
    scales=(60.0, 200.0, 600.0),
    sigma=0.8,
    merge_thresholds=(6.0, 12.0, 20.0),
    max_proposals=1_000_000,
)


def val_frames(root: Path) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """RGB frames and their visible ground-truth masks: every annotated frame of the val clips."""
    frames, targets = [], []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["split"] != "val" or not record["annotations"]:
            continue
        info = video.probe(str(root / record["video"]))
        objects = {a["frame_index"]: a["objects"] for a in record["annotations"]}
        for frame_index, bgr in video.read_frames(info, sorted(objects)):
            masks = [rle.decode(o["counts"], *o["size"]) for o in objects[frame_index].values()]
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            targets.append([m for m in masks if m.any()])
    return frames, targets


def oracle(proposals: list[FrameProposals], targets, keep: int) -> float:
    """Mean best IoU of each frame's ``keep`` best proposals with each visible object."""
    best = []
    for props, objects in zip(proposals, targets, strict=True):
        kept = top_k(props, keep).masks
        for target in objects:
            if len(kept) == 0:
                best.append(0.0)
                continue
            inter = (kept & target).sum(axis=(1, 2))
            union = (kept | target).sum(axis=(1, 2))
            best.append(float((inter / union).max()))
    return float(np.mean(best))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=60, help="demo clips to generate (15%% val)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (best kept)")
    parser.add_argument("--seed", type=int, default=1, help="demo seed (the demo itself uses 0)")
    args = parser.parse_args(argv)

    proposals = load_config()["proposals"]  # today's defaults, as the proposals stage builds them
    ours = build_backend(proposals)
    reference = ClassicalBackend(REFERENCE)
    assert isinstance(ours, ClassicalBackend)
    with tempfile.TemporaryDirectory() as tmp:
        generate_demo(Path(tmp), args.clips, args.seed)
        frames, targets = val_frames(Path(tmp))
    seconds = {"reference": [], "ours": []}
    made: dict[str, list[FrameProposals]] = {}
    for _ in range(args.repeats):
        for name, backend in (("reference", reference), ("ours", ours)):
            start = time.process_time()
            made[name] = backend.generate(frames)
            seconds[name].append((time.process_time() - start) / len(frames))
    ref_s, our_s = min(seconds["reference"]), min(seconds["ours"])
    keep = int(proposals["max_per_frame"])
    print(
        f"classical proposals, {len(frames)} val frames of {frames[0].shape[1]}x"
        f"{frames[0].shape[0]}: ours {our_s:.4f} CPU-s/frame vs reference {ref_s:.4f} "
        f"= {ref_s / our_s:.2f}x faster; oracle IoU of the {keep} kept: ours "
        f"{oracle(made['ours'], targets, keep):.3f}, reference "
        f"{oracle(made['reference'], targets, keep):.3f}"
    )


if __name__ == "__main__":
    main()
