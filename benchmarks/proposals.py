"""Benchmark: SamBackend vs a plain loop over SamAutomaticMaskGenerator.generate.

Same frames, same model (random weights from the same seed; weights do not change the work done
per mask, only how many masks pass the thresholds), same settings. Each method runs in its own
spawned process so that peak memory is its own: torch.cuda.max_memory_allocated on a GPU, ru_maxrss
(the process's peak resident memory, model included) on the CPU.

    python benchmarks/proposals.py                                   # GPU: vit_h, 1024 px frames
    python benchmarks/proposals.py --device cpu --model-type vit_b --image-size 512 \\
        --frames 4 --points-per-side 8

Prints frames per second of both, the ratio, whether the masks are identical, and peak memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from typing import Any

import numpy as np
import torch


def synthetic_frames(count: int, long_side: int, seed: int) -> list[np.ndarray]:
    """``count`` RGB uint8 frames of (3/4·long_side, long_side): texture, boxes and discs."""
    rng = np.random.default_rng(seed)
    height, width = long_side * 3 // 4, long_side
    yy, xx = np.mgrid[:height, :width]
    frames = []
    for _ in range(count):
        image = np.empty((height, width, 3), np.uint8)
        image[...] = (60 + 40 * np.sin(xx / rng.uniform(8, 30)))[..., None].astype(np.uint8)
        for _ in range(6):
            y0, x0 = rng.integers(0, height - height // 4), rng.integers(0, width - width // 4)
            h, w = rng.integers(height // 10, height // 4), rng.integers(width // 10, width // 4)
            image[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 255, 3)
            cy, cx, r = (
                rng.integers(0, height),
                rng.integers(0, width),
                rng.integers(8, height // 6),
            )
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 255, 3)
        frames.append(image)
    return frames


def _run(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Child process: build the model, time ``method`` on the frames, report masks and memory."""
    from segment_anything import SamAutomaticMaskGenerator

    from nvos.proposals.sam import SamBackend, SamSettings, build_sam

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = build_sam(args.model_type).to(device)
    settings = SamSettings(
        points_per_side=args.points_per_side,
        points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.pred_iou_thresh,
        stability_score_thresh=args.stability_score_thresh,
        frames_per_batch=args.frames_per_batch,
        autocast_bf16=args.bf16,
    )
    frames = synthetic_frames(args.frames, args.image_size, args.seed)
    if method == "ours":
        backend = SamBackend(model, settings, device, args.model_type)

        def work(images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
            return [(p.masks, p.predicted_iou) for p in backend.generate(images)]
    else:
        kwargs = settings.generator_kwargs()
        kwargs["points_per_batch"] = args.stock_points_per_batch
        generator = SamAutomaticMaskGenerator(model, **kwargs)

        def work(images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
            out = []
            for image in images:
                records = generator.generate(image)
                masks = np.array([r["segmentation"] for r in records], dtype=bool)
                out.append(
                    (
                        masks.reshape(len(records), *image.shape[:2]),
                        np.array([r["predicted_iou"] for r in records], np.float32),
                    )
                )
            return out

    cuda = device.type == "cuda"
    if cuda:  # warm-up (kernel selection, allocator) on one frame, untimed
        work(frames[:1])
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = work(frames)
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if cuda:
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (max_memory_allocated)"
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = f"{peak_kib / 2**20:.2f} GiB (ru_maxrss)"
    return {"seconds": seconds, "peak": peak, "result": result}


def _compare(ours: list[Any], stock: list[Any]) -> str:
    """'identical' or a count of how many masks differ."""
    same_frames, mask_diff, score_diff = 0, 0, 0.0
    for (om, oi), (sm, si) in zip(ours, stock, strict=True):
        if om.shape == sm.shape and np.array_equal(om, sm):
            same_frames += 1
            if len(oi):
                score_diff = max(score_diff, float(np.abs(oi - si).max()))
        else:
            stock_keys = {m.tobytes() for m in sm}
            mask_diff += sum(m.tobytes() not in stock_keys for m in om) + abs(len(om) - len(sm))
    n_masks = sum(len(m) for m, _ in stock)
    if same_frames == len(ours):
        return f"identical ({n_masks} masks; max |predicted_iou diff| {score_diff:.2e})"
    return f"NOT identical: {len(ours) - same_frames} frame(s) differ, ~{mask_diff} mask(s)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cuda = torch.cuda.is_available()
    parser.add_argument("--model-type", default="vit_h" if cuda else "vit_b")
    parser.add_argument("--image-size", type=int, default=1024, help="frame long side (px)")
    parser.add_argument("--frames", type=int, default=16 if cuda else 4)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=128, help="ours")
    parser.add_argument("--stock-points-per-batch", type=int, default=64, help="stock loop")
    parser.add_argument("--frames-per-batch", type=int, default=4)
    # Random weights rarely pass SAM's default thresholds; 0 keeps every mask (more work per
    # frame than a real model, so the post-processing is exercised).
    parser.add_argument("--pred-iou-thresh", type=float, default=0.0)
    parser.add_argument("--stability-score-thresh", type=float, default=0.0)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for ours (CUDA)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        stock = pool.apply(_run, ("stock", args))
    with ctx.Pool(1) as pool:
        ours = pool.apply(_run, ("ours", args))
    fps_ours = args.frames / ours["seconds"]
    fps_stock = args.frames / stock["seconds"]
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(
        f"proposals {args.model_type} {args.image_size}px x{args.frames} on {device}, "
        f"points_per_side={args.points_per_side}: ours {fps_ours:.3f} frames/s vs "
        f"SamAutomaticMaskGenerator loop {fps_stock:.3f} frames/s = {fps_ours / fps_stock:.2f}x; "
        f"masks {_compare(ours['result'], stock['result'])}; "
        f"peak memory ours {ours['peak']}, stock {stock['peak']}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
