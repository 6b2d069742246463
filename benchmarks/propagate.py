"""Benchmark: dense ``flow`` propagation (nvos.temporal.propagate) speed and memory on the CPU.

A synthetic 854x480 video (camera panning over a multi-scale texture, 3 textured objects moving
across it, one per phrase) is generated frame by frame, so the source itself holds one frame.
Keyframes (true masks of the 3 objects) every ``--key-every`` frames; every frame is propagated
and its 3 masks RLE-encoded (what the dense masks table stores). Each video length runs in its own
spawned process, so each peak resident memory (ru_maxrss, imports included) is its own; the
Python/numpy heap peak (tracemalloc) is printed too. Memory must not grow with the video length.

    python benchmarks/propagate.py                       # 20 s and 80 s of video at 30 fps
    python benchmarks/propagate.py --seconds 600         # a 10-minute video (minutes of CPU)
    python benchmarks/propagate.py --video-file          # frames decoded from an mp4 (timed)
    python benchmarks/propagate.py --backend sam2 --device cuda --seconds 10   # SAM 2 on a GPU

``--backend sam2`` propagates with SAM 2's video predictor (``--sam2-config``, random weights: the
speed is the model's, the masks mean nothing); it prints one ``skipped`` line and exits 0 when the
sam2 package or the CUDA device it asks for is missing (benchmarks/gpu_check.py runs it).

Prints one line per length: frames/s, peak RSS, peak heap, mean IoU of the propagated masks
with the true ones (a sanity check, not a quality measure), then the growth of peak memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
import tracemalloc
from typing import Any

import cv2
import numpy as np

HEIGHT, WIDTH, FPS = 480, 854, 30.0


class SyntheticVideo:
    """Frame t: a crop of a large texture panning 1 px/frame, with 3 objects moving over it."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.texture = _texture(rng, HEIGHT + 64, WIDTH + 1024)
        sizes = [(120, 160), (90, 90), (150, 110)]
        self.objects = [_texture(rng, h, w) for h, w in sizes]
        self.speeds = [(3.0, 1.0), (-2.0, 2.0), (1.5, -1.5)]
        self.starts = [(100, 150), (300, 600), (250, 400)]

    def boxes(self, t: int) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of each object on frame t (bouncing inside the frame)."""
        out = []
        for (h, w), (vy, vx), (y0, x0) in zip(
            (o.shape[:2] for o in self.objects), self.speeds, self.starts, strict=True
        ):
            out.append((_bounce(y0 + vy * t, HEIGHT - h), _bounce(x0 + vx * t, WIDTH - w), h, w))
        return out

    def frame(self, t: int) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        pan = t % 1024
        image = self.texture[32 : 32 + HEIGHT, pan : pan + WIDTH].copy()
        for (top, left, h, w), obj in zip(self.boxes(t), self.objects, strict=True):
            image[top : top + h, left : left + w] = obj
        return image

    def masks(self, t: int) -> np.ndarray:
        """True masks (3, H, W) bool of frame t."""
        masks = np.zeros((len(self.objects), HEIGHT, WIDTH), bool)
        for p, (top, left, h, w) in enumerate(self.boxes(t)):
            masks[p, top : top + h, left : left + w] = True
        return masks

    def source(self, indices: Any) -> Any:
        for index in indices:
            yield index, self.frame(index)


def _bounce(position: float, span: int) -> int:
    period = 2 * span
    p = int(round(position)) % period
    return p if p <= span else period - p


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    total = np.zeros((height, width, 3), np.float32)
    for sigma in (2.0, 6.0, 12.0):
        blurred = cv2.GaussianBlur(
            rng.uniform(-1, 1, (height, width, 3)).astype(np.float32), (0, 0), sigma
        )
        total += blurred / blurred.std()
    total -= total.min()
    return (255 * total / total.max()).astype(np.uint8)


def _run(n_frames: int, args: argparse.Namespace) -> dict[str, Any]:
    """Child process: propagate over ``n_frames`` frames; report speed and memory."""
    from nvos import rle
    from nvos.temporal.flow import FlowSettings
    from nvos.temporal.propagate import FlowPropagator, Keyframe

    cv2.setNumThreads(args.threads)
    clip = SyntheticVideo()
    source = clip.source
    if args.video_file:  # encode the clip to mp4 first (not timed), then decode it while timing
        from nvos import video
        from nvos.temporal.propagate import video_frame_source

        path = os.path.join(args.tmp, f"synthetic_{n_frames}.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        for t in range(n_frames):
            writer.write(cv2.cvtColor(clip.frame(t), cv2.COLOR_RGB2BGR))
        writer.release()
        source = video_frame_source(video.probe(path), HEIGHT, WIDTH)
    keys = [
        Keyframe.from_masks(t, clip.masks(t), np.full(3, 0.5))
        for t in range(0, n_frames, args.key_every)
    ]
    propagator: Any = FlowPropagator(FlowSettings(args.preset, args.flow_max_side))
    if args.backend == "sam2":
        from nvos.temporal.sam2_backend import make_sam2_propagator

        propagator = make_sam2_propagator(args.sam2_config, None, args.device)
    tracemalloc.start()
    encoded_bytes, ious, frames = 0, [], 0
    started = time.perf_counter()
    for dense in propagator.propagate(keys, range(n_frames), source):
        encoded_bytes += sum(len(c) for c in rle.encode_many(dense.masks))
        frames += 1
        if dense.frame_index % 97 == 0 and dense.source == "propagated":
            truth = clip.masks(dense.frame_index)
            inter = (dense.masks & truth).sum(axis=(1, 2))
            union = (dense.masks | truth).sum(axis=(1, 2))
            ious.append(float(np.mean(inter / np.maximum(union, 1))))
    seconds = time.perf_counter() - started
    _, heap_peak = tracemalloc.get_traced_memory()
    return {
        "frames": frames,
        "fps": frames / seconds,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "heap_mib": heap_peak / 2**20,
        "iou": float(np.mean(ious)) if ious else float("nan"),
        "rle_kib": encoded_bytes / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[20.0, 80.0])
    parser.add_argument("--key-every", type=int, default=30, help="frames between keyframes")
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--flow-max-side", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    parser.add_argument("--video-file", action="store_true", help="decode frames from an mp4")
    parser.add_argument("--backend", choices=["flow", "sam2"], default="flow")
    parser.add_argument("--device", default="cpu", help="sam2: torch device (cuda, cpu)")
    parser.add_argument(
        "--sam2-config", default="configs/sam2.1/sam2.1_hiera_l.yaml", help="sam2 model config"
    )
    args = parser.parse_args()
    if args.backend == "sam2" and (missing := _sam2_missing(args.device)):
        print(f"sam2 propagation: skipped: {missing}")
        return
    load = os.getloadavg()
    method = (
        f"DIS {args.preset} at long side {args.flow_max_side}"
        if args.backend == "flow"
        else f"SAM 2 {args.sam2_config} (random weights) on {args.device}"
    )
    print(
        f"{args.backend} propagation, {WIDTH}x{HEIGHT}, 3 phrases, keyframe every "
        f"{args.key_every} frames, {method}, {args.threads} OpenCV threads, "
        f"frames {'decoded from mp4' if args.video_file else 'generated in memory'}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    context = mp.get_context("spawn")
    results = []
    for seconds in args.seconds:
        n_frames = int(round(seconds * FPS))
        with tempfile.TemporaryDirectory() as tmp, context.Pool(1) as pool:
            args.tmp = tmp
            result = pool.apply(_run, (n_frames, args))
        results.append(result)
        print(
            f"{seconds:7.1f} s video ({result['frames']} frames): {result['fps']:6.1f} frames/s, "
            f"peak RSS {result['rss_mib']:7.1f} MiB, peak heap {result['heap_mib']:6.1f} MiB, "
            f"mean IoU {result['iou']:.3f}, RLE {result['rle_kib']:.0f} KiB"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        slowest = min(r["fps"] for r in results)
        print(
            f"peak memory growth from {first['frames']} to {last['frames']} frames: "
            f"RSS {last['rss_mib'] - first['rss_mib']:+.1f} MiB, "
            f"heap {last['heap_mib'] - first['heap_mib']:+.1f} MiB "
            f"(target: no growth beyond the frames in flight); "
            f"speed target >= 25 frames/s: {'met' if slowest >= 25 else 'NOT met'}"
        )


def _sam2_missing(device: str) -> str | None:
    """Why the sam2 backend cannot run here (the package, or the CUDA device asked for)."""
    try:
        from nvos.temporal.sam2_backend import require_sam2

        require_sam2()
    except ImportError as error:
        return str(error)
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"device {device!r} asked for, but CUDA is not available"
    return None


if __name__ == "__main__":
    main()
